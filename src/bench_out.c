/* bench_out.c - what `jobring bench` prints: summaries, the table, the JSON
 * document, the SVG plot and the soak verdict. Pure functions of a struct
 * bench_result, so the unit test can check them without a server. */
#include "jobring/bench.h"
#include "jobring/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const hop_names[BENCH_NHOPS] = {
	"submit", "dispatch", "running", "complete", "webhook",
};

static const char *const hop_labels[BENCH_NHOPS] = {
	"submit ack (send → 2xx)",
	"waiting → dispatched",
	"dispatched → running",
	"running → complete",
	"complete → webhook",
};

/* One colour per hop (the plot), then the total. */
static const char *const hop_colors[BENCH_NHOPS] = {
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
};

const char *bench_hop_name(enum bench_hop h)
{
	return (unsigned)h < BENCH_NHOPS ? hop_names[h] : "?";
}

const char *bench_hop_label(enum bench_hop h)
{
	return (unsigned)h < BENCH_NHOPS ? hop_labels[h] : "?";
}

void bench_summarize(const struct hist *h, struct bench_summary *s)
{
	memset(s, 0, sizeof(*s));
	if (!(s->count = hist_count(h)))
		return;
	s->min = hist_min(h);
	s->p50 = hist_quantile(h, 0.5);
	s->p99 = hist_quantile(h, 0.99);
	s->p999 = hist_quantile(h, 0.999);
	s->max = hist_max(h);
	s->mean = hist_mean(h);
}

void bench_note(struct bench_result *r, const char *fmt, ...)
{
	va_list ap;

	if (r->nnotes >= BENCH_MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(r->notes[r->nnotes++], BENCH_NOTE_LEN, fmt, ap);
	va_end(ap);
}

double bench_jobs_per_s(const struct bench_result *r)
{
	uint64_t done = r->completed + r->failed;

	if (strcmp(r->mode, "submit") == 0)
		return bench_submit_per_s(r);
	return r->elapsed_ns > 0 && done ? (double)done * 1e9 / (double)r->elapsed_ns : 0;
}

double bench_submit_per_s(const struct bench_result *r)
{
	return r->submit_ns > 0 && r->acked ? (double)r->acked * 1e9 / (double)r->submit_ns : 0;
}

int bench_crash_ok(const struct bench_result *r)
{
	return r->crash && r->killed_at > 0 && r->acked > 0 && r->complete_on_get == r->acked &&
	       r->missing == 0 &&
	       r->duplicates == 0 && r->check_exit == 0;
}

/* ---- soak verdict -------------------------------------------------------------- */

int bench_soak_verdict(const struct bench_sample *s, size_t n, char *why, size_t whysz)
{
	double rss0 = 0, rss1 = 0, p0 = 0, p1 = 0;
	size_t k, nr0 = 0, nr1 = 0, np0 = 0, np1 = 0;
	int flat = 1;

	if (why && whysz)
		why[0] = '\0';
	if (n < 4) {
		if (why)
			snprintf(why, whysz, "too few samples (%zu) to judge", n);
		return -1;
	}
	s++;	/* warm-up */
	n--;
	k = n / 3;
	for (size_t i = 0; i < k; i++) {
		const struct bench_sample *a = &s[i], *b = &s[n - k + i];
		int64_t ma = a->anon_kb >= 0 ? a->anon_kb : a->rss_kb;
		int64_t mb = b->anon_kb >= 0 ? b->anon_kb : b->rss_kb;
		if (ma >= 0) {
			rss0 += (double)ma;
			nr0++;
		}
		if (mb >= 0) {
			rss1 += (double)mb;
			nr1++;
		}
		if (a->p99_ns) {
			p0 += (double)a->p99_ns;
			np0++;
		}
		if (b->p99_ns) {
			p1 += (double)b->p99_ns;
			np1++;
		}
	}
	rss0 = nr0 ? rss0 / (double)nr0 : 0;
	rss1 = nr1 ? rss1 / (double)nr1 : 0;
	p0 = np0 ? p0 / (double)np0 : 0;
	p1 = np1 ? p1 / (double)np1 : 0;
	if (nr0 && nr1 && rss1 > rss0 * 1.10 + 8192)
		flat = 0;
	if (np0 && np1 && p1 > p0 * 2 + 1e6)
		flat = 0;
	if (why)
		snprintf(why, whysz, "%s: memory %.1f → %.1f MiB%s, p99 %.2f → %.2f ms (first vs last third)",
			 flat ? "flat" : "NOT flat", rss0 / 1024, rss1 / 1024,
			 nr0 && nr1 ? "" : " (unknown)", p0 / 1e6, p1 / 1e6);
	return flat;
}

/* ---- table --------------------------------------------------------------------- */

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void table_row(struct buf *out, const char *label, const struct hist *h)
{
	struct bench_summary s;

	bench_summarize(h, &s);
	/* the labels hold multi-byte arrows: pad by code points, not bytes */
	size_t cps = utf8_codepoints(label, strlen(label));
	buf_printf(out, "  %s%*s %9llu %9.3f %9.3f %9.3f %9.3f\n", label,
		   (int)(cps < 26 ? 26 - cps : 0), "", (unsigned long long)s.count, ms(s.p50),
		   ms(s.p99), ms(s.p999), ms(s.max));
}

int bench_table(const struct bench_result *r, struct buf *out)
{
	size_t start = out->len;

	buf_printf(out, "jobring bench: mode %s, %llu jobs, %u connections, %u orgs", r->mode,
		   (unsigned long long)r->jobs, r->conns, r->orgs);
	if (r->rate > 0)
		buf_printf(out, ", %.0f jobs/s offered", r->rate);
	if (r->sync)
		buf_printf(out, ", storage.sync=%s", r->sync);
	buf_printf(out, "\n  submits: %llu acknowledged, %llu refused, %llu transport errors\n",
		   (unsigned long long)r->acked, (unsigned long long)r->rejected,
		   (unsigned long long)r->errors);
	if (strcmp(r->mode, "submit") != 0)
		buf_printf(out, "  terminal: %llu complete, %llu failed; webhooks %s%llu received\n",
			   (unsigned long long)r->completed, (unsigned long long)r->failed,
			   r->webhooks_on ? "on, " : "off, ", (unsigned long long)r->webhooks);
	buf_printf(out, "  %-26s %9s %9s %9s %9s %9s\n", "hop (ms)", "count", "p50", "p99",
		   "p99.9", "max");
	for (int i = 0; i < BENCH_NHOPS; i++)
		if (r->hop_on[i])
			table_row(out, hop_labels[i], &r->hop[i]);
	if (hist_count(&r->total) && strcmp(r->mode, "submit") != 0)
		table_row(out, "end to end (send → last)", &r->total);
	buf_printf(out, "  throughput: %.0f jobs/s submitted", bench_submit_per_s(r));
	if (strcmp(r->mode, "submit") != 0)
		buf_printf(out, ", %.0f jobs/s end to end (first submit → last %s)",
			   bench_jobs_per_s(r), r->webhooks_on ? "webhook" : "complete");
	buf_printf(out, " in %.2f s\n", (double)r->elapsed_ns / 1e9);
	if (r->acked) {
		buf_printf(out, "  cpu: harness %.2f s (%.0f µs/job)", r->harness_cpu_s,
			   r->harness_cpu_s * 1e6 / (double)r->acked);
		if (r->server_cpu_s >= 0)
			buf_printf(out, ", server %.2f s (%.0f µs/job)", r->server_cpu_s,
				   r->server_cpu_s * 1e6 / (double)r->acked);
		buf_putc(out, '\n');
	}
	if (r->nsamples) {
		char why[200];
		bench_soak_verdict(r->samples, r->nsamples, why, sizeof(why));
		buf_printf(out, "  soak: %s\n", why);
	}
	if (r->crash)
		buf_printf(out,
			   "  crash: killed at %llu acked; %llu/%llu acknowledged jobs complete on GET, "
			   "%llu missing, %llu completed twice, %llu dispatched again; "
			   "jobring check exit %d: %s\n",
			   (unsigned long long)r->killed_at, (unsigned long long)r->complete_on_get,
			   (unsigned long long)r->acked, (unsigned long long)r->missing,
			   (unsigned long long)r->duplicates, (unsigned long long)r->redispatched,
			   r->check_exit, bench_crash_ok(r) ? "PASS" : "FAIL");
	for (unsigned i = 0; i < r->nnotes; i++)
		buf_printf(out, "  note: %s\n", r->notes[i]);
	if (out->len == start)
		return -ENOBUFS;
	return 0;
}

/* ---- JSON ---------------------------------------------------------------------- */

static void jw_ms(struct jw *w, const char *key, uint64_t ns)
{
	jw_key(w, key);
	jw_double(w, round((double)ns / 1e3) / 1e3);	/* microsecond precision */
}

static void json_summary(struct jw *w, const struct hist *h)
{
	struct bench_summary s;

	bench_summarize(h, &s);
	jw_kv_uint(w, "count", s.count);
	jw_ms(w, "minMs", s.min);
	jw_ms(w, "p50Ms", s.p50);
	jw_ms(w, "p99Ms", s.p99);
	jw_ms(w, "p999Ms", s.p999);
	jw_ms(w, "maxMs", s.max);
	jw_key(w, "meanMs");
	jw_double(w, round(s.mean / 1e3) / 1e3);
}

static void json_round(struct jw *w, const char *key, double v)
{
	jw_key(w, key);
	jw_double(w, round(v * 10) / 10);
}

int bench_json(const struct bench_result *r, struct buf *out)
{
	struct jw w;

	jw_init(&w, out);
	jw_obj_begin(&w);
	jw_kv_str(&w, "mode", r->mode);
	jw_kv_uint(&w, "jobs", r->jobs);
	jw_kv_uint(&w, "connections", r->conns);
	jw_kv_uint(&w, "orgs", r->orgs);
	jw_key(&w, "rate");
	if (r->rate > 0)
		jw_double(&w, r->rate);
	else
		jw_null(&w);
	jw_kv_int(&w, "providerLatencyMs", r->provider_latency_ms);
	jw_key(&w, "failRate");
	jw_double(&w, r->fail_rate);
	jw_kv_str(&w, "sync", r->sync);
	jw_key(&w, "submitted");
	jw_obj_begin(&w);
	jw_kv_uint(&w, "acked", r->acked);
	jw_kv_uint(&w, "rejected", r->rejected);
	jw_kv_uint(&w, "errors", r->errors);
	jw_obj_end(&w);
	jw_kv_uint(&w, "completed", r->completed);
	jw_kv_uint(&w, "failed", r->failed);
	jw_key(&w, "webhooks");
	jw_obj_begin(&w);
	jw_kv_bool(&w, "enabled", r->webhooks_on);
	jw_kv_uint(&w, "received", r->webhooks);
	jw_obj_end(&w);
	jw_key(&w, "elapsedSeconds");
	jw_double(&w, round((double)r->elapsed_ns / 1e6) / 1e3);
	json_round(&w, "jobsPerSecond", bench_jobs_per_s(r));
	json_round(&w, "submitPerSecond", bench_submit_per_s(r));
	jw_key(&w, "cpu");
	jw_obj_begin(&w);
	jw_key(&w, "harnessSeconds");
	jw_double(&w, round(r->harness_cpu_s * 1000) / 1000);
	jw_key(&w, "serverSeconds");
	if (r->server_cpu_s >= 0)
		jw_double(&w, round(r->server_cpu_s * 1000) / 1000);
	else
		jw_null(&w);
	jw_obj_end(&w);
	jw_key(&w, "hops");
	jw_arr_begin(&w);
	for (int i = 0; i < BENCH_NHOPS; i++) {
		if (!r->hop_on[i])
			continue;
		jw_obj_begin(&w);
		jw_kv_str(&w, "name", hop_names[i]);
		jw_kv_str(&w, "label", hop_labels[i]);
		json_summary(&w, &r->hop[i]);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_key(&w, "total");
	jw_obj_begin(&w);
	json_summary(&w, &r->total);
	jw_obj_end(&w);
	if (r->nsamples) {
		char why[200];
		int v = bench_soak_verdict(r->samples, r->nsamples, why, sizeof(why));
		jw_key(&w, "soak");
		jw_obj_begin(&w);
		jw_key(&w, "samples");
		jw_arr_begin(&w);
		for (size_t i = 0; i < r->nsamples; i++) {
			const struct bench_sample *s = &r->samples[i];
			jw_obj_begin(&w);
			jw_key(&w, "t");
			jw_double(&w, round(s->t_s * 10) / 10);
			jw_kv_uint(&w, "acked", s->acked);
			jw_ms(&w, "p99Ms", s->p99_ns);
			if (s->rss_kb >= 0)
				jw_kv_int(&w, "rssKb", s->rss_kb);
			else
				jw_kv_null(&w, "rssKb");
			if (s->anon_kb >= 0)
				jw_kv_int(&w, "anonKb", s->anon_kb);
			else
				jw_kv_null(&w, "anonKb");
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_kv_bool(&w, "flat", v == 1);
		jw_kv_str(&w, "verdict", why);
		jw_obj_end(&w);
	}
	if (r->crash) {
		jw_key(&w, "crash");
		jw_obj_begin(&w);
		jw_kv_uint(&w, "killedAtAcked", r->killed_at);
		jw_kv_uint(&w, "acked", r->acked);
		jw_kv_uint(&w, "completeOnGet", r->complete_on_get);
		jw_kv_uint(&w, "missing", r->missing);
		jw_kv_uint(&w, "duplicates", r->duplicates);
		jw_kv_uint(&w, "redispatched", r->redispatched);
		jw_kv_int(&w, "checkExit", r->check_exit);
		jw_kv_bool(&w, "ok", bench_crash_ok(r));
		jw_obj_end(&w);
	}
	jw_key(&w, "notes");
	jw_arr_begin(&w);
	for (unsigned i = 0; i < r->nnotes; i++)
		jw_str(&w, r->notes[i]);
	jw_arr_end(&w);
	jw_obj_end(&w);
	if (jw_finish(&w) == 0)
		buf_putc(out, '\n');
	return jw_finish(&w);
}

/* ---- SVG ----------------------------------------------------------------------- */

/* Plot area inside the picture. */
struct frame {
	double x0, y0, w, h;	/* px: left, top, width, height */
	double lmin, lmax;	/* log10 of the x range in ns */
};

static double px_x(const struct frame *f, double ns)
{
	double l = log10(ns < 1 ? 1 : ns);
	return f->x0 + (l - f->lmin) / (f->lmax - f->lmin) * f->w;
}

static double px_y(const struct frame *f, double frac)
{
	return f->y0 + (1 - frac) * f->h;
}

static const char *time_label(double ns, char *buf, size_t n)
{
	if (ns >= 1e9)
		snprintf(buf, n, "%gs", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(buf, n, "%gms", ns / 1e6);
	else if (ns >= 1e3)
		snprintf(buf, n, "%gµs", ns / 1e3);
	else
		snprintf(buf, n, "%gns", ns);
	return buf;
}

/* One curve: for each non-empty bucket, the share of values <= its top. A
 * step at each bucket keeps the shape honest at low counts. */
static void svg_curve(struct buf *out, const struct frame *f, const struct hist *h,
		      const char *color)
{
	struct hist_iter it;
	struct hist_bucket bk;
	double n = (double)hist_count(h), prev = 0;
	int first = 1;

	buf_printf(out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" d=\"", color);
	hist_iter_init(&it, h);
	while (hist_iter_next(&it, &bk)) {
		double lo = (double)MAX(bk.lo, hist_min(h)), hi = (double)MIN(bk.hi, hist_max(h));
		double frac = (double)bk.cumulative / n;
		if (first)
			buf_printf(out, "M%.1f %.1f", px_x(f, lo), px_y(f, 0));
		else
			buf_printf(out, " L%.1f %.1f", px_x(f, lo), px_y(f, prev));
		buf_printf(out, " L%.1f %.1f", px_x(f, hi), px_y(f, frac));
		prev = frac;
		first = 0;
	}
	buf_puts(out, "\"/>\n");
}

int bench_svg(const struct bench_result *r, unsigned width, unsigned height, struct buf *out)
{
	struct frame f;
	uint64_t lo = UINT64_MAX, hi = 0;
	size_t start = out->len;
	char a[32];
	int nlegend = 0;

	width = MAX(width, 320u);
	height = MAX(height, 240u);
	for (int i = 0; i < BENCH_NHOPS; i++) {
		if (!r->hop_on[i] || !hist_count(&r->hop[i]))
			continue;
		lo = MIN(lo, MAX(hist_min(&r->hop[i]), 1));
		hi = MAX(hi, hist_max(&r->hop[i]));
	}
	if (hi == 0) {
		lo = 1000;
		hi = 1000000;
	}
	f.x0 = 70;
	f.y0 = 40;
	f.w = width - 70 - 230;
	f.h = height - 40 - 50;
	f.lmin = floor(log10((double)lo));
	f.lmax = ceil(log10((double)hi));
	if (f.lmax <= f.lmin)
		f.lmax = f.lmin + 1;

	buf_printf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
		   "viewBox=\"0 0 %u %u\" font-family=\"sans-serif\" font-size=\"12\">\n",
		   width, height, width, height);
	buf_printf(out, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"white\"/>\n", width,
		   height);
	buf_printf(out, "<text x=\"%.0f\" y=\"22\" font-size=\"14\">jobring bench (%s, %llu jobs): "
		   "latency percentiles per hop</text>\n", f.x0, r->mode,
		   (unsigned long long)r->jobs);
	/* grid: decades on x (with 2 and 5 in between), every 10% on y */
	for (double d = f.lmin; d <= f.lmax + 1e-9; d++) {
		for (int m = 1; m <= 5; m += (m == 1 ? 1 : 3)) {
			double ns = pow(10, d) * m, x = px_x(&f, ns);
			if (d + log10(m) > f.lmax + 1e-9)
				break;
			buf_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
				   "stroke=\"%s\"/>\n", x, f.y0, x, f.y0 + f.h,
				   m == 1 ? "#bbb" : "#eee");
			if (m == 1)
				buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s"
					   "</text>\n", x, f.y0 + f.h + 16, time_label(ns, a, sizeof(a)));
		}
	}
	for (int p = 0; p <= 100; p += 10) {
		double y = px_y(&f, p / 100.0);
		buf_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
			   f.x0, y, f.x0 + f.w, y, p % 50 ? "#eee" : "#bbb");
		buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n",
			   f.x0 - 6, y + 4, p);
	}
	buf_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
		   "stroke=\"#333\"/>\n", f.x0, f.y0, f.w, f.h);
	buf_printf(out, "<text x=\"%.1f\" y=\"%u\" text-anchor=\"middle\">latency (log scale)</text>\n",
		   f.x0 + f.w / 2, height - 10);
	for (int i = 0; i < BENCH_NHOPS; i++) {
		struct bench_summary s;
		double ly;
		if (!r->hop_on[i] || !hist_count(&r->hop[i]))
			continue;
		svg_curve(out, &f, &r->hop[i], hop_colors[i]);
		bench_summarize(&r->hop[i], &s);
		ly = f.y0 + 10 + 36.0 * nlegend++;
		buf_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
			   "stroke-width=\"3\"/>\n", f.x0 + f.w + 14, ly, f.x0 + f.w + 34, ly,
			   hop_colors[i]);
		buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", f.x0 + f.w + 40, ly + 4,
			   hop_labels[i]);
		buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\" font-size=\"11\">p50 %.4g ms, "
			   "p99 %.4g ms</text>\n", f.x0 + f.w + 40, ly + 18, ms(s.p50), ms(s.p99));
	}
	buf_puts(out, "</svg>\n");
	return out->len > start ? 0 : -ENOBUFS;
}
