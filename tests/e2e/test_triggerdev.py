"""Provider kind "trigger.dev" against a stand-in for Trigger.dev's REST API
that checks the documented request shapes:

  POST /api/v1/tasks/{taskIdentifier}/trigger   Authorization: Bearer {secret key}
       body {payload, context?, options: {idempotencyKey, queue, tags, …}}
       → 200 {"id": "run_…"}   (the same id again for a known idempotencyKey)
  POST /api/v2/runs/{runId}/cancel              → 200 {"id": runId}

(trigger.dev/docs/management/tasks/trigger, …/management/runs/cancel). The
stand-in then plays the task: it reports to payload.callbackUrl with
payload.callbackToken, as jobring's provider contract asks.

Covered: a job completes and jobring keeps the stand-in's run id (read back
from LMDB with mdb_dump); the payload is jobring's dispatch body; options
from the config pass through, idempotencyKey = {jobId}-{attempt} on every
attempt (a 500 then a retry); a client cancel reaches
/api/v2/runs/{runId}/cancel with that run's id and a late report is then
ignored; a wrong secret is refused by the stand-in and the job fails
DISPATCH_EXHAUSTED."""
import json
import re
import secrets
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakeprov import post
from jr import Server, check, wait_for

SECRET = "tr_dev_" + secrets.token_hex(12)
TASK = "jobring-ffmpeg"
PAYLOAD_KEYS = {"jobId", "type", "params", "inputs", "output", "callbackUrl", "callbackToken",
                "deadline", "attempt"}


class TriggerStub:
    def __init__(self):
        self.lock = threading.Lock()
        self.triggers = []     # (task, body, run id or None, status)
        self.cancels = []      # run id
        self.refused = []      # (path, why)
        self.runs = {}         # run id -> payload
        self.idem = {}         # idempotencyKey -> run id
        self.reports = []      # (job, event, status, answer)
        self.failed_once = set()  # jobs with params.flaky whose first trigger got a 500
        stub = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, st, obj):
                data = json.dumps(obj).encode()
                self.send_response(st)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def refuse(self, st, why):
                with stub.lock:
                    stub.refused.append((self.path, why))
                self.answer(st, {"error": why})

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Authorization") != "Bearer " + SECRET:
                    return self.refuse(401, "Invalid or Missing API Key")
                m = re.fullmatch(r"/api/v1/tasks/([^/?]+)/trigger", self.path)
                if m:
                    return self.trigger(urllib.parse.unquote(m.group(1)), raw)
                m = re.fullmatch(r"/api/v2/runs/(run_[A-Za-z0-9]+)/cancel", self.path)
                if m:
                    run = m.group(1)
                    with stub.lock:
                        known = run in stub.runs
                        if known:
                            stub.cancels.append(run)
                    return self.answer(200, {"id": run}) if known else self.refuse(404, "Run not found")
                self.refuse(404, "no such route")

            def trigger(self, task, raw):
                if task != TASK:
                    return self.refuse(404, "Task not found")
                if not self.headers.get("Content-Type", "").startswith("application/json"):
                    return self.refuse(400, "Content-Type")
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self.refuse(400, "not JSON")
                if not isinstance(body, dict) or not set(body) <= {"payload", "context", "options"}:
                    return self.refuse(400, "body keys")
                p, o = body.get("payload"), body.get("options")
                if not isinstance(p, dict) or set(p) < PAYLOAD_KEYS or not isinstance(o, dict):
                    return self.refuse(400, "payload/options")
                key = o.get("idempotencyKey")
                if not isinstance(key, str) or not key:
                    return self.refuse(400, "idempotencyKey")
                with stub.lock:
                    if (p.get("params") or {}).get("flaky") and p["jobId"] not in stub.failed_once:
                        stub.failed_once.add(p["jobId"])
                        stub.triggers.append((task, body, None, 500))
                        return self.answer(500, {"error": "Internal Server Error"})
                    run = stub.idem.get(key)
                    cached = run is not None
                    if not cached:
                        run = "run_" + secrets.token_hex(10)
                        stub.idem[key] = run
                        stub.runs[run] = p
                    stub.triggers.append((task, body, run, 200))
                self.answer(200, {"id": run, "isCached": cached})
                if not cached:
                    threading.Thread(target=stub.play, args=(run, p), daemon=True).start()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"   # trailing '/' on purpose
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def report(self, p, event, **extra):
        msg = dict({"event": event, "attempt": p["attempt"]}, **extra)
        st, ans = post(p["callbackUrl"], msg, token=p["callbackToken"])
        with self.lock:
            self.reports.append((p["jobId"], event, st, ans))
        return st, ans

    def play(self, run, p):
        """The task: report like a provider does."""
        params = p.get("params") or {}
        self.report(p, "running")
        if params.get("wait"):
            wait_for(lambda: run in self.cancels, timeout=30, what="the cancel")
            self.report(p, "complete", output={"files": [], "data": {"late": True}}, computeMs=5)
            return
        self.report(p, "progress", progress=0.5, step="ffmpeg")
        self.report(p, "complete", output={"files": [], "data": {"run": run, "echo": params.get("echo")}},
                    computeMs=1200)

    def of(self, job):
        with self.lock:
            return [t for t in self.triggers if t[1]["payload"]["jobId"] == job]


def stored_run_id(datadir, job, provider):
    """The run id in the LMDB job record (job.c: short strings u8 len + bytes:
    id org type provider run_id …)."""
    out = subprocess.run(["mdb_dump", "-s", "jobs", datadir], capture_output=True, text=True, check=True).stdout
    lines = [x.strip() for x in out.split("HEADER=END", 1)[1].splitlines() if x.startswith(" ")]
    recs = {bytes.fromhex(lines[i]): bytes.fromhex(lines[i + 1]) for i in range(0, len(lines) - 1, 2)}
    rec = recs.get(job.encode())
    if rec is None:
        return None
    pv = bytes([len(provider)]) + provider.encode()
    i = rec.find(pv)
    if i < 0:
        return None
    i += len(pv)
    return rec[i + 1:i + 1 + rec[i]].decode()


stub = TriggerStub()
CFG = {
    "providers": [
        {"id": "trigger", "kind": "trigger.dev", "url": stub.url, "secret": SECRET, "task": TASK,
         "types": ["td"], "options": {"queue": {"name": "media"}, "tags": ["jobring"],
                                      "idempotencyKey": "overridden"}},
        {"id": "badkey", "kind": "trigger.dev", "url": stub.url, "secret": "tr_dev_wrong", "task": TASK,
         "types": ["tdbad"]},
    ],
    "jobTypes": {"td": {"schema": {"type": "object"}, "maxExecutionSeconds": 60},
                 "tdbad": {"schema": {"type": "object"}, "maxExecutionSeconds": 60}},
    "dispatch": {"maxAttempts": 2, "backoffMs": 200, "backoffMaxMs": 400, "timeoutMs": 3000,
                 "unhealthyAfter": 1000},
}


def job(s, key, jid):
    return s.request("GET", f"/jobs/{jid}", token=key)[1]["data"]


def submit(s, key, typ, params):
    st, j = s.request("POST", "/jobs", {"type": typ, "params": params}, token=key)
    assert st == 201, (st, j)
    return j["data"]["id"]


def until(s, key, jid, statuses, timeout=20):
    return wait_for(lambda: (lambda j: j if j["status"] in statuses else None)(job(s, key, jid)),
                    timeout=timeout, what=f"{jid} to reach {statuses}")


with Server(CFG) as s:
    org, key = s.make_org()

    # ---- a job runs on "Trigger.dev" and completes
    a = submit(s, key, "td", {"echo": "hi"})
    j = until(s, key, a, ["complete"])
    t = stub.of(a)
    check(len(t) == 1 and t[0][3] == 200, "one POST /api/v1/tasks/jobring-ffmpeg/trigger, Bearer secret key")
    run, body = t[0][2], t[0][1]
    p, o = body["payload"], body["options"]
    check(p["jobId"] == a and p["type"] == "td" and p["params"] == {"echo": "hi"} and p["attempt"] == 1
          and p["callbackUrl"].endswith(f"/provider/jobs/{a}/events") and "{path}" in p["output"]["uploadUrl"]
          and len(p["callbackToken"]) == 43, "payload = jobring's dispatch body")
    check(o == {"queue": {"name": "media"}, "tags": ["jobring"], "idempotencyKey": f"{a}-1"},
          "options: the config's, with idempotencyKey = {jobId}-{attempt}")
    check(j["output"]["data"] == {"run": run, "echo": "hi"} and j["startedAt"] and j["completedAt"],
          "the task's reports complete the job")
    check(stored_run_id(s.datadir, a, "trigger") == run, f"jobring keeps runId = the stand-in's id ({run})")
    check([r[1:3] for r in stub.reports if r[0] == a] == [("running", 200), ("progress", 200), ("complete", 200)],
          "every report was accepted")

    # ---- a 500 on the first trigger: the retry carries attempt 2's key
    b = submit(s, key, "td", {"flaky": True})
    until(s, key, b, ["complete"])
    tb = stub.of(b)
    check([(x[3], x[1]["options"]["idempotencyKey"], x[1]["payload"]["attempt"]) for x in tb]
          == [(500, f"{b}-1", 1), (200, f"{b}-2", 2)],
          "a 500 from trigger is retried, with idempotencyKey {jobId}-2 on attempt 2")
    check(stored_run_id(s.datadir, b, "trigger") == tb[1][2], "…and the run id of attempt 2 is kept")

    # ---- cancel: the client's cancel reaches POST /api/v2/runs/{runId}/cancel
    c = submit(s, key, "td", {"wait": True})
    until(s, key, c, ["running"])
    crun = stub.of(c)[0][2]
    st, cj = s.request("POST", f"/jobs/{c}/cancel", token=key)
    check(st == 200 and cj["data"]["status"] == "cancelled", "POST /jobs/{id}/cancel → cancelled")
    wait_for(lambda: crun in stub.cancels, what="the provider cancel")
    check(stub.cancels == [crun] and crun != run, "the cancel reached POST /api/v2/runs/{runId}/cancel for its run")
    wait_for(lambda: any(r[0] == c and r[1] == "complete" for r in stub.reports), what="the late report")
    late = [r for r in stub.reports if r[0] == c and r[1] == "complete"][0]
    check(late[2] == 200 and late[3] == {"ignored": True} and job(s, key, c)["status"] == "cancelled",
          "a report after the cancel is ignored")

    # ---- the stand-in's check can fail: a wrong secret key is refused
    d = submit(s, key, "tdbad", {})
    j = until(s, key, d, ["failed"])
    check(j["error"]["code"] == "DISPATCH_EXHAUSTED" and not stub.of(d)
          and len([r for r in stub.refused if r[1] == "Invalid or Missing API Key"]) == 2,
          "a wrong secret key → 401 from the stand-in on both attempts → DISPATCH_EXHAUSTED")
    check(not [r for r in stub.refused if r[1] != "Invalid or Missing API Key"],
          f"no request was malformed ({stub.refused})")
stub.httpd.shutdown()
print("test_triggerdev: ok")
