"""Helpers for jobring's end-to-end tests: start the real server on loopback
ports with a temporary data dir, talk HTTP to it, find and kill its actors.

Every test is a plain program: `python3 tests/e2e/NAME.py /path/to/jobring`.
It prints one line per check and exits non-zero on the first failure."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

JOBRING = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/jobring"
ACTORS = ["intake", "dispatcher", "timer", "reporter", "notifier"]
ADMIN = "adm_test_token_0123456789abcdef"


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", flush=True)
        raise SystemExit(1)
    print(f"ok: {what}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout=10.0, step=0.02, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


class Server:
    """A jobring server on free loopback ports with its own data dir."""

    def __init__(self, config=None, datadir=None, args=(), env=None, keep=False, health=True):
        self.tmp = tempfile.mkdtemp(prefix="jobring-e2e-")
        self.datadir = datadir or os.path.join(self.tmp, "data")
        self.port = free_port()
        self.pport = free_port()
        cfg = {
            "listen": f"127.0.0.1:{self.port}",
            "providerListen": f"127.0.0.1:{self.pport}",
            "publicUrl": f"http://127.0.0.1:{self.port}",
            "callbackUrl": f"http://127.0.0.1:{self.pport}",
            "dataDir": self.datadir,
            "adminToken": ADMIN,
            "signingKey": "sk_test_signing_key_0123456789",
            "storage": {"mapSizeMB": 256},
            "webhooks": {"allowPrivateTargets": True},
        }
        for k, v in (config or {}).items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
        self.config = cfg
        self.cfgpath = os.path.join(self.tmp, "config.json")
        with open(self.cfgpath, "w") as f:
            json.dump(cfg, f)
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.keep = keep
        self.health = health
        self.proc = None
        self.logpath = os.path.join(self.tmp, "server.log")
        self.start()

    def start(self):
        runfile = os.path.join(self.datadir, "jobring.run")
        if os.path.exists(runfile):
            os.unlink(runfile)
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([JOBRING, "serve", "--config", self.cfgpath] + self.args,
                                     stdout=self.log, stderr=self.log, env=self.env)
        wait_for(lambda: os.path.exists(runfile) or self.proc.poll() is not None,
                 what="the run file")
        if self.proc.poll() is not None:
            raise AssertionError("server exited at start:\n" + self.logtext())
        if self.health:
            wait_for(lambda: self.try_health(), what="GET /health")

    def try_health(self):
        try:
            st, _ = self.request("GET", "/health", timeout=1)
            return st == 200
        except OSError:
            return False
        except Exception:
            return False

    def run(self):
        with open(os.path.join(self.datadir, "jobring.run")) as f:
            return json.load(f)

    def actor_pids(self):
        return self.run()["actors"]

    def logtext(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def request(self, method, path, body=None, token=None, headers=None, timeout=10,
                port=None, raw=False):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        conn.close()
        if raw:
            return r.status, payload, r
        try:
            return r.status, json.loads(payload) if payload else None
        except ValueError:
            return r.status, payload

    def admin(self, method, path, body=None):
        return self.request(method, path, body, token=ADMIN)

    def make_org(self, plan="pro", credits=100_000_000_000, test=False, name="acme"):
        st, o = self.admin("POST", "/admin/orgs", {"name": name, "plan": plan})
        assert st in (200, 201), (st, o)
        org = o["data"]["id"]
        if credits:
            st, b = self.admin("POST", f"/admin/orgs/{org}/credits", {"amount": credits})
            assert st == 200, (st, b)
        st, k = self.admin("POST", f"/admin/orgs/{org}/keys", {"name": "k", "test": test})
        assert st in (200, 201), (st, k)
        return org, k["data"]["key"]

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        if self.log:
            self.log.close()
            self.log = None
        return rc

    def check_store(self):
        r = subprocess.run([JOBRING, "check", self.datadir], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr

    def close(self):
        self.stop(signal.SIGKILL)
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            sys.stdout.write("---- server log (tail) ----\n" + self.logtext()[-6000:])
        self.close()
        return False
