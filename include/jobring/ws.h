/* ws.h - server-side realtime connections (WebSocket and SSE) over
 * non-blocking sockets, driven by io_uring poll readiness.
 *
 * A connection arrives already upgraded (the HTTP server wrote the 101 or the
 * SSE head). For a WebSocket, wslay's event layer parses what the client
 * sends: reassembly of fragmented messages, control frames interleaved with
 * them, UTF-8 checks, unmasked client frames (close 1002), messages over
 * max_message (close 1009), ping → pong and the close handshake. A stream
 * connection (SSE) only sends; whatever the client sends is discarded (up to a
 * small limit).
 *
 * Outbound: every connection has a queue of shared, reference-counted frames
 * (ws_frame: formatted once, sent to many), bounded by max_queue bytes. A
 * send that would pass the bound closes the connection (the client is too
 * slow: it may reconnect and resume); the actor never blocks and memory never
 * grows past the bound. Sends only queue: the bytes go out in
 * ws_server_tick() (one sendmsg per connection per turn, coalescing all its
 * frames), or when a blocked socket becomes writable.
 *
 * Liveness: every ping_interval_ms a ping round pings each WebSocket (a client
 * that has not answered the previous round's ping is closed) and writes the
 * keep-alive bytes to each stream; a connection whose queue made no progress
 * for two rounds is closed too.
 *
 * Closing: ws_close() queues the close frame (WebSocket) after the queued
 * data; once it is out the server half-closes (SHUT_WR), reads and discards
 * until the client closes or close_timeout_ms passes, then closes the socket.
 * This lingering keeps the close frame from being lost to a reset when the
 * client still had bytes in flight (e.g. an oversized message).
 *
 * Callbacks: on_text runs from loop completions (or ws_server_tick() for
 * bytes the HTTP server had already read) for each complete text message;
 * it may call ws_send() and ws_close() on any connection. on_closed runs only
 * from ws_server_tick(), once per connection, after which the connection must
 * not be used (its memory is freed when its last io_uring op completes).
 * ws_send() and ws_close() never call back.
 *
 * Ownership: the server owns adopted sockets (closes them); it borrows the
 * loop, which must outlive it. A frame is owned by its references. */
#ifndef JOBRING_WS_H
#define JOBRING_WS_H

#include "jobring/loop.h"

#include <stddef.h>
#include <stdint.h>

enum ws_kind { WS_WEBSOCKET = 1, WS_STREAM };

/** An immutable byte string queued to any number of connections. */
struct ws_frame;

/** A WebSocket text frame (FIN, unmasked: server to client) carrying p[0..n),
 *  one reference. NULL if n is too large (> 1 GiB). */
struct ws_frame *ws_frame_text(const void *p, size_t n);
/** Raw bytes (a stream connection's output, e.g. one SSE event), one reference. */
struct ws_frame *ws_frame_raw(const void *p, size_t n);
/** Drop one reference (the last frees it). NULL is a no-op. */
void ws_frame_unref(struct ws_frame *f);
/** Bytes the frame puts on the wire. */
size_t ws_frame_len(const struct ws_frame *f);

struct ws_config {
	size_t max_message;	/* inbound WebSocket message [4096] */
	size_t max_queue;	/* outbound bytes queued per connection [1 MiB] */
	int ping_interval_ms;	/* ping round period [20000] */
	int close_timeout_ms;	/* close handshake and lingering [2000] */
	const char *stream_ping; /* keep-alive bytes for streams [": ping\n\n"];
				  * must outlive the server */
};

struct ws_conn;

struct ws_handlers {
	/** A complete text message (valid UTF-8, at most max_message bytes). */
	void (*on_text)(struct ws_conn *c, void *user, const char *p, size_t n, void *arg);
	/** The connection is gone (closed by either side, failed or too slow). */
	void (*on_closed)(struct ws_conn *c, void *user, void *arg);
	void *arg;
};

struct ws_server;

/** 0 or -errno. Zero fields of cfg take the defaults above. */
int ws_server_init(struct ws_server **ret, struct loop *loop, const struct ws_config *cfg,
		   const struct ws_handlers *hd);
/** Close every connection without callbacks and wait (loop_wait) for their
 *  io_uring ops, then free. NULL is a no-op. */
void ws_server_free(struct ws_server *s);

/** Take over fd (an upgraded socket; made non-blocking here). leftover are
 *  bytes the HTTP server had read past the request head (copied). user is
 *  handed to the callbacks. On failure fd is closed. 0 or -errno. */
int ws_adopt(struct ws_server *s, int fd, enum ws_kind kind, const void *leftover, size_t n,
	     void *user, struct ws_conn **ret);

/** Queue f (a text frame for a WebSocket, raw bytes for a stream) after what
 *  is queued; takes its own reference. 0; -ENOBUFS: over max_queue, the
 *  connection is now closing (on_closed follows); -EPIPE: it is closing. */
int ws_send(struct ws_conn *c, struct ws_frame *f);
/** Close gracefully: a WebSocket gets a close frame with code and reason
 *  (≤ 123 bytes) after the queued data; a stream just ends after its queue. */
void ws_close(struct ws_conn *c, uint16_t code, const char *reason);
/** Close at once (shutdown of the socket, queue dropped). */
void ws_abort(struct ws_conn *c);

/** Outbound bytes queued and not yet written to the socket. */
size_t ws_queued(const struct ws_conn *c);
/** 1 while the connection accepts sends. */
int ws_open(const struct ws_conn *c);

/** Write queued frames, read bytes the HTTP server had read ahead, report
 *  closed connections, run timeouts and ping rounds. Call every loop turn. */
void ws_server_tick(struct ws_server *s, int64_t now_ns);
/** When ws_server_tick() next has work (mono ns), or INT64_MAX. */
int64_t ws_server_next_deadline(const struct ws_server *s);

struct ws_stats {
	unsigned conns;		/* open (not yet reported closed) */
	size_t queued;		/* outbound bytes queued over all connections */
	uint64_t closed_slow;	/* closed for passing max_queue or not draining */
	uint64_t closed_ping;	/* closed for not answering a ping */
	uint64_t frames_sent;	/* frames fully written */
};
void ws_server_stats(const struct ws_server *s, struct ws_stats *st);

#endif
