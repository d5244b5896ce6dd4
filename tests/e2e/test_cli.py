"""The command-line client against a real server and a fake provider:
submit --wait (realtime socket, polling fallback, a terminal), failures,
list/get/cancel/retry/logs/types/balance, an @file input through the assets
flow, admin and webhooks commands, --json, help and the man page, and the
errors that must say what to do."""
import http.client
import json
import os
import pty
import re
import select
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakeprov import FakeProvider
from jr import ADMIN, JOBRING, Server, check, free_port, wait_for


class FileProvider(FakeProvider):
    """FakeProvider plus mode "file": PUT an output file, send a log line,
    then report complete with that file."""

    def run(self, body, mode):
        if mode != "file":
            return super().run(body, mode)
        p = body.get("params") or {}
        self.report(body, "running")
        self.report(body, "log", level="info", message="making out.txt", step="render")
        data = (p.get("text") or "hello").encode()
        u = urllib.parse.urlsplit(body["output"]["uploadUrl"].replace("{path}", "out.txt"))
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("PUT", u.path + "?" + u.query, body=data, headers={"Content-Type": "text/plain"})
        r = c.getresponse()
        r.read()
        c.close()
        self.report(body, "complete", output={"files": [{"path": "out.txt", "size": len(data),
                                                         "type": "data"}], "data": None},
                    computeMs=10)


class NoRealtimeProxy:
    """Forwards HTTP to the server but answers 404 for /events/…, like a
    server without the realtime endpoint: the CLI must fall back to polling."""

    def __init__(self, port):
        self.hits = {"events": 0, "jobs": 0}
        proxy = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if self.path.startswith("/events"):
                    proxy.hits["events"] += 1
                    data = b'{"error":{"code":"NOT_FOUND","message":"Route not found"}}'
                    st, hdrs = 404, [("Content-Type", "application/json")]
                else:
                    if self.path.startswith("/jobs/job_"):
                        proxy.hits["jobs"] += 1
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    h = {k: v for k, v in self.headers.items()
                         if k.lower() not in ("host", "connection", "content-length")}
                    c.request(self.command, self.path, body=body, headers=h)
                    r = c.getresponse()
                    data = r.read()
                    st = r.status
                    hdrs = [(k, v) for k, v in r.getheaders()
                            if k.lower() not in ("connection", "content-length",
                                                 "transfer-encoding")]
                    c.close()
                self.send_response(st)
                for k, v in hdrs:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


prov = FileProvider()
CFG = {
    "providers": [{"id": "fake", "url": prov.url, "secret": prov.secret,
                   "types": ["fake", "strict"], "capacity": 8}],
    "jobTypes": {
        "fake": {"summary": "a fake job for tests", "schema": {"type": "object"},
                 "maxExecutionSeconds": 60,
                 "price": {"base": 1000000, "perSecond": 0, "estimateSeconds": 0}},
        "strict": {"summary": "needs n", "maxExecutionSeconds": 60,
                   "schema": {"type": "object", "required": ["n"],
                              "properties": {"n": {"type": "integer", "minimum": 1}}}},
    },
    "dispatch": {"maxAttempts": 2, "backoffMs": 100, "backoffMaxMs": 200, "timeoutMs": 1000},
    "plans": {"big": {"concurrentJobs": 1000, "requestsPerMinute": 10000000,
                      "queueLimit": 100000, "maxJobTimeout": 900}},
}

BASE_ENV = {k: v for k, v in os.environ.items()
            if not k.startswith(("JOBRING_", "RENDOBAR_"))}


def cli(*args, env=None, timeout=60):
    r = subprocess.run([JOBRING, *args], env=dict(BASE_ENV, **(env or {})), capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return r


def cli_tty(args, env, timeout=60):
    """Run with stderr on a pseudo-terminal; returns (rc, stdout, terminal bytes)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([JOBRING, *args], env=dict(BASE_ENV, **env), stdout=subprocess.PIPE,
                         stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    term = b""
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            term += chunk
        elif p.poll() is not None:
            break
    out = p.stdout.read().decode()
    rc = p.wait(timeout=10)
    os.close(master)
    return rc, out, term.decode(errors="replace")


with Server(CFG) as s:
    org, key = s.make_org(plan="big", credits=1_000_000_000)
    url = f"http://127.0.0.1:{s.port}"
    env = {"JOBRING_URL": url, "JOBRING_API_KEY": key, "JOBRING_ADMIN_TOKEN": ADMIN}

    # ---- submit --wait ---------------------------------------------------------------
    r = cli("submit", "fake", "--param", "echo=hi", "--param", "delay=0.6", "--param",
            'extra={"a":[1,2]}', "--wait", env=env)
    check(r.returncode == 0 and json.loads(r.stdout) == {"echo": "hi"},
          "submit --wait: exit 0 and prints output.data of a data job")
    check("over the realtime socket" in r.stderr and "complete 100%" in r.stderr,
          "submit --wait follows the job over /events/ws/job/{id}, plain lines off a terminal")
    jid = re.search(r"submitted (job_\S+)", r.stderr).group(1)
    d = prov.dispatch_of(jid)[0]
    check(d["params"] == {"echo": "hi", "delay": 0.6, "extra": {"a": [1, 2]}},
          "--param values are JSON when they parse, else strings")

    r = cli("submit", "fake", "--param", "mode=file", "--param", "text=made by the provider",
            "--wait", env=env)
    out_url = r.stdout.strip()
    check(r.returncode == 0 and out_url.startswith(url + "/dl/"),
          "submit --wait prints the output file's URL")
    st, body, _ = s.request("GET", out_url[len(url):], raw=True)
    check(st == 200 and body == b"made by the provider", "…and that URL serves the output")
    file_job = re.search(r"submitted (job_\S+)", r.stderr).group(1)

    r = cli("submit", "fake", "--param", "mode=fail", "--param", "code=INPUT_FETCH_FAILED",
            "--wait", env=env)
    check(r.returncode == 1 and "INPUT_FETCH_FAILED: it broke" in r.stderr
          and "stderr tail" in r.stderr, "a failing job with --wait exits 1 with code and message")
    failed = re.search(r"submitted (job_\S+)", r.stderr).group(1)

    r = cli("submit", "fake", "--param", "echo=js", "--wait", "--json", env=env)
    j = json.loads(r.stdout)
    check(r.returncode == 0 and j["data"]["status"] == "complete"
          and j["data"]["output"]["data"] == {"echo": "js"},
          "submit --wait --json prints the final job JSON only")

    # the realtime endpoint missing: polling alone
    px = NoRealtimeProxy(s.port)
    r = cli("submit", "fake", "--param", "delay=1", "--param", "echo=p", "--wait",
            env=dict(env, JOBRING_URL=f"http://127.0.0.1:{px.port}"))
    check(r.returncode == 0 and json.loads(r.stdout) == {"echo": "p"} and "by polling" in r.stderr
          and px.hits["events"] >= 1 and px.hits["jobs"] >= 2,
          "without the realtime socket, --wait falls back to polling GET /jobs/{id}")

    # a terminal: a live progress bar
    rc, out, term = cli_tty(["submit", "fake", "--param", "delay=1", "--param", "echo=t",
                             "--wait"], env)
    check(rc == 0 and json.loads(out) == {"echo": "t"} and "\r\x1b[K" in term
          and re.search(r"\[#+\.*\]", term) and re.search(r"\d:\d\d", term),
          "on a terminal --wait draws a progress bar with the elapsed time")

    # ---- idempotency, no wait ----------------------------------------------------------
    r1 = cli("submit", "fake", "--idempotency-key", "k-1", env=env)
    r2 = cli("submit", "fake", "--idempotency-key", "k-1", env=env)
    check(r1.returncode == 0 and re.fullmatch(r"job_\S+\n", r1.stdout) and r1.stdout == r2.stdout
          and "already submitted" in r2.stderr,
          "submit prints the id; the same idempotency key returns the same job")

    # ---- @file input through the assets flow --------------------------------------------
    tmp = s.tmp
    path = os.path.join(tmp, "my clip.bin")
    payload = os.urandom(200_000)
    with open(path, "wb") as f:
        f.write(payload)
    r = cli("submit", "fake", "--input", f"clip=@{path}", "--input", "other=https://example.com/x",
            "--input", 'note={"content":"hello"}', "--wait", env=env)
    check(r.returncode == 0, "submit with an @file input completes")
    up = re.search(r"submitted (job_\S+)", r.stderr).group(1)
    d = prov.dispatch_of(up)[0]
    u = urllib.parse.urlsplit(d["inputs"]["clip"]["url"])
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("GET", u.path + "?" + u.query)
    resp = c.getresponse()
    got = resp.read()
    c.close()
    check(resp.status == 200 and got == payload,
          "the provider GETs the uploaded file's exact bytes from its input URL")
    st, jj = s.request("GET", f"/jobs/{up}", token=key)
    ins = {k: (v if isinstance(v, str) else v.get("url")) for k, v in jj["data"]["inputs"].items()}
    check("/blobs/assets/" in ins["clip"] and "my_clip.bin" in ins["clip"]
          and ins["other"] == "https://example.com/x",
          "the job's input is the asset's URL; URL inputs pass as they are")

    # ---- list, get, cancel, retry, logs, types, balance ----------------------------------
    r = cli("list", env=env)
    lines = r.stdout.splitlines()
    check(r.returncode == 0 and lines[0].split() == ["ID", "TYPE", "STATUS", "PROGRESS", "AGE",
                                                     "ERROR"]
          and any(failed in l and "INPUT_FETCH_FAILED" in l for l in lines),
          "list prints a table with id, type, status, progress, age, error")
    col = lines[0].index("STATUS")
    check(all(l[col - 2:col] == "  " and l[col] != " " for l in lines[1:]), "…with aligned columns")
    r = cli("list", "--json", "--status", "failed", "--limit", "5", env=env)
    j = json.loads(r.stdout)
    check(r.returncode == 0 and j["meta"]["limit"] == 5 and j["data"]
          and all(x["status"] == "failed" for x in j["data"]),
          "list --json --status --limit: the server's JSON untouched")
    r = cli("list", "--type", "strict", env=env)
    check(r.returncode == 0 and r.stdout == "" and "no jobs match" in r.stderr,
          "list with no match says so")

    r = cli("get", failed, env=env)
    check(r.returncode == 0 and re.search(r"^status\s+failed$", r.stdout, re.M)
          and "INPUT_FETCH_FAILED: it broke" in r.stdout, "get shows the job and its error")
    r = cli("get", file_job, env=env)
    check(re.search(r"^output\s+http://\S+/dl/" + file_job, r.stdout, re.M),
          "get shows the output URL")
    r = cli("get", failed, "--json", env=env)
    check(json.loads(r.stdout)["data"]["id"] == failed, "get --json")

    r = cli("submit", "fake", "--param", "mode=never", env=env)
    never = r.stdout.strip()
    r = cli("cancel", never, env=env)
    check(r.returncode == 0 and r.stdout.strip() == f"{never}: cancelled", "cancel")
    r = cli("cancel", failed, env=env)
    check(r.returncode == 1 and "CONFLICT:" in r.stderr, "cancel of a failed job: CONFLICT, exit 1")

    r = cli("retry", failed, env=env)
    check(r.returncode == 0 and r.stdout.strip() == f"{failed}: waiting (retry 1)",
          "retry of a failed job puts it back to waiting")
    wait_for(lambda: len(prov.dispatch_of(failed)) == 2, what="the retried job's dispatch")

    r = cli("logs", file_job, env=env)
    check(r.returncode == 0 and re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\s+info\s+"
                                          r"\[render\] making out\.txt$", r.stdout, re.M),
          "logs prints the provider's log lines")
    r = cli("logs", never, env=env)
    check(r.returncode == 1 and "NOT_FOUND: No logs for this job" in r.stderr,
          "logs of a job without logs: the API error, exit 1")

    r = cli("types", env={"JOBRING_URL": url})
    check(r.returncode == 0 and re.search(r"^fake\s+\$0\.00\s+60s\s+a fake job for tests$",
                                          r.stdout, re.M), "types needs no key and lists summaries")
    r = cli("balance", env=env)
    st, b = s.request("GET", "/billing/balance", token=key)
    check(r.returncode == 0 and re.search(r"^balance\s+\$\d+\.\d\d$", r.stdout, re.M)
          and "held" in r.stdout, "balance")
    r = cli("balance", "--json", env=env)
    check(json.loads(r.stdout)["data"]["balance"] == b["data"]["balance"], "balance --json")

    r = cli("submit", "strict", "--param", "n=0", env=env)
    check(r.returncode == 1 and "VALIDATION_ERROR:" in r.stderr and re.search(r"^  n: ", r.stderr, re.M),
          "an API error prints CODE: message and the details")
    r = cli("get", "job_doesnotexist0000000", env=env)
    check(r.returncode == 1 and "NOT_FOUND: Job not found" in r.stderr, "get of an unknown job")
    r = cli("list", env=dict(env, JOBRING_API_KEY="rb_live_wrong"))
    check(r.returncode == 1 and "UNAUTHORIZED" in r.stderr and "JOBRING_API_KEY" in r.stderr,
          "a bad key: UNAUTHORIZED and what to check")

    # the Rendobar variable names, and flags over the environment
    r = cli("balance", env={"RENDOBAR_API_URL": url, "RENDOBAR_API_KEY": key})
    check(r.returncode == 0, "RENDOBAR_API_URL / RENDOBAR_API_KEY work as fallbacks")
    r = cli("balance", "--url", url, "--key", key, env={"JOBRING_URL": "http://127.0.0.1:1",
                                                        "JOBRING_API_KEY": "nope"})
    check(r.returncode == 0, "--url and --key override the environment")
    r = cli("--json", "--key", key, "--url", url, "balance")
    check(r.returncode == 0 and json.loads(r.stdout)["data"], "common options before the command")

    # ---- admin ---------------------------------------------------------------------------
    r = cli("admin", "org", "create", "beta", "--plan", "big", "--json", env=env)
    org2 = json.loads(r.stdout)["data"]["id"]
    check(r.returncode == 0 and org2.startswith("org_"), "admin org create")
    r = cli("admin", "org", "plan", org2, "free", env=env)
    check(r.returncode == 0 and re.search(r"^plan\s+free$", r.stdout, re.M), "admin org plan")
    r = cli("admin", "credits", org2, "$2.50", env=env)
    check(r.returncode == 0 and re.search(r"^balance\s+\$2\.50$", r.stdout, re.M),
          "admin credits in dollars")
    r = cli("admin", "credits", org2, "-500000000", env=env)
    check(r.returncode == 0 and re.search(r"^balance\s+\$2\.00$", r.stdout, re.M),
          "admin credits: a negative amount in nanodollars")
    r = cli("admin", "org", "get", org2, env=env)
    check(r.returncode == 0 and re.search(r"^name\s+beta$", r.stdout, re.M)
          and re.search(r"^balance\s+\$2\.00$", r.stdout, re.M), "admin org get")
    r = cli("admin", "key", "create", org2, "--test", env=env)
    key2 = re.search(r"^key\s+(\S+)$", r.stdout, re.M).group(1)
    kid = re.search(r"^id\s+(\S+)$", r.stdout, re.M).group(1)
    check(r.returncode == 0 and key2.startswith("rb_test_"), "admin key create --test")
    r = cli("balance", "--key", key2, env=env)
    check(r.returncode == 0 and "$2.00" in r.stdout, "…the new key works")
    r = cli("admin", "key", "delete", kid, env=env)
    check(r.returncode == 0, "admin key delete")
    r = cli("balance", "--key", key2, env=env)
    check(r.returncode == 1 and "UNAUTHORIZED" in r.stderr, "…and the key no longer works")

    r = cli("submit", "fake", "--param", 'mode="500"', env=env)	# quoted: a string
    dead = r.stdout.strip()
    wait_for(lambda: s.request("GET", f"/jobs/{dead}", token=key)[1]["data"]["status"] == "failed",
             what="dispatch exhaustion")
    r = cli("admin", "dlq", "list", env=env)
    check(r.returncode == 0 and dead in r.stdout and "DISPATCH_EXHAUSTED" in r.stdout,
          "admin dlq list shows the dead-lettered job")
    r = cli("admin", "dlq", "requeue", dead, env=env)
    check(r.returncode == 0 and "requeued (now waiting)" in r.stdout, "admin dlq requeue")
    wait_for(lambda: s.request("GET", f"/jobs/{dead}", token=key)[1]["data"]["status"] == "failed",
             what="exhaustion again")
    r = cli("admin", "dlq", "delete", dead, env=env)
    check(r.returncode == 0 and "removed" in r.stdout, "admin dlq delete")
    r = cli("admin", "dlq", "list", "--json", env=env)
    check(json.loads(r.stdout)["data"] == [], "…the DLQ is empty")
    r = cli("admin", "org", "get", org2, env=dict(env, JOBRING_ADMIN_TOKEN="wrong"))
    check(r.returncode == 1 and "UNAUTHORIZED" in r.stderr and "JOBRING_ADMIN_TOKEN" in r.stderr,
          "a wrong admin token says what to check")

    # ---- webhooks -------------------------------------------------------------------------
    got_hooks = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            got_hooks.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(204)
            self.end_headers()

    hs = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hs.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hs.server_address[1]}/hook"
    r = cli("webhooks", "create", "--url", hook_url, "--event", "job.completed", "--name", "ci",
            env=env)
    check(r.returncode == 0 and re.search(r"^secret\s+whsec_\S+", r.stdout, re.M)
          and re.search(r"^events\s+job\.completed$", r.stdout, re.M),
          "webhooks create prints the endpoint and its secret once (--url is the endpoint's)")
    ep = re.search(r"^id\s+(\S+)$", r.stdout, re.M).group(1)
    r = cli("webhooks", "list", env=env)
    check(r.returncode == 0 and ep in r.stdout and hook_url in r.stdout, "webhooks list")
    r = cli("submit", "fake", "--wait", env=env)
    wait_for(lambda: got_hooks, what="a webhook delivery")
    r = cli("webhooks", "deliveries", ep, "--json", env=env)
    dl = json.loads(r.stdout)["data"]
    check(r.returncode == 0 and dl and dl[0]["event"] == "job.completed", "webhooks deliveries")
    r = cli("webhooks", "deliveries", ep, env=env)
    check(dl[0]["id"] in r.stdout and "job.completed" in r.stdout, "…as a table")
    r = cli("webhooks", "redeliver", ep, dl[0]["id"], env=env)
    check(r.returncode == 0, "webhooks redeliver")
    wait_for(lambda: len(got_hooks) >= 2, what="the redelivery")
    r = cli("webhooks", "rotate", ep, env=env)
    check(r.returncode == 0 and re.search(r"^secret\s+whsec_\S+", r.stdout, re.M), "webhooks rotate")
    r = cli("webhooks", "delete", ep, env=env)
    check(r.returncode == 0, "webhooks delete")
    r = cli("webhooks", "list", "--json", env=env)
    check(all(e["id"] != ep for e in json.loads(r.stdout)["data"]), "…it is gone")
    r = cli("webhooks", "create", "--event", "job.nope", "--url", hook_url, env=env)
    check(r.returncode == 2 and "job.completed" in r.stderr, "an unknown event: usage error")
    hs.shutdown()

    # ---- what to do when it goes wrong ------------------------------------------------------
    r = cli("list", env={"JOBRING_URL": url})
    check(r.returncode == 2 and "no API key: set JOBRING_API_KEY or pass --key" in r.stderr,
          "no key: a message that says what to do")
    r = cli("admin", "dlq", "list", env={"JOBRING_URL": url})
    check(r.returncode == 2 and "JOBRING_ADMIN_TOKEN" in r.stderr, "no admin token: likewise")
    dead_port = free_port()
    r = cli("list", env=dict(env, JOBRING_URL=f"http://127.0.0.1:{dead_port}"))
    check(r.returncode == 1 and f"cannot reach http://127.0.0.1:{dead_port}: connection refused"
          in r.stderr and "jobring serve" in r.stderr, "an unreachable server: a helpful message")
    for args, want in [(["submit"], "missing TYPE"),
                       (["submit", "fake", "--param", "novalue"], "--param wants K=V"),
                       (["submit", "fake", "--input", f"x=@{tmp}/nonexistent"], "cannot read"),
                       (["list", "--limit", "500"], "--limit"),
                       (["list", "--status", "done"], "--status must be one of"),
                       (["get", "a/b"], "not a valid job id"),
                       (["get", "x", "y"], "unexpected argument"),
                       (["list", "--frob"], "unknown option '--frob'"),
                       (["admin", "credits", org2, "lots"], "AMOUNT"),
                       (["frobnicate"], "unknown command 'frobnicate'"),
                       (["admin"], "which one?"),
                       (["list", "--url", "ftp://x"], "is not http://"),
                       (["submit", "fake", "--wait-timeout", "5"], "--wait-timeout")]:
        r = cli(*args, env=env)
        check(r.returncode == 2 and want in r.stderr and r.stdout == "",
              f"bad usage {' '.join(args)!r}: exit 2 and says {want!r}")

    r = cli("submit", "fake", "--param", "mode=never", "--wait", "--wait-timeout", "1", env=env)
    check(r.returncode == 1 and re.search(r"is still (waiting|dispatched) after --wait-timeout 1 s",
                                          r.stderr) and "it goes on" in r.stderr,
          "--wait-timeout gives up waiting, not the job")

    # ---- help and the man page ----------------------------------------------------------------
    r = cli("--help")
    check(r.returncode == 0 and "submit TYPE" in r.stdout and "admin dlq requeue ID" in r.stdout,
          "jobring --help lists the commands")
    cmds = re.findall(r"^  ((?:[a-z]+ )*[a-z]+)(?: [A-Z]|  |\n)", r.stdout, re.M)
    client = [c for c in cmds if c not in ("serve", "check", "worker", "bench", "version")]
    ok = True
    for c in client:
        h = cli(*c.split(), "--help")
        ok &= h.returncode == 0 and h.stdout.startswith(f"usage: jobring {c}") and "--json" in h.stdout
    check(len(client) == 23 and ok, f"each of the {len(client)} client commands has its own --help")
    man = cli("help", "--man")
    check(man.returncode == 0 and man.stdout.startswith(".\\\"") and ".TH JOBRING 1" in man.stdout
          and all(("jobring " + c.replace("-", "\\-")) in man.stdout for c in client),
          "jobring help --man prints a roff page with every command")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "docs", "jobring.1")) as f:
        check(f.read() == man.stdout, "docs/jobring.1 is up to date (run scripts/manpage)")

    rc, out = s.check_store()
    check(rc == 0, "jobring check passes after all that")
print("all ok")
