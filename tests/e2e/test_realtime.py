"""Realtime: the per-org hub over WebSocket (/realtime) and SSE (/events), and
the per-job WebSocket the Rendobar CLI uses (/events/ws/job/{id}). Real
clients (Debian's python3-websockets, http.client for SSE) and a raw socket
for the protocol edges: events in order, only the client's own org, resume
after a disconnect (no gap, no duplicate), even across a kill -9 of the
notifier; bad token → 401, another org's job → 404, handshake errors, and
protocol errors closed with 1002/1009."""
import asyncio
import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import struct
import threading
import time

import websockets
from fakeprov import FakeProvider
from jr import Server, check, wait_for

prov = FakeProvider()
CFG = {
    "providers": [{"id": "fake", "url": prov.url, "secret": prov.secret, "types": ["fake"],
                   "capacity": 16}],
    "jobTypes": {"fake": {"schema": {"type": "object"}, "maxExecutionSeconds": 60,
                          "price": {"base": 1000000, "perSecond": 1000000, "estimateSeconds": 10}}},
    "plans": {"big": {"concurrentJobs": 1000, "requestsPerMinute": 10000000, "queueLimit": 100000,
                      "maxJobTimeout": 900}},
}
TERMINAL = ("complete", "failed", "cancelled")
TYPES = ("job.created", "job.status", "job.progress", "balance.updated")


class WSC:
    """A websockets client on its own thread and event loop, collecting every
    JSON message it gets."""

    def __init__(self, url, headers=None, init=None):
        self.msgs, self.error, self.close_code, self.ws = [], None, None, None
        self.lock = threading.Lock()
        self.opened, self.done = threading.Event(), threading.Event()
        self.loop = asyncio.new_event_loop()
        self.t = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self.t.start()
        self.opened.wait(15)
        if self.error:
            raise self.error
        if init is not None:
            self.send({"type": "init", "lastEventId": init})

    def _run(self, url, headers):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main(url, headers))

    async def _main(self, url, headers):
        try:
            async with websockets.connect(url, extra_headers=headers or {}, open_timeout=10,
                                          max_size=1 << 20) as ws:
                self.ws = ws
                self.opened.set()
                try:
                    async for m in ws:
                        with self.lock:
                            self.msgs.append(json.loads(m))
                except websockets.ConnectionClosed:
                    pass
                self.close_code = ws.close_code
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.error = e
        finally:
            self.opened.set()
            self.done.set()

    def send(self, obj):
        asyncio.run_coroutine_threadsafe(self.ws.send(json.dumps(obj)), self.loop).result(5)

    def got(self):
        with self.lock:
            return list(self.msgs)

    def ids(self):
        return [m["id"] for m in self.got() if not m.get("live")]

    def wait(self, pred, what, timeout=30):
        return wait_for(lambda: pred(self.got()), timeout=timeout, what=what)

    def close(self):
        if not self.done.is_set() and self.ws:
            try:
                asyncio.run_coroutine_threadsafe(self.ws.close(), self.loop).result(10)
            except Exception:  # noqa: BLE001 - already closed
                pass
        self.t.join(10)


class SSE:
    """An EventSource-like client on http.client, reading the stream on a thread."""

    def __init__(self, port, path, headers=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.request("GET", path, headers=headers or {})
        self.sock = self.conn.sock  # http.client lets go of it for a read-to-close body
        self.r = self.conn.getresponse()
        self.status, self.headers = self.r.status, dict(self.r.getheaders())
        self.events, self.comments, self.lock = [], 0, threading.Lock()
        self.t = None
        if self.status == 200:
            self.t = threading.Thread(target=self._run, daemon=True)
            self.t.start()
        else:
            self.body = self.r.read()

    def _run(self):
        cur = {}
        try:
            while True:
                line = self.r.fp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if line == "":
                    if cur:
                        with self.lock:
                            self.events.append(cur)
                    cur = {}
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    k, _, v = line.partition(": ")
                    cur[k] = v
        except (OSError, ValueError):
            return

    def got(self):
        with self.lock:
            return [dict(json.loads(e["data"]), _id=e.get("id"), _event=e.get("event"))
                    for e in self.events]

    def ids(self):
        return [m["id"] for m in self.got() if not m.get("live")]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
        if self.t:
            self.t.join(10)


def ws_url(s, path):
    return f"ws://127.0.0.1:{s.port}{path}"


def bearer(key):
    return {"Authorization": "Bearer " + key}


def submit(s, key, params):
    st, j = s.request("POST", "/jobs", {"type": "fake", "params": params}, token=key)
    assert st == 201, (st, j)
    return j["data"]["id"]


def job_done(msgs, jid):
    return any(m["type"] == "job.status" and m.get("jobId") == jid and m["status"] in TERMINAL
               for m in msgs)


def increasing(ids):
    return all(a < b for a, b in zip(ids, ids[1:]))


def ws_status(s, path, headers):
    """The HTTP status a WebSocket handshake is refused with (or 101)."""
    try:
        c = WSC(ws_url(s, path), headers)
        c.close()
        return 101
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code


def raw_handshake(s, path, extra="", key="dGhlIHNhbXBsZSBub25jZQ=="):
    sk = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    req = (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Version: 13\r\n" + (f"Sec-WebSocket-Key: {key}\r\n" if key else "") +
           extra + "\r\n")
    sk.sendall(req.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = sk.recv(4096)
        if not d:
            break
        head += d
    return sk, head.decode(errors="replace")


def masked(opcode, payload, fin=True, mask=True):
    h = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        h += bytes([mbit | n])
    elif n < 65536:
        h += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        h += bytes([mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return h + payload
    key = os.urandom(4)
    return h + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frame(sk):
    def need(n):
        b = b""
        while len(b) < n:
            d = sk.recv(n - len(b))
            if not d:
                raise EOFError
            b += d
        return b
    h = need(2)
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", need(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", need(8))[0]
    return h[0] & 0x0F, need(n)


def expect_close(sk, code):
    while True:
        op, p = read_frame(sk)
        if op == 8:
            return struct.unpack(">H", p[:2])[0] == code
        if op == 9:
            sk.sendall(masked(0xA, p))


with Server(CFG) as s:
    A, keyA = s.make_org(plan="big", name="a")
    B, keyB = s.make_org(plan="big", name="b")

    # ---- refusals ------------------------------------------------------------
    check(ws_status(s, "/realtime", bearer("rb_live_nope_nope")) == 401, "WS with a bad token → 401")
    check(ws_status(s, "/realtime", None) == 401, "WS without a token → 401")
    bad = SSE(s.port, "/events?token=rb_live_x_y")
    check(bad.status == 401 and json.loads(bad.body)["error"]["code"] == "UNAUTHORIZED",
          "SSE with a bad ?token= → 401 UNAUTHORIZED")
    jb0 = submit(s, keyB, {"mode": "ok"})
    check(ws_status(s, f"/events/ws/job/{jb0}", bearer(keyA)) == 404, "another org's job → 404")
    check(ws_status(s, "/events/ws/job/job_doesnotexist00000000", bearer(keyA)) == 404,
          "an unknown job → 404")
    st, _ = s.request("POST", "/realtime", {}, token=keyA)
    check(st == 405, "POST /realtime → 405")
    st, _ = s.request("GET", "/realtime", token=keyA)
    check(st == 426, "GET /realtime without Upgrade → 426")
    sk, head = raw_handshake(s, f"/realtime?token={keyA}", key=None)
    check(head.startswith("HTTP/1.1 400"), "no Sec-WebSocket-Key → 400")
    sk.close()
    sk, head = raw_handshake(s, f"/realtime?token={keyA}", key="c2hvcnQ=")
    check(head.startswith("HTTP/1.1 400"), "a key that is not 16 bytes → 400")
    sk.close()
    sk = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    sk.sendall(f"GET /realtime?token={keyA} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
    head = sk.recv(4096).decode()
    check(head.startswith("HTTP/1.1 426") and "Sec-WebSocket-Version: 13" in head,
          "Sec-WebSocket-Version 8 → 426 naming 13")
    sk.close()

    # ---- the raw handshake and protocol errors -------------------------------
    sk, head = raw_handshake(s, f"/realtime?token={keyA}")
    want = base64.b64encode(hashlib.sha1(b"dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                            .digest()).decode()
    check(head.startswith("HTTP/1.1 101") and f"Sec-WebSocket-Accept: {want}" in head,
          "101 with the RFC 6455 Sec-WebSocket-Accept (token in the query)")
    sk.sendall(masked(1, b"hi", mask=False))
    check(expect_close(sk, 1002), "an unmasked client frame → close 1002")
    sk.close()
    sk, head = raw_handshake(s, f"/realtime?token={keyA}")
    sk.sendall(masked(1, b"x" * 5000))
    check(expect_close(sk, 1009), "a 5000-byte message (limit 4096) → close 1009")
    sk.close()
    sk, head = raw_handshake(s, f"/realtime?token={keyA}")
    sk.sendall(masked(9, b"p1"))
    op, p = read_frame(sk)
    check(op == 0xA and p == b"p1", "ping → pong with the same payload")
    sk.sendall(masked(8, struct.pack(">H", 1000) + b"bye"))
    check(expect_close(sk, 1000), "close handshake: the server answers close 1000")
    check(sk.recv(10) == b"", "…then closes the connection")
    sk.close()

    # ---- live streams: order, org isolation, SSE and WS alike ------------------
    ref = WSC(ws_url(s, "/realtime"), bearer(keyA), init=0)   # org A, stays connected
    other = WSC(ws_url(s, f"/realtime?token={keyB}"), init=0)  # org B
    sse1 = SSE(s.port, f"/events?token={keyA}")
    check(sse1.status == 200 and sse1.headers.get("Content-Type") == "text/event-stream"
          and sse1.headers.get("Cache-Control") == "no-cache" and "Content-Length" not in sse1.headers,
          "SSE head: 200 text/event-stream, no-cache, no Content-Length")

    # the per-job socket the way the CLI uses it: header auth, init, statuses to the end
    ja = submit(s, keyA, {"mode": "ok", "delay": 0.5})
    cli = WSC(ws_url(s, f"/events/ws/job/{ja}"), bearer(keyA), init=0)
    cli.wait(lambda ms: job_done(ms, ja), "the CLI socket's terminal job.status")
    ms = cli.got()
    check(ms[0]["type"] == "job.status" and ms[0]["jobId"] == ja and ms[0].get("snapshot"),
          "the per-job socket starts with the job's status")
    finals = [m["status"] for m in ms if m["type"] == "job.status" and m["status"] in TERMINAL]
    check(finals == ["complete"] and all(m.get("jobId") == ja for m in ms)
          and {m["type"] for m in ms} <= {"job.status", "job.progress"},
          "…then only its own job.status/job.progress, ending with complete")
    cli.close()
    late = WSC(ws_url(s, f"/events/ws/job/{ja}"), bearer(keyA), init=0)
    late.wait(lambda ms: ms, "the snapshot of a finished job")
    check(late.got()[0]["status"] == "complete", "a socket opened after the end gets complete at once")
    late.close()

    jobs_a = [ja] + [submit(s, keyA, {"mode": m}) for m in ("ok", "fail", "ok")]
    jobs_b = [jb0, submit(s, keyB, {"mode": "ok"})]
    ref.wait(lambda ms: all(job_done(ms, j) for j in jobs_a), "org A's jobs to end on the hub")
    other.wait(lambda ms: job_done(ms, jobs_b[1]), "org B's job to end on its hub")
    ra = ref.got()
    check(increasing(ref.ids()) and all(m["type"] in TYPES for m in ra),
          "org A's stream: known types, ids strictly increasing")
    for j in jobs_a:
        seq = [m["status"] for m in ra if m.get("jobId") == j and m["type"] in ("job.created", "job.status")]
        check(seq[0] == "waiting" and seq[-1] in TERMINAL and "dispatched" in seq,
              f"{j}: created → dispatched → … → {seq[-1]}, in order")
    check(any(m["type"] == "balance.updated" for m in ra), "balance.updated is streamed")
    check(all(m.get("jobId") in (None, *jobs_a) for m in ra), "org A sees only org A's jobs")
    check(all(m.get("jobId") in (None, *jobs_b) for m in other.got())
          and any(m.get("jobId") == jobs_b[1] for m in other.got()), "org B sees only org B's jobs")

    # SSE saw what the WebSocket saw, with ids in "id:" and types in "event:"
    wait_for(lambda: sse1.ids() and sse1.ids()[-1] >= ref.ids()[-1], what="SSE to catch up")
    check(sse1.ids() == ref.ids(), f"SSE and WebSocket streams agree ({len(ref.ids())} events)")
    check(all(e["_id"] == str(e["id"]) and e["_event"] == e["type"] for e in sse1.got() if not e.get("live")),
          "SSE id: and event: lines match the JSON")

    # ---- resume after a disconnect ---------------------------------------------
    cut = sse1.ids()[len(sse1.ids()) // 2]
    first = [i for i in sse1.ids() if i <= cut]
    sse1.close()
    more = [submit(s, keyA, {"mode": "ok"}) for _ in range(3)]
    submit(s, keyB, {"mode": "ok"})
    ref.wait(lambda ms: all(job_done(ms, j) for j in more), "the jobs made while SSE was away")
    sse2 = SSE(s.port, "/events", {**bearer(keyA), "Last-Event-ID": str(cut)})
    wait_for(lambda: sse2.ids() and sse2.ids()[-1] >= ref.ids()[-1], what="SSE resume to catch up")
    check(first + sse2.ids() == ref.ids(), f"SSE resume from Last-Event-ID {cut}: no gap, no duplicate")
    sse2.close()
    ws2 = WSC(ws_url(s, f"/realtime?lastEventId={cut}"), bearer(keyA))
    wait_for(lambda: ws2.ids() and ws2.ids()[-1] >= ref.ids()[-1], what="WS ?lastEventId resume")
    check(ws2.ids() == [i for i in ref.ids() if i > cut], "WS resume from ?lastEventId=: no gap, no duplicate")
    ws2.close()
    ws3 = WSC(ws_url(s, "/realtime"), bearer(keyA), init=cut)
    wait_for(lambda: ws3.ids() and ws3.ids()[-1] >= ref.ids()[-1], what="WS init resume")
    check(ws3.ids() == [i for i in ref.ids() if i > cut], "WS resume from an init message: no gap, no duplicate")
    ws3.close()

    # ---- kill -9 the notifier: clients drop, then resume from their last id ----
    last = ref.ids()[-1]
    old = s.actor_pids()["notifier"]
    os.kill(old, signal.SIGKILL)
    ref.done.wait(15)
    check(ref.done.is_set(), "kill -9 of the notifier drops its realtime clients")
    wait_for(lambda: s.actor_pids()["notifier"] != old, timeout=20, what="the notifier's restart")
    gap = [submit(s, keyA, {"mode": "ok"}) for _ in range(2)]
    back = WSC(ws_url(s, "/realtime"), bearer(keyA), init=last)
    back.wait(lambda ms: all(job_done(ms, j) for j in gap), "the resumed stream after the restart")
    ids = back.ids()
    created = {m["jobId"] for m in back.got() if m["type"] == "job.created"}
    check(ids and ids[0] > last and increasing(ids) and set(gap) <= created,
          "after the restart, resume from the last id: every event after it, once, in order")
    other.close()
    ref.close()
    check(s.stop() == 0, "SIGTERM → 0")
    back.done.wait(10)
    check(back.close_code == 1001, "…and a connected client was told 1001 (going away)")
    back.close()
prov.close()
print("realtime: all checks passed")
