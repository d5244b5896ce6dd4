/* util.c - allocation, clocks, randomness and small parsers. */
#include "jobring/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
	fprintf(stderr, "jobring: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (!p)
		oom(n * sz);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void rand_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("jobring: getrandom");
			abort();
		}
		p += r;
		n -= (size_t)r;
	}
}

uint64_t rand_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Ids use an alphabet in ASCII order, so an id's time prefix sorts the way
 * the time does. Random bytes come from a small per-process pool: one
 * getrandom per 4 KiB instead of one per id (a forked child drops it, so
 * actors never share it). */
static const char id_alpha[] = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

static unsigned char id_pool[4096];
static size_t id_left;

static void id_forked(void)
{
	id_left = 0;
}

static void id_register(void)
{
	pthread_atfork(NULL, NULL, id_forked);
}

static void id_random(unsigned char *out, size_t n)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, id_register);
	while (n) {
		if (!id_left) {
			rand_bytes(id_pool, sizeof(id_pool));
			id_left = sizeof(id_pool);
		}
		size_t k = n < id_left ? n : id_left;
		memcpy(out, id_pool + sizeof(id_pool) - id_left, k);
		id_left -= k;
		out += k;
		n -= k;
	}
}

static size_t id_make(char *out, size_t outsz, const char *prefix, size_t n, int sorted)
{
	unsigned char rnd[64];
	size_t plen = strlen(prefix), i = 0;

	if (n > sizeof(rnd))
		n = sizeof(rnd);
	if (plen + n + 1 > outsz || (sorted && n < ID_TIME_CHARS + 8))
		abort();
	memcpy(out, prefix, plen);
	if (sorted) {
		uint64_t t = (uint64_t)now_ms();
		for (; i < ID_TIME_CHARS; i++)
			out[plen + i] = id_alpha[(t >> (6 * (ID_TIME_CHARS - 1 - i))) & 63];
	}
	id_random(rnd, n - i);
	for (size_t k = 0; i < n; i++, k++)
		out[plen + i] = id_alpha[rnd[k] & 63];
	out[plen + n] = '\0';
	return plen + n;
}

size_t id_new(char *out, size_t outsz, const char *prefix, size_t n)
{
	return id_make(out, outsz, prefix, n, 0);
}

size_t id_new_sorted(char *out, size_t outsz, const char *prefix, size_t n)
{
	return id_make(out, outsz, prefix, n, 1);
}

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	char *end;
	long long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int read_file(const char *path, char **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t len = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*ret = buf;
	if (ret_len)
		*ret_len = len;
	return 0;
}

int net_listen(const char *host, uint16_t port, uint16_t *bound)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1, fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	if (inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1", &sin.sin_addr) != 1)
		return -EINVAL;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 4096) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	getsockname(fd, (struct sockaddr *)&sin, &len);
	*bound = ntohs(sin.sin_port);
	return fd;
}
