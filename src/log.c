/* log.c - actor-named log lines, plain or JSON. */
#include "jobring/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char log_actor[32] = "jobring";
static int log_json;
static enum log_level log_min = LOG_INFO;

void log_init(const char *actor, int json)
{
	const char *d = getenv("JOBRING_DEBUG");

	snprintf(log_actor, sizeof(log_actor), "%s", actor);
	log_json = json;
	if (d && *d && strcmp(d, "0") != 0)
		log_min = LOG_DEBUG;
}

void log_set_level(enum log_level lvl)
{
	log_min = lvl;
}

static void json_escape(char *out, size_t outsz, const char *in)
{
	size_t o = 0;
	for (; *in && o + 7 < outsz; in++) {
		unsigned char c = (unsigned char)*in;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, outsz - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	char msg[2048], line[4608], ts[40];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = (int)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - (size_t)n, ".%03ldZ", now.tv_nsec / 1000000);
	if (log_json) {
		char esc[4096];
		json_escape(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line),
			     "{\"ts\":\"%s\",\"actor\":\"%s\",\"pid\":%d,\"level\":\"%s\",\"msg\":\"%s\"}\n",
			     ts, log_actor, (int)getpid(), names[lvl], esc);
	} else {
		n = snprintf(line, sizeof(line), "%s %s[%d] %s: %s\n", ts, log_actor,
			     (int)getpid(), names[lvl], msg);
	}
	if (n > (int)sizeof(line))
		n = (int)sizeof(line);
	/* One write per line so lines from several actors do not interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}
