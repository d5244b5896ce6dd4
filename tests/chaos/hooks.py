"""Webhook receivers for the chaos test: each is a loopback HTTP server that
records every request it gets and, inside its outage windows, fails the way
the window says: 503, 500 with Retry-After: 1, hang past the sender's timeout
(then 200), or a reset (the connection is closed without an answer).
Outside them it answers 2xx. Endpoint deliveries arrive at /hook, per-job
callbacks at /cb/{jobId}.

Every record keeps the delivery id (header and body), the attempt header,
the event, the job, the status and attempt inside the envelope, whether the
X-Rendobar-Signature is right (endpoints only: callbacks are unsigned here),
and what was answered (0: nothing, -1: the write failed, -2: answered
after the sender's timeout, which it counts as a failed attempt)."""
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_S = 2.5


class Receiver:
    def __init__(self, name, outages, clock):
        """outages: [(t0, t1, how)] in seconds of clock()."""
        self.name = name
        self.outages = list(outages)
        self.clock = clock
        self.secret = None
        self.endpoint = None
        self.org = None
        self.events = None
        self.records = []
        self.lock = threading.Lock()
        self.healthy = threading.Event()   # set: the outages are over for good
        rec = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                rec.handle(self, raw)

        class S(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass   # jobring hung up (its timeout): expected here

        self.httpd = S(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.cb_base = f"http://127.0.0.1:{self.port}/cb/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def outage(self, now):
        if self.healthy.is_set():
            return None
        for t0, t1, how in self.outages:
            if t0 <= now < t1:
                return how
        return None

    def handle(self, h, raw):
        now = self.clock()
        r = {"t": now, "path": h.path, "delivery": h.headers.get("X-Rendobar-Delivery"),
             "attempt": h.headers.get("X-Rendobar-Attempt"), "event_h": h.headers.get("X-Rendobar-Event"),
             "webhook_id": h.headers.get("webhook-id"), "answered": 0, "sig_ok": None}
        try:
            body = json.loads(raw)
            r.update(event=body.get("event"), body_delivery=body.get("deliveryId"), job=body.get("jobId"),
                     status=(body.get("data") or {}).get("status"),
                     job_attempt=(body.get("data") or {}).get("attempt"), org=body.get("orgId"))
        except ValueError:
            r["bad_json"] = True
        if h.path == "/hook" and self.secret:
            ts = h.headers.get("X-Rendobar-Timestamp", "")
            want = "sha256=" + hmac.new(self.secret.encode(), ts.encode() + b"." + raw,
                                        hashlib.sha256).hexdigest()
            r["sig_ok"] = hmac.compare_digest(h.headers.get("X-Rendobar-Signature", ""), want)
        how = self.outage(now) if h.path == "/hook" or h.path.startswith("/cb/") else None
        with self.lock:
            self.records.append(r)
        if how == "reset":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        late = how == "hang"
        if late:
            time.sleep(HANG_S)   # past the sender's timeout: it counts this as failed
            how = None
        st, extra = 200, {}
        if how == "503":
            st = 503
        elif how == "500ra":
            st, extra = 500, {"Retry-After": "1"}
        data = b'{"ok":true}' if st == 200 else b'{"error":"receiver is down"}'
        try:
            h.send_response(st)
            for k, v in extra.items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            r["answered"] = -2 if late else st
        except OSError:
            r["answered"] = -1

    def snapshot(self):
        with self.lock:
            return list(self.records)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
