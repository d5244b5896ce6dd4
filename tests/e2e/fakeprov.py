"""A fake execution provider for end-to-end tests: speaks jobring's provider
contract (DESIGN.md §6) and misbehaves on request.

Job params choose the behaviour: {"mode": ok|500|hang|fail|twice|old|never|
refuse|slow, "delay": seconds before reporting, "computeMs": n, "upload":
{"name", "text"}: PUT that output file to output.uploadUrl (following a 307,
as jobring's S3 mode answers) before reporting complete}."""
import hashlib
import hmac
import http.client
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def put_following(url, data, hops=3):
    """PUT data to url; on a 307/308 PUT it again at the Location."""
    for _ in range(hops):
        u = urllib.parse.urlsplit(url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("PUT", u.path + ("?" + u.query if u.query else ""), body=data,
                  headers={"Content-Type": "application/octet-stream"})
        r = c.getresponse()
        r.read()
        c.close()
        if r.status not in (307, 308):
            return r.status
        url = r.getheader("Location")
    return 0


def post(url, body, token=None, timeout=10):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    c.request("POST", u.path + ("?" + u.query if u.query else ""), body=json.dumps(body), headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


class FakeProvider:
    def __init__(self, secret="fake-secret"):
        self.secret = secret
        self.lock = threading.Lock()
        self.dispatches = []   # (time, body)
        self.cancels = []      # (time, path, body)
        self.reports = []      # (job, event, attempt, status, answer)
        self.bad_sigs = 0
        self.tokens = {}       # (job, attempt) -> callback token
        self.seen = {}         # job -> dispatches received
        prov = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                sig = self.headers.get("X-Jobring-Signature", "")
                want = "sha256=" + hmac.new(prov.secret.encode(), raw, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(sig, want):
                    prov.bad_sigs += 1
                    return self.answer(401, {"error": "bad signature"})
                body = json.loads(raw)
                if self.path.endswith("/cancel"):
                    with prov.lock:
                        prov.cancels.append((time.time(), self.path, body))
                    return self.answer(200, {"ok": True})
                with prov.lock:
                    prov.dispatches.append((time.time(), body))
                    prov.tokens[(body["jobId"], body["attempt"])] = body["callbackToken"]
                    prov.seen[body["jobId"]] = prov.seen.get(body["jobId"], 0) + 1
                    nth = prov.seen[body["jobId"]]
                p = body.get("params") or {}
                mode = p.get("mode", "ok")
                # flaky: the first `bad` dispatches fail the way `how` says
                if mode == "flaky":
                    if nth <= int(p.get("bad", 1)):
                        mode = p.get("how", "500")
                    else:
                        mode = "ok"
                if mode == "500":
                    return self.answer(500, {"error": "boom"})
                if mode == "refuse":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if mode == "hang":
                    time.sleep(float((body.get("params") or {}).get("hang", 3)))
                    return self.answer(500, {"error": "late"})
                self.answer(202, {"runId": "run_" + body["jobId"][4:12] + "_" + str(body["attempt"])})
                threading.Thread(target=prov.run, args=(body, mode), daemon=True).start()

            def answer(self, st, obj):
                data = json.dumps(obj).encode()
                self.send_response(st)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/dispatch"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def report(self, body, event, attempt=None, **extra):
        msg = {"event": event, "attempt": attempt if attempt is not None else body["attempt"]}
        msg.update(extra)
        # like the reference worker: retry while the reporter is unreachable
        # or answers 5xx (it may be restarting after a kill -9)
        for i in range(20):
            try:
                st, ans = post(body["callbackUrl"], msg, token=body["callbackToken"])
            except OSError as e:
                st, ans = 0, str(e)
            if st and st < 500:
                break
            time.sleep(0.1 * min(i + 1, 5))
        with self.lock:
            self.reports.append((body["jobId"], event, msg["attempt"], st, ans))
        return st, ans

    def run(self, body, mode):
        p = body.get("params") or {}
        delay = float(p.get("delay", 0))
        if mode == "never":
            return
        self.report(body, "running")
        if delay:
            self.report(body, "progress", progress=0.5, step="working")
            time.sleep(delay)
        if mode == "fail":
            self.report(body, "failed", error={"code": p.get("code", "PROCESSING_FAILED"),
                                               "message": "it broke", "detail": "stderr tail"})
            return
        out = {"files": [], "data": {"echo": p.get("echo")}}
        up = p.get("upload")
        if up:
            data = up["text"].encode()
            st = put_following(body["output"]["uploadUrl"].replace("{path}", up["name"]), data)
            if st != 200:
                self.report(body, "failed", error={"code": "OUTPUT_UPLOAD_FAILED", "message": str(st)})
                return
            out["files"].append({"path": up["name"], "size": len(data), "type": "other"})
        self.report(body, "complete", output=out, computeMs=int(p.get("computeMs", 1000)))
        if mode == "twice":
            self.report(body, "complete", output=out, computeMs=5)
        if p.get("old"):
            # a stale report: an earlier attempt's token and number
            old = body["attempt"] - 1
            tok = self.tokens.get((body["jobId"], old))
            if tok:
                st, ans = post(body["callbackUrl"], {"event": "complete", "attempt": old,
                               "output": out, "computeMs": 5}, token=tok)
                with self.lock:
                    self.reports.append((body["jobId"], "complete-old", old, st, ans))

    def dispatch_of(self, job):
        with self.lock:
            return [b for _, b in self.dispatches if b["jobId"] == job]

    def times_of(self, job):
        with self.lock:
            return [t for t, b in self.dispatches if b["jobId"] == job]

    def reports_of(self, job):
        with self.lock:
            return [r for r in self.reports if r[0] == job]

    def close(self):
        self.httpd.shutdown()
