"""Realtime fan-out benchmark: N WebSocket clients of one org on /realtime,
events made at R per second (admin credit grants: one balance.updated event
each, committed durably), latency from the event's `at` (Unix ms, stamped in
the committing turn) to the client's receipt. Prints numbers, asserts nothing.

    /usr/bin/python3 tests/bench/realtime_fanout.py build/jobring [N] [R] [seconds] [procs] [sync]

sync is the store's storage.sync, "full" (default: every commit fsynced, so
the latency includes the producer's commit and the notifier's) or "none".

The clients are raw sockets on selectors, spread over `procs` processes, so
the client side costs little more than a recv and a regex per message. With
RT_CLIENT=/path/to/realtime_clients (tests/bench/realtime_clients.c, one C
epoll process) the clients cost far less, and the numbers are the server's:

    gcc -O2 -std=c11 -D_GNU_SOURCE -o /tmp/realtime_clients tests/bench/realtime_clients.c
    RT_CLIENT=/tmp/realtime_clients /usr/bin/python3 tests/bench/realtime_fanout.py build/jobring 1000 50
"""
import http.client
import json
import multiprocessing as mp
import os
import re
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from jr import ADMIN, Server  # noqa: E402

AT = re.compile(rb'"at":(\d+)')


def connect(port, key):
    sk = socket.create_connection(("127.0.0.1", port), timeout=30)
    sk.sendall((f"GET /realtime?token={key} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = sk.recv(4096)
        if not d:
            raise OSError("closed during the handshake")
        head += d
    if not head.startswith(b"HTTP/1.1 101"):
        raise OSError(head[:80])
    init = json.dumps({"type": "init", "lastEventId": 0}).encode()
    sk.sendall(bytes([0x81, 0x80 | len(init)]) + b"\0\0\0\0" + init)
    sk.setblocking(False)
    return sk, head.split(b"\r\n\r\n", 1)[1]


def client_proc(port, key, n, stop_at, out):
    sel = selectors.DefaultSelector()
    bufs, lats, closed = {}, [], 0
    for _ in range(n):
        sk, rest = connect(port, key)
        bufs[sk] = bytearray(rest)
        sel.register(sk, selectors.EVENT_READ)
    out.put(("ready", 0))
    while time.time() < stop_at:
        for k, _ in sel.select(0.2):
            sk = k.fileobj
            try:
                d = sk.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                sel.unregister(sk)
                closed += 1
                continue
            now = time.time() * 1000.0
            b = bufs[sk]
            b += d
            while len(b) >= 2:
                n = b[1] & 0x7F
                h = 2
                if n == 126:
                    if len(b) < 4:
                        break
                    n, h = struct.unpack(">H", b[2:4])[0], 4
                elif n == 127:
                    if len(b) < 10:
                        break
                    n, h = struct.unpack(">Q", b[2:10])[0], 10
                if len(b) < h + n:
                    break
                op, p = b[0] & 0x0F, bytes(b[h:h + n])
                del b[:h + n]
                if op == 1:
                    m = AT.search(p)
                    if m:
                        lats.append(now - int(m.group(1)))
                elif op == 9:  # pong, masked with a zero key
                    sk.send(bytes([0x8A, 0x80 | len(p)]) + b"\0\0\0\0" + p)
    out.put(("done", (lats, closed)))


def generator(port, org, rate, stop_at, counts, idx):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"amount": 1})
    h = {"Authorization": "Bearer " + ADMIN, "Content-Type": "application/json"}
    t0, i = time.time(), 0
    while True:
        due = t0 + i / rate
        now = time.time()
        if due > stop_at:
            break
        if due > now:
            time.sleep(due - now)
        c.request("POST", f"/admin/orgs/{org}/credits", body=body, headers=h)
        r = c.getresponse()
        r.read()
        if r.status == 200:
            counts[idx] += 1
        i += 1


def main():
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 100
    secs = float(sys.argv[4]) if len(sys.argv) > 4 else 10
    procs = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    sync = sys.argv[6] if len(sys.argv) > 6 else "full"
    gens = 4
    plans = {"big": {"concurrentJobs": 1000, "requestsPerMinute": 10000000, "queueLimit": 100000,
                     "maxJobTimeout": 900}}
    with Server({"storage": {"mapSizeMB": 1024, "sync": sync}, "plans": plans}) as s:
        org, key = s.make_org(name="fan", plan="big")
        stop_at = time.time() + secs + 8 + n / 500
        cbin = os.environ.get("RT_CLIENT")
        if cbin:
            cp = subprocess.Popen([cbin, str(s.port), key, str(n), str(stop_at - time.time())],
                                  stdout=subprocess.PIPE, text=True)
            assert cp.stdout.readline().strip() == "ready"
            ps = []
        else:
            q = mp.Queue()
            ps = [mp.Process(target=client_proc, args=(s.port, key, n // procs + (i < n % procs),
                                                       stop_at, q)) for i in range(procs)]
            for p in ps:
                p.start()
            for _ in ps:
                assert q.get(timeout=120)[0] == "ready"
        time.sleep(1.0)  # the init holds are over; everyone is live
        counts = [0] * gens
        gen_end = time.time() + secs
        th = [threading.Thread(target=generator, args=(s.port, org, rate / gens, gen_end, counts, i))
              for i in range(gens)]
        t0 = time.time()
        for t in th:
            t.start()
        for t in th:
            t.join()
        made = sum(counts)
        took = time.time() - t0
        if cbin:
            cnt, closed, p50, p90, p99, mx = cp.stdout.readline().split()
            cp.wait()
            cnt, closed = int(cnt), int(closed)
            p50, p90, p99, mx = (float(x) for x in (p50, p90, p99, mx))
        else:
            lats, closed = [], 0
            for _ in ps:
                kind, (lt, cl) = q.get(timeout=stop_at - time.time() + 60)
                lats += lt
                closed += cl
            for p in ps:
                p.join()
            lats.sort()
            cnt = len(lats)

            def pct(x):
                return lats[min(len(lats) - 1, int(len(lats) * x))] if lats else float("nan")
            p50, p90, p99, mx = pct(0.5), pct(0.9), pct(0.99), lats[-1] if lats else float("nan")
        print(f"realtime fan-out: {n} WebSocket clients of one org ({'C epoll' if cbin else 'Python'} "
              f"clients), {made} events in {took:.1f} s ({made / took:.0f}/s, offered {rate:.0f}/s), "
              f"storage.sync {sync}")
        print(f"  delivered {cnt} of {made * n} messages ({cnt / took:.0f} msg/s), clients closed: {closed}")
        print(f"  latency event at → client receipt (ms; `at` has 1 ms resolution): p50 {p50:.1f}  "
              f"p90 {p90:.1f}  p99 {p99:.1f}  max {mx:.1f}")


if __name__ == "__main__":
    main()
