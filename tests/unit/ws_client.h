/* ws_client.h - a raw WebSocket/SSE client for the ws and hub unit tests:
 * writes frames byte-exact (masked or not, fragmented, any opcode) and
 * parses what the server sends, pumping the server's loop while it waits.
 * The including test defines `static void pump(void)`. */
#ifndef JOBRING_TEST_WS_CLIENT_H
#define JOBRING_TEST_WS_CLIENT_H

#include "jobring/buf.h"
#include "jobring/util.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define WSC_WAIT_PUMPS 20000	/* ~40 s of 2 ms pumps: a hang, not a timing check */

static void pump(void);

struct wsc {
	int fd;
	struct buf in;
	int eof;
};

static void wsc_init(struct wsc *c, int fd)
{
	c->fd = fd;
	c->eof = 0;
	buf_init(&c->in);
	CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
}

static void wsc_close(struct wsc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
}

/* Write all of p, pumping the server while the socket is full. */
static void wsc_write(struct wsc *c, const void *p, size_t n)
{
	const char *s = p;
	int spins = 0;

	while (n) {
		ssize_t k = send(c->fd, s, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k > 0) {
			s += k;
			n -= (size_t)k;
			continue;
		}
		CHECK(k < 0 && (errno == EAGAIN || errno == EINTR));
		CHECK(++spins < WSC_WAIT_PUMPS);
		pump();
	}
}

/* One frame from the client: masked unless told otherwise. */
static void wsc_frame(struct wsc *c, int fin, int opcode, const void *p, size_t n, int masked)
{
	unsigned char *f = xmalloc(n + 14), key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	size_t h = 0;

	f[h++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
	if (n < 126) {
		f[h++] = (unsigned char)((masked ? 0x80 : 0) | n);
	} else if (n < 65536) {
		f[h++] = (unsigned char)((masked ? 0x80 : 0) | 126);
		f[h++] = (unsigned char)(n >> 8);
		f[h++] = (unsigned char)n;
	} else {
		f[h++] = (unsigned char)((masked ? 0x80 : 0) | 127);
		for (int i = 0; i < 8; i++)
			f[h++] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
	}
	if (masked) {
		memcpy(f + h, key, 4);
		h += 4;
	}
	for (size_t i = 0; i < n; i++)
		f[h + i] = (unsigned char)(((const unsigned char *)p)[i] ^ (masked ? key[i & 3] : 0));
	wsc_write(c, f, h + n);
	free(f);
}

static void wsc_text(struct wsc *c, const char *s)
{
	wsc_frame(c, 1, 1, s, strlen(s), 1);
}

/* Read what is there; 1 if bytes came, 0 if none, -1 at EOF/reset. */
static int wsc_fill(struct wsc *c)
{
	CHECK(buf_reserve(&c->in, 65536) == 0);
	ssize_t k = recv(c->fd, c->in.data + c->in.len, 65536, MSG_DONTWAIT);
	if (k > 0) {
		buf_commit(&c->in, (size_t)k);
		return 1;
	}
	if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
		c->eof = 1;
		return -1;
	}
	return 0;
}

/* Parse one server frame from the buffer: 1 and the frame, or 0. Server
 * frames must be unmasked. out gets the payload, NUL-terminated. */
static int wsc_parse(struct wsc *c, int *fin, int *op, char *out, size_t cap, size_t *n)
{
	const unsigned char *p = (const unsigned char *)c->in.data;
	size_t h = 2, len;

	if (c->in.len < 2)
		return 0;
	CHECK((p[1] & 0x80) == 0);	/* never masked */
	len = p[1] & 0x7f;
	if (len == 126) {
		if (c->in.len < 4)
			return 0;
		len = (size_t)p[2] << 8 | p[3];
		h = 4;
	} else if (len == 127) {
		if (c->in.len < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		h = 10;
	}
	if (c->in.len < h + len)
		return 0;
	CHECK(len < cap);
	*fin = p[0] >> 7;
	*op = p[0] & 0x0f;
	memcpy(out, p + h, len);
	out[len] = '\0';
	*n = len;
	buf_consume(&c->in, h + len);
	return 1;
}

/* The next server frame (waiting for it); 0, or -1 at EOF with nothing left. */
static int wsc_read(struct wsc *c, int *op, char *out, size_t cap, size_t *n)
{
	int fin;

	for (int spins = 0;; spins++) {
		if (wsc_parse(c, &fin, op, out, cap, n)) {
			CHECK(fin);	/* we never fragment */
			return 0;
		}
		if (c->eof)
			return -1;
		if (wsc_fill(c) == 0) {
			CHECK(spins < WSC_WAIT_PUMPS);
			pump();
		}
	}
}

/* The next data frame, answering pings on the way (as a browser does). */
static void wsc_read_text(struct wsc *c, char *out, size_t cap)
{
	int op;
	size_t n;

	for (;;) {
		CHECK(wsc_read(c, &op, out, cap, &n) == 0);
		if (op == 0x9) {
			wsc_frame(c, 1, 0xA, out, n, 1);
			continue;
		}
		CHECK_EQ(op, 1);
		return;
	}
}

/* Expect a close frame with this code; returns its reason in out. */
static void wsc_expect_close(struct wsc *c, int code, char *out, size_t cap)
{
	int op;
	size_t n;

	do
		CHECK(wsc_read(c, &op, out, cap, &n) == 0);
	while (op == 0x9 || op == 0xA);
	CHECK_EQ(op, 8);
	CHECK(n >= 2);
	CHECK_EQ(((unsigned char)out[0] << 8) | (unsigned char)out[1], code);
	memmove(out, out + 2, n - 2);
	out[n - 2] = '\0';
}

/* Wait for the server to close the connection (drops anything else). */
static void wsc_expect_eof(struct wsc *c)
{
	for (int spins = 0; !c->eof; spins++) {
		buf_reset(&c->in);
		if (wsc_fill(c) == 0) {
			CHECK(spins < WSC_WAIT_PUMPS);
			pump();
		}
	}
}

/* SSE: the next event block up to its blank line, NUL-terminated in out. */
static void wsc_read_event(struct wsc *c, char *out, size_t cap)
{
	for (int spins = 0;; spins++) {
		char *e = c->in.data ? memmem(c->in.data, c->in.len, "\n\n", 2) : NULL;
		if (e) {
			size_t n = (size_t)(e - c->in.data) + 2;
			CHECK(n < cap);
			memcpy(out, c->in.data, n);
			out[n] = '\0';
			buf_consume(&c->in, n);
			return;
		}
		CHECK(!c->eof);
		if (wsc_fill(c) == 0) {
			CHECK(spins < WSC_WAIT_PUMPS);
			pump();
		}
	}
}

#endif
