"""Realtime clients for the chaos test: a small WebSocket client and an SSE
client (standard library only), and RTClient, a logical client that stays
connected to its org's stream, resumes with its last event id after every
drop, and records every session.

A session is one connection: how it resumed (None = a fresh start, else the
last id it gave), and the org events it received as (seq, type, jobId,
status, prevStatus, attempt, data). Live progress messages ({"live": true}: not in
the event log, their id is the last published seq) are counted, not kept."""
import base64
import hashlib
import json
import os
import random
import socket
import threading
import time

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Closed(Exception):
    pass


class Refused(Exception):
    """The server answered the handshake with something else than 101/200."""

    def __init__(self, status, body):
        super().__init__(f"{status} {body[:200]!r}")
        self.status = status


def _read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(4096)
        if not d:
            raise Closed("closed during the handshake")
        buf += d
        if len(buf) > 65536:
            raise Closed("head too long")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, rest


class WSConn:
    def __init__(self, port, path, token, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Authorization: Bearer {token}\r\n\r\n")
        self.sock.sendall(req.encode())
        status, hdrs, self.buf = _read_head(self.sock)
        if status != 101:
            body = self.buf
            try:
                self.sock.settimeout(0.5)
                body += self.sock.recv(4096)
            except OSError:
                pass
            self.sock.close()
            raise Refused(status, body)
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            self.sock.close()
            raise Closed(f"bad Sec-WebSocket-Accept {hdrs.get('sec-websocket-accept')!r} want {want!r}")

    def _need(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise Closed("eof")
            self.buf += d

    def _frame(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = int.from_bytes(self.buf[2:4], "big"), 4
        elif n == 127:
            self._need(10)
            n, off = int.from_bytes(self.buf[2:10], "big"), 10
        if b1 & 0x80:
            raise Closed("a masked frame from the server")
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return b0 & 0x80, b0 & 0x0F, payload

    def send(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + data)

    def send_text(self, s):
        self.send(0x1, s.encode())

    def recv(self):
        """The next text message (str). Raises socket.timeout, Closed."""
        parts = []
        while True:
            fin, op, payload = self._frame()
            if op == 0x9:
                self.send(0xA, payload)
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                try:
                    self.send(0x8, payload[:2])
                except OSError:
                    pass
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 0
                raise Closed(f"close {code} {payload[2:].decode(errors='replace')}")
            parts.append(payload)
            if fin:
                return b"".join(parts).decode()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class SSEConn:
    def __init__(self, port, token, last_id=None, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        h = f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        if last_id is not None:
            h += f"Last-Event-ID: {last_id}\r\n"
        self.sock.sendall((h + "\r\n").encode())
        status, hdrs, self.buf = _read_head(self.sock)
        if status != 200 or "text/event-stream" not in hdrs.get("content-type", ""):
            self.sock.close()
            raise Refused(status, self.buf)
        self.ev = {}

    def recv(self):
        """The next event's data (str). Raises socket.timeout, Closed."""
        while True:
            while b"\n" not in self.buf:
                d = self.sock.recv(65536)
                if not d:
                    raise Closed("eof")
                self.buf += d
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.decode().rstrip("\r")
            if line == "":
                ev, self.ev = self.ev, {}
                if "data" in ev:
                    return ev["data"]
                continue
            if line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            self.ev[k] = self.ev[k] + "\n" + v if k == "data" and k in self.ev else v

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def event_tuple(m):
    return (m.get("id"), m.get("type"), m.get("jobId"), m.get("status"), m.get("prevStatus"),
            m.get("attempt"), m.get("data"))


class RTClient(threading.Thread):
    """One logical realtime client of an org: kind "ws" or "sse". It resumes
    with the last id it received after every drop; a WebSocket resumes by
    ?lastEventId= or by the init message (chosen by its rng)."""

    def __init__(self, name, kind, port_fn, token, rng, log):
        super().__init__(daemon=True, name=f"rt-{name}")
        self.cname, self.kind, self.port_fn, self.token = name, kind, port_fn, token
        self.rng = rng
        self.log = log
        self.sessions = []
        self.last = None           # the last event id received
        self.stop_ev = threading.Event()
        self.drop_ev = threading.Event()
        self.lock = threading.Lock()
        self.connects = self.refusals = self.drops = 0
        self.last_error = None
        self.connected = threading.Event()

    def drop(self):
        self.drop_ev.set()

    def stop(self):
        self.stop_ev.set()

    def _connect(self):
        port = self.port_fn()
        if self.kind == "sse":
            return SSEConn(port, self.token, self.last), "header"
        via = "fresh" if self.last is None else self.rng.choice(["query", "init"])
        path = "/realtime" + (f"?lastEventId={self.last}" if via == "query" else "")
        c = WSConn(port, path, self.token)
        if via == "init":
            c.send_text(json.dumps({"type": "init", "lastEventId": self.last}))
        return c, via

    def run(self):
        backoff = 0.1
        while not self.stop_ev.is_set():
            try:
                conn, via = self._connect()
            except Refused as e:
                self.refusals += 1
                time.sleep(min(2.0, backoff) + (1.0 if e.status == 429 else 0))
                backoff *= 2
                continue
            except (OSError, Closed) as e:
                self.last_error = f"{type(e).__name__}: {e}"
                time.sleep(min(1.0, backoff))
                backoff *= 2
                continue
            backoff = 0.1
            self.connects += 1
            s = {"kind": self.kind, "via": via, "resume": self.last, "events": [], "live": 0,
                 "t0": time.time(), "end": None, "truncated": None}
            with self.lock:
                self.sessions.append(s)
            self.connected.set()
            conn.settimeout(0.3)
            try:
                while not self.stop_ev.is_set():
                    if self.drop_ev.is_set():
                        self.drop_ev.clear()
                        self.drops += 1
                        s["end"] = "dropped by the chaos"
                        break
                    try:
                        text = conn.recv()
                    except socket.timeout:
                        continue
                    m = json.loads(text)
                    if m.get("live"):
                        s["live"] += 1
                        continue
                    if m.get("type") == "replay.truncated":
                        s["truncated"] = m.get("id")
                        s["end"] = "replay.truncated"
                        break
                    with self.lock:
                        s["events"].append(event_tuple(m))
                        self.last = m["id"]
                else:
                    s["end"] = "stopped"
            except (OSError, Closed, ValueError) as e:
                s["end"] = f"lost: {e}"
            finally:
                self.connected.clear()
                conn.close()
            if not self.stop_ev.is_set():
                time.sleep(self.rng.uniform(0.05, 0.5))


def read_log(port, token, after, idle=2.0, timeout=120.0):
    """Page an org's whole event stream after seq `after` with SSE resumes:
    [(seq, type, jobId, status, prevStatus, attempt)] in order. Stops when
    nothing arrives for `idle` seconds (the system is quiet by then)."""
    out, last, end = [], after, time.time() + timeout
    while time.time() < end:
        try:
            c = SSEConn(port, token, last)
        except (OSError, Closed, Refused):
            time.sleep(0.5)
            continue
        c.settimeout(idle)
        truncated = False
        try:
            while True:
                m = json.loads(c.recv())
                if m.get("live"):
                    continue
                if m.get("type") == "replay.truncated":
                    truncated = True
                    break
                out.append(event_tuple(m))
                last = m["id"]
        except socket.timeout:
            pass
        except (OSError, Closed):
            truncated = True   # lost mid-way: page on
        finally:
            c.close()
        if not truncated:
            return out
    raise TimeoutError("could not read the event log to its end")


def rng_for(seed, *parts):
    return random.Random(":".join(str(p) for p in (seed,) + parts))


class JobWatch(threading.Thread):
    """GET /events/ws/job/{id}: the snapshot, then that job's events, until a
    terminal status arrives (or `limit` seconds). msgs: every non-live
    message as received."""

    def __init__(self, port, token, job_id, limit=30.0):
        super().__init__(daemon=True, name=f"watch-{job_id}")
        self.port, self.token, self.job, self.limit = port, token, job_id, limit
        self.msgs = []
        self.error = None

    def run(self):
        end = time.time() + self.limit
        try:
            c = WSConn(self.port, f"/events/ws/job/{self.job}", self.token)
        except (OSError, Closed, Refused) as e:
            self.error = f"connect: {e}"
            return
        c.settimeout(0.5)
        try:
            while time.time() < end:
                try:
                    m = json.loads(c.recv())
                except socket.timeout:
                    continue
                if m.get("live"):
                    continue
                self.msgs.append(m)
                if m.get("type") == "job.status" and m.get("status") in ("complete", "failed", "cancelled"):
                    break
        except (OSError, Closed, ValueError) as e:
            self.error = f"lost: {e}"
        finally:
            c.close()
