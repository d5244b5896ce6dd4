/* util.h - small helpers every module uses: allocation that aborts on OOM,
 * clocks, random bytes and ids.
 *
 * Ownership: x*alloc results belong to the caller (free with free()).
 * Errors: functions returning int give 0 or a positive count on success and
 * -errno on failure, like liburing. */
#ifndef JOBRING_UTIL_H
#define JOBRING_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/** Allocate or abort: every actor is restartable, so OOM ends the process. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/** Wall-clock Unix time in milliseconds (what jobs and LMDB store). */
int64_t now_ms(void);
/** Monotonic clock in nanoseconds (what in-memory deadlines use). */
int64_t mono_ns(void);

/** Fill buf with n cryptographically random bytes (getrandom). Aborts on failure. */
void rand_bytes(void *buf, size_t n);
/** A fast non-cryptographic PRNG step (xorshift64*); state must be non-zero. */
uint64_t rand_next(uint64_t *state);

/** Write prefix + n url-safe random chars + NUL into out (size >= strlen(prefix)+n+1).
 *  Returns the length written. */
size_t id_new(char *out, size_t outsz, const char *prefix, size_t n);
/** Like id_new, but the first ID_TIME_CHARS chars are the creation time in
 *  milliseconds, so ids made later sort after (B-tree inserts then land on
 *  the rightmost pages instead of a random one each); n >= ID_TIME_CHARS + 8,
 *  and the rest is random. */
#define ID_TIME_CHARS 8
size_t id_new_sorted(char *out, size_t outsz, const char *prefix, size_t n);

/** Parse a decimal int64 in [min,max] from s (whole string). 0 or -EINVAL/-ERANGE. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret);

/** write() all of buf, retrying on EINTR and short writes. 0 or -errno. */
int write_all(int fd, const void *buf, size_t n);

/** A listening TCP socket on host:port (IPv4; "localhost" means 127.0.0.1;
 *  port 0 picks one): SO_REUSEADDR, close-on-exec, backlog 4096. Returns the
 *  fd (the caller owns it) and the bound port in *bound, or -errno. */
int net_listen(const char *host, uint16_t port, uint16_t *bound);

/** Read a whole file into a NUL-terminated malloc'd buffer. 0 or -errno. */
int read_file(const char *path, char **ret, size_t *ret_len);

#endif
