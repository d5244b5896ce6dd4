/* libFuzzer target: WebSocket framing (our wslay glue in ws.c). The input is
 * what a client sent after the handshake, handed over as the bytes the HTTP
 * server had read ahead, on a real socketpair driven by a real io_uring loop.
 * Whatever arrives, the connection must end up open or closed without a
 * crash, a leak, or a message that breaks its contract (valid UTF-8, within
 * max_message). */
#include "jobring/buf.h"
#include "jobring/loop.h"
#include "jobring/util.h"
#include "jobring/ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct loop loop;
static struct ws_server *srv;
static int closed;

static void on_text(struct ws_conn *c, void *user, const char *p, size_t n, void *arg)
{
	(void)c;
	(void)user;
	(void)arg;
	if (n > 4096 || !utf8_valid(p, n))
		abort();
}

static void on_closed(struct ws_conn *c, void *user, void *arg)
{
	(void)c;
	(void)user;
	(void)arg;
	closed = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ws_handlers hd = { on_text, on_closed, NULL };
	struct ws_config cfg = { .max_message = 4096, .max_queue = 1 << 16,
				 .ping_interval_ms = 20000, .close_timeout_ms = 50 };
	struct ws_conn *c;
	int sv[2];

	if (size > 65536)
		return 0;
	if (!srv) {
		if (loop_init(&loop, 64) < 0 || ws_server_init(&srv, &loop, &cfg, &hd) < 0)
			abort();
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	closed = 0;
	if (ws_adopt(srv, sv[0], WS_WEBSOCKET, data, size, NULL, &c) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	for (int i = 0; i < 4 && !closed; i++) {
		ws_server_tick(srv, mono_ns());
		loop_wait(&loop, 0);
	}
	close(sv[1]);		/* the client goes away */
	for (int i = 0; i < 200 && !closed; i++) {
		ws_server_tick(srv, mono_ns() + (int64_t)i * 1000000000);
		loop_wait(&loop, 1);
	}
	if (!closed)
		abort();	/* a peer that is gone must be noticed */
	return 0;
}
