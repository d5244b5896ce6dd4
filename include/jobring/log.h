/* log.h - one line per message to stderr, naming the process (actor).
 *
 * Library modules do not log (systemd's rule); actors, the supervisor and
 * commands do. Plain format: "2026-11-28T15:00:00.123Z intake info: msg".
 * JSON format (--log-format json): {"ts":...,"actor":...,"level":...,"msg":...}. */
#ifndef JOBRING_LOG_H
#define JOBRING_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/** Set the name printed on every line (copied) and the format. */
void log_init(const char *actor, int json);
/** Lines below this level are dropped (default LOG_INFO; JOBRING_DEBUG=1 → debug). */
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
