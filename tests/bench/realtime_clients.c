/* realtime_clients.c - N raw WebSocket clients on one epoll thread for the
 * realtime fan-out benchmark (tests/bench/realtime_fanout.py drives it): each
 * connects to /realtime?token=, sends an init message, answers pings, and
 * for every text frame takes `"at":<ms>` and records now - at. Prints one
 * line: "count closed p50 p90 p99 max" (ms). Not part of the build:
 *
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -o /tmp/realtime_clients tests/bench/realtime_clients.c
 *   realtime_clients PORT TOKEN N SECONDS */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ (256 * 1024)

struct cl {
	int fd;
	size_t len;
	unsigned char *buf;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void send_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		s += k;
		n -= (size_t)k;
	}
}

static int dial(int port, const char *token)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char req[512], head[4096];
	static const char init[] = "{\"type\":\"init\",\"lastEventId\":0}";
	unsigned char fr[64] = { 0x81, 0x80 | (sizeof(init) - 1), 0, 0, 0, 0 };
	size_t n = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	snprintf(req, sizeof(req),
		 "GET /realtime?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", token);
	send_all(fd, req, strlen(req));
	/* read the head byte by byte: nothing may be consumed past it */
	while (n < sizeof(head) - 1 && (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4))) {
		if (recv(fd, head + n, 1, 0) != 1)
			die("handshake");
		n++;
	}
	head[n] = '\0';
	if (strncmp(head, "HTTP/1.1 101", 12)) {
		fprintf(stderr, "refused: %.40s\n", head);
		exit(1);
	}
	memcpy(fr + 6, init, sizeof(init) - 1);	/* zero mask key: payload as is */
	send_all(fd, fr, 6 + sizeof(init) - 1);
	return fd;
}

int main(int argc, char **argv)
{
	int port, n, ep, closed = 0;
	double secs, end, *lat = NULL;
	size_t nlat = 0, caplat = 0;
	struct cl *cs;
	struct epoll_event evs[256];

	if (argc != 5)
		return fprintf(stderr, "usage: %s PORT TOKEN N SECONDS\n", argv[0]), 2;
	port = atoi(argv[1]);
	n = atoi(argv[3]);
	secs = atof(argv[4]);
	cs = calloc((size_t)n, sizeof(*cs));
	if ((ep = epoll_create1(0)) < 0)
		die("epoll");
	for (int i = 0; i < n; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = &cs[i] };
		cs[i].fd = dial(port, argv[2]);
		cs[i].buf = malloc(BUFSZ);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e) < 0)
			die("epoll_ctl");
	}
	printf("ready\n");
	fflush(stdout);
	end = now_ms() + secs * 1e3;
	while (now_ms() < end) {
		int k = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < k; i++) {
			struct cl *c = evs[i].data.ptr;
			ssize_t r = recv(c->fd, c->buf + c->len, BUFSZ - c->len, MSG_DONTWAIT);
			double t = now_ms();
			size_t off = 0;
			if (r <= 0) {
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				closed++;
				continue;
			}
			c->len += (size_t)r;
			for (;;) {
				unsigned char *p = c->buf + off;
				size_t have = c->len - off, h = 2, len;
				if (have < 2)
					break;
				len = p[1] & 0x7f;
				if (len == 126) {
					if (have < 4)
						break;
					len = (size_t)p[2] << 8 | p[3];
					h = 4;
				} else if (len == 127) {
					if (have < 10)
						break;
					len = 0;
					for (int j = 0; j < 8; j++)
						len = len << 8 | p[2 + j];
					h = 10;
				}
				if (have < h + len)
					break;
				if ((p[0] & 0x0f) == 1) {
					char *at = memmem(p + h, len, "\"at\":", 5);
					if (at) {
						if (nlat == caplat) {
							caplat = caplat ? caplat * 2 : 1 << 16;
							lat = realloc(lat, caplat * sizeof(*lat));
						}
						lat[nlat++] = t - (double)strtoll(at + 5, NULL, 10);
					}
				} else if ((p[0] & 0x0f) == 9 && len <= 125) {
					unsigned char pong[140] = { 0x8a, (unsigned char)(0x80 | len) };
					memcpy(pong + 6, p + h, len);
					send_all(c->fd, pong, 6 + len);
				}
				off += h + len;
			}
			memmove(c->buf, c->buf + off, c->len - off);
			c->len -= off;
		}
	}
	qsort(lat, nlat, sizeof(*lat), cmp);
#define P(x) (nlat ? lat[(size_t)((double)(nlat - 1) * (x))] : 0.0)
	printf("%zu %d %.1f %.1f %.1f %.1f\n", nlat, closed, P(0.5), P(0.9), P(0.99), P(1.0));
	return 0;
}
