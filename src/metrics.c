/* metrics.c - the shared metrics block and its Prometheus rendering. */
#include "jobring/metrics.h"
#include "jobring/buf.h"
#include "jobring/job.h"
#include "jobring/region.h"
#include "jobring/store.h"
#include "jobring/util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_NAMED 32

struct named {
	char name[40];
	_Atomic uint64_t n;
};

struct metrics {
	uint64_t magic;
	char types[CONFIG_MAX_TYPES][CONFIG_NAME_MAX];
	int ntypes;
	_Atomic uint64_t created[CONFIG_MAX_TYPES];
	_Atomic uint64_t terminal[CONFIG_MAX_TYPES][3];	/* complete failed cancelled */
	struct named job_codes[METRICS_MAX_CODES];		/* failed jobs by error code */
	struct named api_codes[METRICS_MAX_CODES];		/* API error answers by code */
	struct named counters[MAX_NAMED];
	_Atomic uint32_t provider_busy[CONFIG_MAX_PROVIDERS];
	struct hist hist[MH_COUNT];
};

#define METRICS_MAGIC 0x6a726d6574726963ULL

static struct metrics *cur;

struct metrics *metrics_create(const struct config *cfg)
{
	struct metrics *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->magic = METRICS_MAGIC;
	for (int i = 0; i < cfg->ntypes && i < CONFIG_MAX_TYPES; i++)
		snprintf(m->types[m->ntypes++], CONFIG_NAME_MAX, "%s", cfg->types[i].name);
	for (int i = 0; i < MH_COUNT; i++)
		hist_init(&m->hist[i]);
	return m;
}

void metrics_destroy(struct metrics *m)
{
	if (m)
		munmap(m, sizeof(*m));
}

void metrics_attach(struct metrics *m)
{
	cur = m;
}

static int type_index(const char *type)
{
	for (int i = 0; i < cur->ntypes; i++)
		if (strcmp(cur->types[i], type) == 0)
			return i;
	return -1;
}

/* Find or claim the slot for name (claiming races are settled by CAS on the
 * first byte; a lost race just retries). */
static struct named *named_slot(struct named *v, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		if (v[i].name[0] == '\0') {
			char expect = '\0';
			if (atomic_compare_exchange_strong((_Atomic char *)&v[i].name[0], &expect, name[0])) {
				snprintf(v[i].name + 1, sizeof(v[i].name) - 1, "%s", name + 1);
				return &v[i];
			}
		}
		if (strncmp(v[i].name, name, sizeof(v[i].name) - 1) == 0)
			return &v[i];
	}
	return NULL;
}

void metrics_job_created(const char *type)
{
	int i;
	if (cur && (i = type_index(type)) >= 0)
		atomic_fetch_add_explicit(&cur->created[i], 1, memory_order_relaxed);
}

void metrics_job_terminal(const char *type, int status, const char *error_code)
{
	int i, k = status == JOB_COMPLETE ? 0 : status == JOB_FAILED ? 1 : 2;
	if (!cur)
		return;
	if ((i = type_index(type)) >= 0)
		atomic_fetch_add_explicit(&cur->terminal[i][k], 1, memory_order_relaxed);
	if (status == JOB_FAILED && error_code && *error_code) {
		struct named *s = named_slot(cur->job_codes, METRICS_MAX_CODES, error_code);
		if (s)
			atomic_fetch_add_explicit(&s->n, 1, memory_order_relaxed);
	}
}

void metrics_api_error(const char *code)
{
	struct named *s;
	if (cur && (s = named_slot(cur->api_codes, METRICS_MAX_CODES, code)))
		atomic_fetch_add_explicit(&s->n, 1, memory_order_relaxed);
}

void metrics_count(const char *name)
{
	struct named *s;
	if (cur && (s = named_slot(cur->counters, MAX_NAMED, name)))
		atomic_fetch_add_explicit(&s->n, 1, memory_order_relaxed);
}

void metrics_provider_busy(int provider, unsigned busy)
{
	if (cur && provider >= 0 && provider < CONFIG_MAX_PROVIDERS)
		atomic_store_explicit(&cur->provider_busy[provider], busy, memory_order_relaxed);
}

void metrics_observe_us(enum metrics_hist h, uint64_t us)
{
	if (cur && h < MH_COUNT)
		hist_record(&cur->hist[h], us);
}

/* ---- rendering ----------------------------------------------------------- */

static const char *const hist_names[MH_COUNT] = {
	"jobring_submit_seconds", "jobring_wait_to_dispatch_seconds",
	"jobring_dispatch_to_complete_seconds", "jobring_webhook_delivery_seconds",
};
static const char *const hist_help[MH_COUNT] = {
	"POST /jobs latency: request received to answer (after the durable commit)",
	"Time from waiting to dispatched",
	"Time from dispatched to complete",
	"Time from an event to its webhook delivery",
};

static void render_hist(struct buf *b, int which)
{
	static const double le[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				     0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300 };
	struct hist h = cur->hist[which];	/* a snapshot */
	struct hist_iter it;
	struct hist_bucket bk;
	uint64_t cum = 0;
	size_t k = 0;

	buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", hist_names[which], hist_help[which],
		   hist_names[which]);
	hist_iter_init(&it, &h);
	/* bucket upper bounds are in µs; fold them into the fixed `le` edges */
	while (hist_iter_next(&it, &bk)) {
		while (k < ARRAY_SIZE(le) && (double)bk.hi / 1e6 > le[k]) {
			buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", hist_names[which], le[k],
				   (unsigned long long)cum);
			k++;
		}
		cum += bk.count;
	}
	for (; k < ARRAY_SIZE(le); k++)
		buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", hist_names[which], le[k],
			   (unsigned long long)cum);
	buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", hist_names[which], (unsigned long long)cum);
	buf_printf(b, "%s_sum %.6f\n%s_count %llu\n", hist_names[which],
		   hist_mean(&h) * (double)hist_count(&h) / 1e6, hist_names[which],
		   (unsigned long long)cum);
}

static void status_gauges(struct buf *b, struct store *st)
{
	uint64_t n[JOB_STATUS_MAX] = { 0 };
	MDB_txn *t;
	MDB_cursor *c;
	MDB_val k, v;

	if (store_begin(st, 1, &t) == 0) {
		mdb_cursor_open(t, st->dbi[DB_BY_STATUS], &c);
		for (int s = JOB_WAITING; s <= JOB_RUNNING; s++) {
			unsigned char key = (unsigned char)s;
			k.mv_data = &key;
			k.mv_size = 1;
			for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
			     rc == 0 && ((unsigned char *)k.mv_data)[0] == s;
			     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
				n[s]++;
		}
		mdb_cursor_close(c);
		store_abort(t);
	}
	buf_puts(b, "# HELP jobring_jobs Jobs not yet finished, by status\n# TYPE jobring_jobs gauge\n");
	for (int s = JOB_WAITING; s <= JOB_RUNNING; s++)
		buf_printf(b, "jobring_jobs{status=\"%s\"} %llu\n", job_status_name(s),
			   (unsigned long long)n[s]);
}

void metrics_render(struct buf *b, const struct config *cfg, struct store *st, struct region *rg)
{
	static const char *const term[3] = { "complete", "failed", "cancelled" };
	uint64_t used = 0, mapsize = 0;

	if (!cur)
		return;
	buf_puts(b, "# HELP jobring_jobs_created_total Jobs accepted, by type\n"
		    "# TYPE jobring_jobs_created_total counter\n");
	for (int i = 0; i < cur->ntypes; i++)
		buf_printf(b, "jobring_jobs_created_total{type=\"%s\"} %llu\n", cur->types[i],
			   (unsigned long long)atomic_load(&cur->created[i]));
	buf_puts(b, "# HELP jobring_jobs_finished_total Jobs that reached a terminal status\n"
		    "# TYPE jobring_jobs_finished_total counter\n");
	for (int i = 0; i < cur->ntypes; i++)
		for (int k = 0; k < 3; k++)
			buf_printf(b, "jobring_jobs_finished_total{type=\"%s\",status=\"%s\"} %llu\n",
				   cur->types[i], term[k], (unsigned long long)atomic_load(&cur->terminal[i][k]));
	buf_puts(b, "# HELP jobring_job_errors_total Failed jobs by error code\n"
		    "# TYPE jobring_job_errors_total counter\n");
	for (int i = 0; i < METRICS_MAX_CODES && cur->job_codes[i].name[0]; i++)
		buf_printf(b, "jobring_job_errors_total{code=\"%s\"} %llu\n", cur->job_codes[i].name,
			   (unsigned long long)atomic_load(&cur->job_codes[i].n));
	buf_puts(b, "# HELP jobring_api_errors_total API error answers by code\n"
		    "# TYPE jobring_api_errors_total counter\n");
	for (int i = 0; i < METRICS_MAX_CODES && cur->api_codes[i].name[0]; i++)
		buf_printf(b, "jobring_api_errors_total{code=\"%s\"} %llu\n", cur->api_codes[i].name,
			   (unsigned long long)atomic_load(&cur->api_codes[i].n));
	buf_puts(b, "# HELP jobring_events_total Other events\n# TYPE jobring_events_total counter\n");
	for (int i = 0; i < MAX_NAMED && cur->counters[i].name[0]; i++)
		buf_printf(b, "jobring_events_total{event=\"%s\"} %llu\n", cur->counters[i].name,
			   (unsigned long long)atomic_load(&cur->counters[i].n));
	if (st)
		status_gauges(b, st);
	buf_puts(b, "# HELP jobring_provider_in_flight Jobs dispatched to a provider and not finished\n"
		    "# TYPE jobring_provider_in_flight gauge\n");
	for (int i = 0; i < cfg->nproviders; i++)
		buf_printf(b, "jobring_provider_in_flight{provider=\"%s\"} %u\n", cfg->providers[i].id,
			   atomic_load(&cur->provider_busy[i]));
	if (rg) {
		buf_puts(b, "# HELP jobring_ring_messages Messages waiting in a ring\n"
			    "# TYPE jobring_ring_messages gauge\n");
		for (int f = 0; f < ACTOR_COUNT; f++)
			for (int t = 0; t < ACTOR_COUNT; t++)
				if (f != t)
					buf_printf(b, "jobring_ring_messages{from=\"%s\",to=\"%s\"} %u\n",
						   actor_name((enum actor_id)f), actor_name((enum actor_id)t),
						   region_ring_used(rg, (enum actor_id)f, (enum actor_id)t));
	}
	for (int h = 0; h < MH_COUNT; h++)
		render_hist(b, h);
	if (st)
		store_usage(st, &used, &mapsize);
	buf_printf(b, "# HELP jobring_lmdb_used_bytes Bytes used in the LMDB map\n"
		      "# TYPE jobring_lmdb_used_bytes gauge\njobring_lmdb_used_bytes %llu\n"
		      "# HELP jobring_lmdb_map_bytes Size of the LMDB map\n"
		      "# TYPE jobring_lmdb_map_bytes gauge\njobring_lmdb_map_bytes %llu\n"
		      "# HELP jobring_lmdb_free_bytes Room left in the LMDB map\n"
		      "# TYPE jobring_lmdb_free_bytes gauge\njobring_lmdb_free_bytes %llu\n",
		   (unsigned long long)used, (unsigned long long)mapsize,
		   (unsigned long long)(mapsize > used ? mapsize - used : 0));
}
