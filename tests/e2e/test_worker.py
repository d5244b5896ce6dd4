#!/usr/bin/env python3
"""End-to-end test of `jobring worker`, the reference provider.

Starts the worker on a free loopback port and plays the server's part of
the wire contract (DESIGN.md §6): signed dispatches and cancels go in, and a
small HTTP server in this process receives the reports (callbackUrl), the
output uploads (output.uploadUrl) and serves the inputs. One line per check;
exit 1 on any failure, 77 when everything but the ffmpeg part passed and
ffmpeg is not installed.

usage: test_worker.py /path/to/jobring
"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

JOBRING = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/jobring"
SECRET = "worker-test-secret-" + os.urandom(4).hex()
TMP = tempfile.mkdtemp(prefix="jobring-worker-test-")
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    if not ok:
        failures.append(name)
    return ok


# ---- the test's own HTTP server: callbacks, uploads, inputs -----------------

lock = threading.Condition()
events = {}      # jobId -> [(authorization, body)]
uploads = {}     # (jobId, name) -> (content-type, bytes)
files = {}       # name -> bytes served at /files/name
fetches = []     # every GET path, query included


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # headers and body go out in two writes: no Nagle delay between them
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _reply(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self):
        m = re.fullmatch(r"/cb/([A-Za-z0-9_-]+)", self.path)
        body = self._body()
        if not m:
            return self._reply(404, b'{"error":"no route"}')
        try:
            doc = json.loads(body)
        except ValueError:
            return self._reply(400, b'{"error":"bad json"}')
        with lock:
            events.setdefault(m.group(1), []).append((self.headers.get("Authorization"), doc))
            lock.notify_all()
        self._reply(200, b'{"ok":true}')

    def do_PUT(self):
        m = re.fullmatch(r"/up/([A-Za-z0-9_-]+)/([^/]+)", self.path)
        body = self._body()
        if not m:
            return self._reply(404)
        with lock:
            uploads[(m.group(1), m.group(2))] = (self.headers.get("Content-Type"), body)
            lock.notify_all()
        self._reply(200, b"{}")

    def do_GET(self):
        with lock:
            fetches.append(self.path)
        m = re.fullmatch(r"/files/([^/?]+)(\?.*)?", self.path)
        data = files.get(m.group(1)) if m else None
        if data is None:
            return self._reply(404, b"not found", "text/plain")
        self._reply(200, data, "application/octet-stream")


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A run killed mid-report resets its connection: expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


receiver = Receiver(("127.0.0.1", 0), Handler)
RPORT = receiver.server_address[1]
threading.Thread(target=receiver.serve_forever, daemon=True).start()


# ---- the worker ---------------------------------------------------------------

class Worker:
    def __init__(self, jobs, workdir=None, env=None):
        args = [JOBRING, "worker", "--listen", "127.0.0.1:0", "--secret", SECRET,
                "--jobs", str(jobs)]
        if workdir:
            args += ["--workdir", workdir]
        self.lines = []
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, env=env)
        threading.Thread(target=self._drain, daemon=True).start()
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None and self.proc.poll() is None:
            for line in list(self.lines):
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
            time.sleep(0.05)
        if self.port is None:
            sys.stderr.write("".join(self.lines))
            raise SystemExit("worker did not start")

    def _drain(self):
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace"))

    def run_pid(self, job_id, wait=5.0):
        """The pid the worker logged for the run of job_id (the log is read by
        another thread, so wait a little for the line to arrive)."""
        end = time.time() + wait
        while True:
            for line in list(self.lines):
                m = re.search(r"job %s attempt \d+: \S+ run \S+ started \(pid (\d+)\)" % job_id, line)
                if m:
                    return int(m.group(1))
            if time.time() >= end:
                return None
            time.sleep(0.05)

    def request(self, method, path, body=None, sign=True, secret=SECRET, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        raw = b"" if body is None else (body if isinstance(body, bytes) else
                                         json.dumps(body).encode())
        hdrs = {"Content-Type": "application/json"}
        if sign:
            mac = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            hdrs["X-Jobring-Signature"] = "sha256=" + mac
        hdrs.update(headers or {})
        conn.request(method, path, body=raw if method != "GET" else None, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        try:
            return resp.status, json.loads(data) if data else None
        except ValueError:
            return resp.status, data

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def dispatch_body(job_id, jtype, params=None, inputs=None, attempt=1):
    return {
        "jobId": job_id, "type": jtype, "params": params or {},
        "inputs": inputs or {},
        "output": {"uploadUrl": "http://127.0.0.1:%d/up/%s/{path}" % (RPORT, job_id)},
        "callbackUrl": "http://127.0.0.1:%d/cb/%s" % (RPORT, job_id),
        "callbackToken": "tok-" + job_id,
        "deadline": int(time.time() * 1000) + 120000,
        "attempt": attempt,
    }


def wait_events(job_id, pred, timeout=60):
    end = time.time() + timeout
    with lock:
        while not pred(events.get(job_id, [])):
            left = end - time.time()
            if left <= 0:
                return events.get(job_id, [])
            lock.wait(left)
        return list(events.get(job_id, []))


def terminal(evs):
    return any(e[1].get("event") in ("complete", "failed") for e in evs)


def run_job(w, job_id, jtype, params=None, inputs=None):
    status, resp = w.request("POST", "/dispatch", dispatch_body(job_id, jtype, params, inputs))
    if status != 202:
        return status, resp, []
    return status, resp, wait_events(job_id, terminal)


def last(evs):
    return evs[-1][1] if evs else {}


def gone(pid, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if not os.path.exists("/proc/%d" % pid):
            return True
        time.sleep(0.05)
    return False


def main():
    have_ffmpeg = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
    workdir = os.path.join(TMP, "work")
    w = Worker(4, workdir=workdir)

    # health, and keep-alive: two requests on one connection
    conn = http.client.HTTPConnection("127.0.0.1", w.port, timeout=10)
    ok = True
    for _ in range(2):
        conn.request("GET", "/health")
        r = conn.getresponse()
        h = json.loads(r.read())
        ok = ok and r.status == 200 and h.get("ok") is True and h.get("capacity") == 4
    conn.close()
    check("GET /health twice on one keep-alive connection", ok, h)

    # sleep: running, progress, complete, with the token and the attempt
    body = dispatch_body("job_sleep", "sleep", {"seconds": 1.5}, attempt=2)
    status, resp = w.request("POST", "/dispatch", body)
    check("sleep dispatch accepted with 202 and a runId",
          status == 202 and str((resp or {}).get("runId", "")).startswith("run_"), (status, resp))
    status2, resp2 = w.request("POST", "/dispatch", body)
    check("the same jobId+attempt again is 200 with the same runId",
          status2 == 200 and resp2.get("runId") == (resp or {}).get("runId"), (status2, resp2))
    evs = wait_events("job_sleep", terminal)
    names = [e[1].get("event") for e in evs]
    check("sleep reports running first, then progress, then complete",
          len(names) >= 3 and names[0] == "running" and "progress" in names
          and names[-1] == "complete", names)
    check("every report carries the bearer token and attempt 2",
          evs and all(a == "Bearer tok-job_sleep" and e.get("attempt") == 2 for a, e in evs),
          evs)
    prog = [e[1]["progress"] for e in evs if e[1].get("event") == "progress"]
    check("progress values are between 0 and 1", prog and all(0 < p < 1 for p in prog), prog)
    done = last(evs)
    check("complete has output.data.slept = 1.5 and computeMs",
          done.get("output", {}).get("data") == {"slept": 1.5}
          and done.get("computeMs", 0) >= 1000, done)

    # signatures
    status, _ = w.request("POST", "/dispatch", dispatch_body("job_bad", "sleep"), secret="wrong")
    check("a dispatch signed with another secret is 401", status == 401, status)
    status, _ = w.request("POST", "/dispatch", dispatch_body("job_bad", "sleep"), sign=False)
    check("a dispatch without a signature is 401", status == 401, status)
    status, _ = w.request("POST", "/dispatch/job_bad/cancel", b"", secret="wrong")
    check("a cancel with a bad signature is 401", status == 401, status)
    check("no report for the refused dispatches", "job_bad" not in events)

    # validation of the dispatch itself
    status, resp = w.request("POST", "/dispatch", dispatch_body("job_type", "nope"))
    check("an unknown type is 400", status == 400, (status, resp))
    bad = dispatch_body("job_x", "sleep")
    del bad["callbackUrl"]
    status, resp = w.request("POST", "/dispatch", bad)
    check("a dispatch without callbackUrl is 400", status == 400, (status, resp))
    status, _ = w.request("GET", "/nope", sign=False)
    check("an unknown route is 404", status == 404, status)

    s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    s.sendall(b"POST /dispatch HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
    reply = s.recv(4096)
    s.close()
    check("a body over the limit is 413", reply.startswith(b"HTTP/1.1 413 "), reply[:60])

    # fail
    status, _, evs = run_job(w, "job_fail", "fail", {"code": "MY_CODE", "message": "as asked"})
    err = last(evs).get("error", {})
    check("fail reports failed with the given code and message",
          last(evs).get("event") == "failed" and err.get("code") == "MY_CODE"
          and err.get("message") == "as asked", evs)

    # checksum of an input served by this test
    files["blob.bin"] = os.urandom(100000)
    status, _, evs = run_job(w, "job_sum", "checksum", {},
                             {"data.bin": {"url": "http://127.0.0.1:%d/files/blob.bin" % RPORT}})
    sums = last(evs).get("output", {}).get("data", {}).get("checksums", {})
    check("checksum reports the SHA-256 of the input",
          sums.get("data.bin") == hashlib.sha256(files["blob.bin"]).hexdigest(), evs)
    logs = [e[1].get("message", "") for e in evs if e[1].get("event") == "log"]
    check("a log event tells the input was fetched",
          any("fetched input data.bin" in m for m in logs), logs)
    status, _, evs = run_job(w, "job_404", "checksum", {},
                             {"x.bin": {"url": "http://127.0.0.1:%d/files/missing" % RPORT}})
    check("an input that cannot be fetched fails with INPUT_FETCH_FAILED",
          last(evs).get("error", {}).get("code") == "INPUT_FETCH_FAILED", evs)

    # a dispatch whose body arrives chunked, after an Expect: 100-continue
    raw = json.dumps(dispatch_body("job_chunked", "sleep", {"seconds": 0})).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    s.sendall(("POST /dispatch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "X-Jobring-Signature: %s\r\nTransfer-Encoding: chunked\r\n"
               "Expect: 100-continue\r\n\r\n" % sig).encode())
    first = s.recv(64)
    half = len(raw) // 2
    s.sendall(b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, raw[:half], len(raw) - half,
                                                        raw[half:]))
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    check("Expect: 100-continue gets 100 Continue before the body",
          first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first)
    check("a chunked dispatch body is accepted", b" 202 " in reply.split(b"\r\n")[0]
          or b" 202 " in (first + reply), first + reply)
    evs = wait_events("job_chunked", terminal)
    check("the chunked dispatch runs to complete", last(evs).get("event") == "complete", evs)

    # ffmpeg and its sandbox
    clip = os.path.join(TMP, "clip.mp4")
    if have_ffmpeg:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc=duration=1:size=128x96:rate=10", clip], check=True)
        files["clip.mp4"] = open(clip, "rb").read()
    else:
        files["clip.mp4"] = b"not really a video"
    clip_in = {"in.mp4": {"url": "http://127.0.0.1:%d/files/clip.mp4" % RPORT}}
    if have_ffmpeg:
        status, _, evs = run_job(w, "job_ff", "ffmpeg",
                                 {"command": "ffmpeg -i in.mp4 -vf scale=64:48 out.mp4"}, clip_in)
        done = last(evs)
        check("ffmpeg job completes", done.get("event") == "complete", done)
        fl = done.get("output", {}).get("files", [])
        up = uploads.get(("job_ff", "out.mp4"))
        check("out.mp4 was uploaded and reported as a video of the uploaded size",
              up is not None and len(fl) == 1 and fl[0].get("path") == "out.mp4"
              and fl[0].get("type") == "video" and fl[0].get("size") == len(up[1]),
              (fl, up and len(up[1])))
        out = os.path.join(TMP, "out.mp4")
        with open(out, "wb") as f:
            f.write(up[1] if up else b"")
        probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                                "-show_entries", "stream=width,height", "-of", "csv=p=0", out],
                               capture_output=True, text=True)
        check("ffprobe says the upload is 64x48", probe.stdout.strip() == "64,48",
              probe.stdout + probe.stderr)
        logs = [e[1].get("message", "") for e in evs if e[1].get("event") == "log"]
        check("log events for ffmpeg started and exited",
              any(m.startswith("ffmpeg started") and "-protocol_whitelist file" in m
                  for m in logs) and any("ffmpeg exited with code 0" in m for m in logs), logs)
        status, _, evs = run_job(w, "job_quote", "ffmpeg",
                                 {"command": "ffmpeg -i 'in.mp4' -vf \"scale=32:24\" -t 0.5 "
                                             "small.mp4"}, clip_in)
        check("a command with quoted words completes",
              last(evs).get("event") == "complete" and ("job_quote", "small.mp4") in uploads,
              last(evs))
        status, _, evs = run_job(w, "job_probe", "ffprobe", {"input": "in.mp4"}, clip_in)
        streams = last(evs).get("output", {}).get("data", {}).get("streams", [])
        check("ffprobe job reports the streams of its input",
              streams and streams[0].get("width") == 128, last(evs))
        status, _, evs = run_job(w, "job_fferr", "ffmpeg",
                                 {"command": "ffmpeg -i in.mp4 -c:v no_such_codec bad.mp4"},
                                 clip_in)
        err = last(evs).get("error", {})
        check("an ffmpeg error is PROCESSING_FAILED with the stderr tail",
              err.get("code") == "PROCESSING_FAILED" and "no_such_codec" in err.get("detail", ""),
              err)
        # an endless input loop: progress reports, then the time limit
        status, _, evs = run_job(w, "job_loop", "ffmpeg",
                                 {"command": "ffmpeg -stream_loop -1 -i in.mp4 loop.mp4",
                                  "timeout": 2}, clip_in)
        err = last(evs).get("error", {})
        check("ffmpeg past its time limit fails with PROCESSING_TIMEOUT",
              err.get("code") == "PROCESSING_TIMEOUT", last(evs))
        prog = [e[1]["progress"] for e in evs if e[1].get("event") == "progress"]
        check("ffmpeg -progress output becomes progress reports",
              prog and all(0 < p <= 0.99 for p in prog), prog)
        check("nothing is uploaded after a timeout", ("job_loop", "loop.mp4") not in uploads)
    else:
        print("skip ffmpeg checks: ffmpeg is not installed", flush=True)

    refused = [
        ("-f lavfi", "ffmpeg -f lavfi -i in.mp4 out.mp4"),
        ("movie= filter", "ffmpeg -i in.mp4 -vf movie=in.mp4 out.mp4"),
        ("quoted movie filter", "ffmpeg -i in.mp4 -filter_complex \"mo'v'ie=in.mp4[m]\" out.mp4"),
        ("/etc/passwd input", "ffmpeg -i /etc/passwd out.mp4"),
        ("http:// input", "ffmpeg -i http://127.0.0.1:%d/files/clip.mp4 out.mp4" % RPORT),
        ("../x output", "ffmpeg -i in.mp4 ../x.mp4"),
        ("absolute path inside a filter",
         "ffmpeg -i in.mp4 -vf \"drawtext=textfile='/etc/passwd'\" out.mp4"),
        ("pipe: output", "ffmpeg -i in.mp4 -f mp4 pipe:1"),
        ("an input that is not a job input", "ffmpeg -i other.mp4 out.mp4"),
        ("a shell operator", "ffmpeg -i in.mp4 out.mp4; rm -rf x"),
        ("-protocol_whitelist", "ffmpeg -protocol_whitelist file,http -i in.mp4 out.mp4"),
        ("not ffmpeg", "sh -c true"),
    ]
    for i, (what, cmd) in enumerate(refused):
        jid = "job_sb%d" % i
        tagged = {"in.mp4": {"url": "http://127.0.0.1:%d/files/clip.mp4?for=%s" % (RPORT, jid)}}
        status, _, evs = run_job(w, jid, "ffmpeg", {"command": cmd}, tagged)
        err = last(evs).get("error", {})
        check("sandbox refuses %s with VALIDATION_ERROR" % what,
              last(evs).get("event") == "failed" and err.get("code") == "VALIDATION_ERROR",
              (cmd, last(evs)))
    check("refused commands fetch no input and upload nothing",
          not any("for=job_sb" in f for f in fetches)
          and not any(k[0].startswith("job_sb") for k in uploads),
          [f for f in fetches if "for=job_sb" in f])

    # cancel a long sleep: its process goes, and it never completes
    status, _ = w.request("POST", "/dispatch", dispatch_body("job_long", "sleep", {"seconds": 60}))
    evs = wait_events("job_long", lambda e: any(x[1].get("event") == "running" for x in e))
    pid = w.run_pid("job_long")
    check("long sleep is running", status == 202 and pid is not None and evs, (status, pid))
    status, resp = w.request("POST", "/dispatch/job_long/cancel", b"")
    check("signed cancel answers 200 cancelled", status == 200 and resp.get("cancelled") is True,
          (status, resp))
    check("the cancelled run's process is gone", pid is not None and gone(pid), pid)
    check("the cancelled run's work dir is removed", gone_path(os.path.join(workdir, "job_long-1")))
    _, h = w.request("GET", "/health", sign=False)
    check("health shows no run left", h.get("running") == 0, h)
    time.sleep(1.5)
    check("no complete or failed report after the cancel",
          not terminal(events.get("job_long", [])), events.get("job_long"))
    # a newer attempt of a job supersedes the run of an older one
    w.request("POST", "/dispatch", dispatch_body("job_sup", "sleep", {"seconds": 60}, attempt=1))
    wait_events("job_sup", lambda e: len(e) > 0)
    pid1 = w.run_pid("job_sup")
    status, _ = w.request("POST", "/dispatch",
                          dispatch_body("job_sup", "sleep", {"seconds": 0}, attempt=2))
    evs = wait_events("job_sup", terminal)
    check("attempt 2 of a job kills the run of attempt 1 and completes",
          status == 202 and pid1 is not None and gone(pid1)
          and [e.get("attempt") for _, e in evs if e.get("event") in ("complete", "failed")]
          == [2], (status, pid1, evs))
    rc = w.stop()
    check("SIGTERM stops the worker with status 0", rc == 0, rc)

    # capacity, and shutdown with a run in flight
    tmpdir = os.path.join(TMP, "tmp")
    os.mkdir(tmpdir)
    w1 = Worker(1, env=dict(os.environ, TMPDIR=tmpdir))
    status, _ = w1.request("POST", "/dispatch", dispatch_body("job_cap1", "sleep", {"seconds": 60}))
    status2, resp2 = w1.request("POST", "/dispatch",
                                dispatch_body("job_cap2", "sleep", {"seconds": 1}))
    check("with --jobs 1 a second dispatch while one runs is 503",
          status == 202 and status2 == 503, (status, status2, resp2))
    wait_events("job_cap1", lambda e: len(e) > 0)
    pid = w1.run_pid("job_cap1")
    rc = w1.stop()
    check("SIGTERM with a run in flight exits 0 and kills the run",
          rc == 0 and pid is not None and gone(pid), (rc, pid))
    check("the default work dir is removed at exit", os.listdir(tmpdir) == [],
          os.listdir(tmpdir))

    # a worker killed outright takes its runs with it
    w2 = Worker(2, workdir=os.path.join(TMP, "work2"))
    w2.request("POST", "/dispatch", dispatch_body("job_orphan", "sleep", {"seconds": 60}))
    wait_events("job_orphan", lambda e: len(e) > 0)
    pid = w2.run_pid("job_orphan")
    w2.proc.kill()
    w2.proc.wait()
    check("SIGKILL of the worker kills its runs too", pid is not None and gone(pid), pid)

    if failures or os.environ.get("JOBRING_TEST_VERBOSE"):
        sys.stderr.write("--- worker log ---\n" + "".join(w.lines + w1.lines + w2.lines))
    if failures:
        print("%d check(s) failed: %s" % (len(failures), ", ".join(failures)))
        return 1
    return 0 if have_ffmpeg else 77


def gone_path(path, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if not os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        receiver.shutdown()
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(rc)
