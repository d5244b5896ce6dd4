/* Unit test for ws (WebSocket and SSE connections over io_uring) and the
 * intake → notifier handoff: a real loop in this process, the server end of
 * a socketpair adopted by ws, and a raw client of ours on the other end that
 * sends byte-exact frames (fragmented, unmasked, oversized, one byte at a
 * time) and checks what comes back. */
#include "jobring/hub.h"
#include "jobring/ws.h"
#include "ws_client.h"

#include <dirent.h>
#include <signal.h>

static struct loop L;
static struct ws_server *S;	/* no pings during the protocol tests */
static struct ws_server *P;	/* ping every 40 ms */

struct peer {
	struct ws_conn *conn;
	int closed, ntext, echo;
	char last[8192];
	size_t last_len;
};

static void pump(void)
{
	CHECK(loop_wait(&L, 2) >= 0);
	if (S)
		ws_server_tick(S, mono_ns());
	if (P)
		ws_server_tick(P, mono_ns());
}

static void on_text(struct ws_conn *c, void *user, const char *p, size_t n, void *arg)
{
	struct peer *pe = user;
	(void)arg;
	CHECK(pe->conn == c);
	CHECK(n < sizeof(pe->last));
	memcpy(pe->last, p, n);
	pe->last[n] = '\0';
	pe->last_len = n;
	pe->ntext++;
	if (pe->echo) {
		struct ws_frame *f = ws_frame_text(p, n);
		CHECK(ws_send(c, f) == 0);
		ws_frame_unref(f);
	}
}

static void on_closed(struct ws_conn *c, void *user, void *arg)
{
	struct peer *pe = user;
	(void)arg;
	CHECK(pe->conn == c);
	CHECK_EQ(pe->closed, 0);	/* exactly once */
	pe->closed = 1;
}

/* A connected pair: the server end adopted by srv, the client end in cl. */
static void open_pair(struct ws_server *srv, enum ws_kind kind, struct peer *pe, struct wsc *cl,
		      const void *left, size_t nleft)
{
	int sv[2];

	memset(pe, 0, sizeof(*pe));
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(ws_adopt(srv, sv[0], kind, left, nleft, pe, &pe->conn) == 0);
	wsc_init(cl, sv[1]);
}

static void wait_closed(struct peer *pe)
{
	for (int i = 0; !pe->closed; i++) {
		CHECK(i < WSC_WAIT_PUMPS);
		pump();
	}
}

static void wait_text(struct peer *pe, int n)
{
	for (int i = 0; pe->ntext < n; i++) {
		CHECK(i < WSC_WAIT_PUMPS);
		pump();
	}
}

static void test_frames(void)
{
	struct ws_frame *f;
	static char big[70000];

	f = ws_frame_text("hi", 2);
	CHECK_EQ(ws_frame_len(f), 4);
	ws_frame_unref(f);
	f = ws_frame_text(big, 125);
	CHECK_EQ(ws_frame_len(f), 127);
	ws_frame_unref(f);
	f = ws_frame_text(big, 126);
	CHECK_EQ(ws_frame_len(f), 130);
	ws_frame_unref(f);
	f = ws_frame_text(big, 65535);
	CHECK_EQ(ws_frame_len(f), 65539);
	ws_frame_unref(f);
	f = ws_frame_text(big, 65536);
	CHECK_EQ(ws_frame_len(f), 65546);
	ws_frame_unref(f);
	CHECK(ws_frame_text(big, (size_t)2 << 30) == NULL);
	printf("frames: header sizes at 125/126/65535/65536: ok\n");
}

static void test_echo_and_fragments(void)
{
	struct peer pe;
	struct wsc cl;
	char out[70000];
	int op;
	size_t n;
	const char *msg = "{\"type\":\"init\",\"lastEventId\":7}";

	open_pair(S, WS_WEBSOCKET, &pe, &cl, NULL, 0);
	pe.echo = 1;
	wsc_text(&cl, "hello");
	wsc_read_text(&cl, out, sizeof(out));
	CHECK_STR(out, "hello");

	/* fragments with a ping in between: a pong and the echo, in either
	 * order (the four frames may arrive in one read) */
	wsc_frame(&cl, 0, 1, "hel", 3, 1);
	wsc_frame(&cl, 1, 9, "x1", 2, 1);
	wsc_frame(&cl, 0, 0, "lo ", 3, 1);
	wsc_frame(&cl, 1, 0, "world", 5, 1);
	for (int got = 0; got != 3;) {
		CHECK(wsc_read(&cl, &op, out, sizeof(out), &n) == 0);
		if (op == 0xA) {
			CHECK(n == 2 && memcmp(out, "x1", 2) == 0 && !(got & 1));
			got |= 1;
		} else {
			CHECK(op == 1 && !(got & 2));
			CHECK_STR(out, "hello world");
			got |= 2;
		}
	}
	CHECK_EQ(pe.ntext, 2);

	/* one byte at a time: wslay resumes its state machine at every byte */
	{
		unsigned char fr[64], key[4] = { 1, 2, 3, 4 };
		size_t len = strlen(msg), h = 0;
		fr[h++] = 0x81;
		fr[h++] = (unsigned char)(0x80 | len);
		memcpy(fr + h, key, 4);
		h += 4;
		for (size_t i = 0; i < len; i++)
			fr[h + i] = (unsigned char)(msg[i] ^ key[i & 3]);
		for (size_t i = 0; i < h + len; i++) {
			wsc_write(&cl, fr + i, 1);
			pump();
		}
		wait_text(&pe, 3);
		CHECK_STR(pe.last, msg);
		wsc_read_text(&cl, out, sizeof(out));
		CHECK_STR(out, msg);
	}

	/* a 16-bit length (1000 bytes) in three fragments */
	{
		char m[1000];
		memset(m, 'a', sizeof(m));
		wsc_frame(&cl, 0, 1, m, 400, 1);
		wsc_frame(&cl, 0, 0, m + 400, 400, 1);
		wsc_frame(&cl, 1, 0, m + 800, 200, 1);
		wsc_read_text(&cl, out, sizeof(out));
		CHECK(strlen(out) == 1000 && out[999] == 'a');
	}
	CHECK(!pe.closed && ws_open(pe.conn));

	/* the client closes: the server echoes the close, then closes the socket */
	wsc_frame(&cl, 1, 8, "\x03\xe8" "bye", 5, 1);
	wsc_expect_close(&cl, 1000, out, sizeof(out));
	CHECK_STR(out, "bye");
	wsc_expect_eof(&cl);
	wait_closed(&pe);
	wsc_close(&cl);
	printf("echo, fragments with an interleaved ping, byte-at-a-time, client close: ok\n");
}

static void test_leftover(void)
{
	struct peer pe;
	struct wsc cl;
	unsigned char fr[16] = { 0x81, 0x82, 9, 9, 9, 9, 'o' ^ 9, 'k' ^ 9 };
	char out[256];

	/* the HTTP server had read a whole frame and the head of the next */
	memcpy(fr + 8, "\x81\x83\0\0\0\0", 6);
	open_pair(S, WS_WEBSOCKET, &pe, &cl, fr, 14);
	pe.echo = 1;
	wsc_read_text(&cl, out, sizeof(out));
	CHECK_STR(out, "ok");
	wsc_write(&cl, "abc", 3);	/* the rest of the second frame (mask 0) */
	wsc_read_text(&cl, out, sizeof(out));
	CHECK_STR(out, "abc");
	ws_close(pe.conn, 1001, "going away");
	CHECK(!ws_open(pe.conn));
	wsc_expect_close(&cl, 1001, out, sizeof(out));
	CHECK_STR(out, "going away");
	wsc_frame(&cl, 1, 8, "\x03\xe9", 2, 1);
	wsc_expect_eof(&cl);
	wait_closed(&pe);
	wsc_close(&cl);
	printf("read-ahead bytes from the handshake, server close handshake: ok\n");
}

/* One protocol error → the close code the server sends, then the close. */
static void expect_failure(const char *what, int code, void (*send)(struct wsc *cl))
{
	struct peer pe;
	struct wsc cl;
	char out[256];

	open_pair(S, WS_WEBSOCKET, &pe, &cl, NULL, 0);
	pe.echo = 1;
	send(&cl);
	wsc_expect_close(&cl, code, out, sizeof(out));
	/* A client closes its side after the close frame; the lingering server
	 * sees that and closes. The 1002 cases never do: close_timeout_ms ends
	 * the linger. */
	if (code != 1002)
		CHECK(shutdown(cl.fd, SHUT_WR) == 0);
	wsc_expect_eof(&cl);
	wait_closed(&pe);
	CHECK_EQ(pe.ntext, 0);
	wsc_close(&cl);
	printf("%s → close %d: ok\n", what, code);
}

static void send_unmasked(struct wsc *cl)
{
	wsc_frame(cl, 1, 1, "hi", 2, 0);
}

static void send_oversized(struct wsc *cl)
{
	static char m[20000];
	memset(m, 'x', sizeof(m));
	/* 1025 > max_message (1024); the rest keeps coming while we linger */
	wsc_frame(cl, 1, 1, m, 1025, 1);
	wsc_frame(cl, 1, 1, m, sizeof(m), 1);
}

static void send_oversized_fragments(struct wsc *cl)
{
	static char m[600];
	memset(m, 'y', sizeof(m));
	wsc_frame(cl, 0, 1, m, sizeof(m), 1);
	wsc_frame(cl, 1, 0, m, sizeof(m), 1);
}

static void send_bad_utf8(struct wsc *cl)
{
	wsc_frame(cl, 1, 1, "\xc3\x28", 2, 1);
}

static void send_binary(struct wsc *cl)
{
	wsc_frame(cl, 1, 2, "\x01\x02", 2, 1);
}

static void send_bad_continuation(struct wsc *cl)
{
	wsc_frame(cl, 1, 0, "zz", 2, 1);
}

static void send_long_ping(struct wsc *cl)
{
	static char m[200];
	wsc_frame(cl, 1, 9, m, sizeof(m), 1);
}

static void test_slow_client(void)
{
	struct peer pe;
	struct wsc cl;
	struct ws_stats st0, st;
	char chunk[1000];
	int sent = 0;
	struct ws_frame *f;

	memset(chunk, 'z', sizeof(chunk));
	ws_server_stats(S, &st0);
	open_pair(S, WS_WEBSOCKET, &pe, &cl, NULL, 0);
	/* The client never reads: the kernel takes its share (a few hundred
	 * KB), then our queue fills to its bound and the client is closed. */
	f = ws_frame_text(chunk, sizeof(chunk));
	for (int i = 0; i < 100000; i++) {
		int r = ws_send(pe.conn, f);
		if (r == -ENOBUFS)
			break;
		CHECK_EQ(r, 0);
		sent++;
		CHECK(ws_queued(pe.conn) <= 64 * 1024);	/* never past the bound */
		ws_server_stats(S, &st);
		CHECK(st.queued <= st0.queued + 64 * 1024);
		if (i % 8 == 0)
			pump();
	}
	CHECK(sent > 64 && sent < 100000);
	CHECK(!ws_open(pe.conn));
	CHECK_EQ(ws_send(pe.conn, f), -EPIPE);
	ws_frame_unref(f);
	wait_closed(&pe);
	ws_server_stats(S, &st);
	CHECK_EQ(st.closed_slow, st0.closed_slow + 1);
	CHECK_EQ(st.queued, st0.queued);	/* its queue is gone */
	wsc_expect_eof(&cl);
	wsc_close(&cl);
	printf("a client that never reads: closed after %d KB were accepted, queue <= 64 KiB: ok\n",
	       sent);
}

static void test_stream(void)
{
	struct peer pe;
	struct wsc cl;
	char out[512], junk[4096];
	struct ws_frame *a = ws_frame_raw("id: 1\nevent: x\ndata: {}\n\n", 25);

	open_pair(S, WS_STREAM, &pe, &cl, "GET /next HTTP/1.1\r\n", 20);
	CHECK(ws_send(pe.conn, a) == 0);
	CHECK(ws_send(pe.conn, a) == 0);	/* the same frame twice: shared */
	wsc_read_event(&cl, out, sizeof(out));
	CHECK_STR(out, "id: 1\nevent: x\ndata: {}\n\n");
	wsc_read_event(&cl, out, sizeof(out));
	CHECK_STR(out, "id: 1\nevent: x\ndata: {}\n\n");
	ws_frame_unref(a);
	/* a stream client has nothing to say: past 16 KiB it is closed */
	memset(junk, 'j', sizeof(junk));
	for (int i = 0; i < 6 && !pe.closed; i++) {
		wsc_write(&cl, junk, sizeof(junk));
		pump();
	}
	wait_closed(&pe);
	wsc_close(&cl);

	/* a stream client that goes away is noticed */
	open_pair(S, WS_STREAM, &pe, &cl, NULL, 0);
	wsc_close(&cl);
	wait_closed(&pe);
	printf("stream: raw frames in order, junk input and a vanished client closed: ok\n");
}

static void test_ping(void)
{
	struct peer live, dead, sse;
	struct wsc cl_live, cl_dead, cl_sse;
	struct ws_stats st0, st;
	char out[256];
	int pings = 0;

	ws_server_stats(P, &st0);
	open_pair(P, WS_WEBSOCKET, &live, &cl_live, NULL, 0);
	open_pair(P, WS_WEBSOCKET, &dead, &cl_dead, NULL, 0);
	open_pair(P, WS_STREAM, &sse, &cl_sse, NULL, 0);
	/* the live client answers every ping; the dead one reads but never answers */
	while (!dead.closed) {
		int op;
		size_t n;
		if (wsc_parse(&cl_live, &(int){ 0 }, &op, out, sizeof(out), &n)) {
			CHECK_EQ(op, 9);
			wsc_frame(&cl_live, 1, 0xA, out, n, 1);
			pings++;
		}
		wsc_fill(&cl_live);
		buf_reset(&cl_dead.in);
		wsc_fill(&cl_dead);
		pump();
	}
	ws_server_stats(P, &st);
	CHECK_EQ(st.closed_ping, st0.closed_ping + 1);
	CHECK(!live.closed && ws_open(live.conn));
	CHECK(pings >= 1);
	/* the live one keeps going through more rounds */
	for (int target = pings + 3; pings < target;) {
		int op;
		size_t n;
		if (wsc_parse(&cl_live, &(int){ 0 }, &op, out, sizeof(out), &n)) {
			CHECK_EQ(op, 9);
			wsc_frame(&cl_live, 1, 0xA, out, n, 1);
			pings++;
		}
		wsc_fill(&cl_live);
		pump();
	}
	CHECK(!live.closed);
	wsc_read_event(&cl_sse, out, sizeof(out));
	CHECK_STR(out, ": ping\n\n");
	CHECK(!sse.closed);
	wsc_expect_eof(&cl_dead);
	ws_abort(live.conn);
	ws_abort(sse.conn);
	wait_closed(&live);
	wait_closed(&sse);
	wsc_close(&cl_live);
	wsc_close(&cl_dead);
	wsc_close(&cl_sse);
	printf("ping rounds: %d pongs keep a client, silence closes one, SSE keep-alives: ok\n",
	       pings);
}

/* ---- handoff ------------------------------------------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	CHECK(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void send_raw(int sock, const void *p, size_t n, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)p, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	CHECK(sendmsg(sock, &mh, 0) == (ssize_t)n);
}

static void test_handoff(void)
{
	int sp[2], pr[2], fd, base;
	struct hub_handoff h, got;
	char left[HUB_LEFTOVER_MAX], buf[8];

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0);
	CHECK(pipe(pr) == 0);
	memset(&h, 0, sizeof(h));
	h.kind = HUB_WS_JOB;
	snprintf(h.org, sizeof(h.org), "org_a");
	snprintf(h.job, sizeof(h.job), "job_123");
	h.last_event_id = 42;
	h.leftover_len = 5;
	CHECK_EQ(hub_handoff_recv(sp[1], &got, left, &fd), -EAGAIN);
	CHECK_EQ(hub_handoff_send(sp[0], pr[1], &h, "abcde"), 0);
	close(pr[1]);
	CHECK_EQ(hub_handoff_recv(sp[1], &got, left, &fd), 0);
	CHECK(got.kind == HUB_WS_JOB && got.last_event_id == 42 && got.leftover_len == 5);
	CHECK_STR(got.org, "org_a");
	CHECK_STR(got.job, "job_123");
	CHECK(memcmp(left, "abcde", 5) == 0);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK(write(fd, "x", 1) == 1);	/* it is the pipe's write end */
	CHECK(read(pr[0], buf, 1) == 1 && buf[0] == 'x');
	close(fd);

	h.leftover_len = HUB_LEFTOVER_MAX + 1;
	CHECK_EQ(hub_handoff_send(sp[0], pr[0], &h, left), -EINVAL);
	h.leftover_len = 0;

	/* malformed messages: refused, and every fd they carried is closed */
	base = count_fds();
	send_raw(sp[0], &h, sizeof(h), NULL, 0);			/* no fd */
	CHECK_EQ(hub_handoff_recv(sp[1], &got, left, &fd), -EBADMSG);
	send_raw(sp[0], &h, sizeof(h) - 1, &pr[0], 1);		/* short */
	CHECK_EQ(hub_handoff_recv(sp[1], &got, left, &fd), -EBADMSG);
	int two[2] = { pr[0], pr[0] };
	send_raw(sp[0], &h, sizeof(h), two, 2);			/* two fds */
	CHECK_EQ(hub_handoff_recv(sp[1], &got, left, &fd), -EBADMSG);
	struct hub_handoff bad = h;
	bad.kind = 9;
	send_raw(sp[0], &bad, sizeof(bad), &pr[0], 1);		/* bad kind */
	CHECK_EQ(hub_handoff_recv(sp[1], &got, left, &fd), -EBADMSG);
	bad = h;
	memset(bad.org, 'o', sizeof(bad.org));			/* unterminated */
	send_raw(sp[0], &bad, sizeof(bad), &pr[0], 1);
	CHECK_EQ(hub_handoff_recv(sp[1], &got, left, &fd), -EBADMSG);
	bad = h;
	bad.leftover_len = 3;					/* says 3, has 0 */
	send_raw(sp[0], &bad, sizeof(bad), &pr[0], 1);
	CHECK_EQ(hub_handoff_recv(sp[1], &got, left, &fd), -EBADMSG);
	CHECK_EQ(count_fds(), base);
	CHECK_EQ(fd, -1);

	close(sp[0]);
	CHECK_EQ(hub_handoff_recv(sp[1], &got, left, &fd), -EPIPE);
	/* and a full socketpair never blocks the sender */
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp + 0) == 0);
	int r = 0;
	for (int i = 0; i < 100000 && r == 0; i++)
		r = hub_handoff_send(sp[0], pr[0], &h, NULL);
	CHECK_EQ(r, -EAGAIN);
	close(sp[0]);
	close(sp[1]);
	close(pr[0]);
	printf("handoff: fd, ids and leftover across; malformed refused without fd leaks; never blocks: ok\n");
}

int main(void)
{
	struct ws_config cfg = { .max_message = 1024, .max_queue = 64 * 1024,
				 .ping_interval_ms = 3600 * 1000, .close_timeout_ms = 500 };
	struct ws_handlers hd = { .on_text = on_text, .on_closed = on_closed };
	int r;

	signal(SIGPIPE, SIG_IGN);
	r = loop_init(&L, 256);
	if (r < 0) {
		fprintf(stderr, "io_uring unavailable: %s\n", strerror(-r));
		return T_SKIP;
	}
	CHECK_EQ(ws_server_init(&S, &L, &cfg, &hd), 0);
	cfg.ping_interval_ms = 40;
	CHECK_EQ(ws_server_init(&P, &L, &cfg, &hd), 0);

	test_frames();
	test_echo_and_fragments();
	test_leftover();
	expect_failure("unmasked client frame", 1002, send_unmasked);
	expect_failure("a message over max_message", 1009, send_oversized);
	expect_failure("fragments summing over max_message", 1009, send_oversized_fragments);
	expect_failure("invalid UTF-8 text", 1007, send_bad_utf8);
	expect_failure("a binary message", 1003, send_binary);
	expect_failure("a continuation without a start", 1002, send_bad_continuation);
	expect_failure("a control frame over 125 bytes", 1002, send_long_ping);
	test_slow_client();
	test_stream();
	test_ping();
	test_handoff();

	struct ws_stats st;
	ws_server_stats(S, &st);
	CHECK_EQ(st.conns, 0);
	CHECK_EQ(st.queued, 0);
	/* freeing the server says goodbye (1001) and closes, no callbacks */
	{
		struct peer pe;
		struct wsc cl;
		char out[64];
		open_pair(S, WS_WEBSOCKET, &pe, &cl, NULL, 0);
		ws_server_free(S);
		S = NULL;
		wsc_expect_close(&cl, 1001, out, sizeof(out));
		wsc_expect_eof(&cl);
		CHECK_EQ(pe.closed, 0);
		wsc_close(&cl);
	}
	ws_server_free(P);
	loop_fini(&L);
	printf("ws: all ok\n");
	return T_PASS;
}
