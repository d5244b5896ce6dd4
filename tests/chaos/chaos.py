#!/usr/bin/env python3
"""jobring's chaos test: a seeded workload of several orgs and every job
type, with seeded faults (kill -9 of actors and of the whole server,
provider and worker pauses, a full LMDB map, webhook receivers that fail for
a while, realtime clients dropped and resumed), then a checker that holds
jobring to what its clients, receivers and the provider recorded:

- every job that got a 2xx exists and reached exactly one terminal status by
  a path the lifecycle table allows (DESIGN.md §1), and every status its
  clients, its realtime stream and its webhooks saw fits that path;
- every org's balance is its credits minus the prices captured for its
  complete jobs, with nothing held;
- every event reached each subscribed webhook endpoint, with one delivery id
  per (endpoint, event);
- realtime clients that resumed saw no gap (defined in checker.py);
- `jobring check` passes at every stop and at the end, SIGTERM exits 0, no
  sanitizer report, and the actors' memory and fds come back to baseline.

usage: chaos.py [--jobring PATH] [--seed S] [--duration SECONDS] [--jobs N]
                [--keep] [--no-media] [--report FILE]
The seed is printed first; the same seed replays the same schedule (job
specs, client decisions, fault kinds and times, receiver outages). Thread
timing still varies from run to run."""
import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import jr  # noqa: E402
from checker import SANITIZER, Checker, history  # noqa: E402
from clients import Clients  # noqa: E402
from faults import Faults, schedule  # noqa: E402
from hooks import Receiver  # noqa: E402
from rt import RTClient, read_log, rng_for  # noqa: E402
from workload import ORGS, TERMINAL, TERMINAL_EVENTS, Lost, Org, http_call, make_specs, server_config  # noqa: E402

PROV_SECRET = "chaos-fake-provider-secret"
WORKER_SECRET = "chaos-worker-secret"
NORMAL_MAP_MB = 256
MB = 1 << 20
# Resources after the load vs. the baseline taken after the warm-up, per actor
# (RssAnon: heap and stacks, not the LMDB map or the shared rings). Open
# connections to our own peers (webhook receivers, the providers) are curl's
# keep-alive pools, bounded by the actors' settings (64 per host): they are
# counted apart, and only the other fds must come back to the baseline.
FD_SLACK = 8
POOL_PER_PEER = 64
LOG_FLOOD = 2000   # server log lines in one second that count as a flood
RSS_SLACK_KB = 48 * 1024
RSS_SLACK_RATIO = 0.5


class Run:
    def __init__(self, a):
        self.a = a
        self.seed = a.seed
        self.t_start = time.monotonic()
        self.load_t0 = None
        self.phase = "setup"
        self.jobs, self.orgs, self.receivers = {}, [], {}
        self.store_checks, self.term_rcs, self.sanitizer, self.res_violations = [], [], [], []
        self.log_floods = []
        self.logs, self.finals, self.balances, self.provider_log = {}, {}, {}, []
        self.exit_rc = None
        self.faults_done = []
        self.admin_token = jr.ADMIN
        self.nonce = f"{self.seed:x}"
        self.media = not a.no_media and shutil.which("ffmpeg") is not None
        self.skipped = []
        self.resources = {}

    # ---- clocks and output ---------------------------------------------------------

    def clock(self):
        return time.monotonic() - self.t_start

    def lclock(self):
        """Seconds since the load started (negative before)."""
        return -1e9 if self.load_t0 is None else time.monotonic() - self.load_t0

    def say(self, msg):
        print(f"chaos: [{self.lclock() if self.load_t0 else -self.clock():7.1f}s] {msg}", flush=True)

    @property
    def port(self):
        return self.srv.port

    # ---- processes -------------------------------------------------------------------

    @staticmethod
    def alive(pid):
        return jr.pid_alive(pid)

    def actor_pids(self):
        try:
            return dict(self.srv.actor_pids())
        except (OSError, ValueError, KeyError):
            return {}

    def store_check(self, what):
        rc, out = self.srv.check_store()
        self.store_checks.append((what, rc, out))
        if rc != 0:
            self.say(f"jobring check FAILED {what}: {out.strip()[-400:]}")

    def crash_server(self, what):
        pids = list(self.actor_pids().values())
        self.srv.proc.send_signal(signal.SIGKILL)
        self.srv.proc.wait()
        end = time.time() + 15
        while time.time() < end and any(self.alive(p) for p in pids):
            time.sleep(0.05)
        if self.srv.log:
            self.srv.log.close()
            self.srv.log = None
        self.store_check(what)

    def stop_server(self, how, what):
        if how == "KILL":
            self.crash_server(what)
            return
        rc = self.srv.stop()
        self.term_rcs.append((what, rc))
        if rc != 0:
            self.say(f"SIGTERM {what} → exit {rc}")
        self.store_check(what)

    def start_server(self):
        err = None
        for _ in range(5):
            try:
                self.srv.start()
                return
            except AssertionError as e:
                err = str(e)[-2000:]
                self.say(f"the server did not start: {err[-300:]}")
                if self.srv.proc and self.srv.proc.poll() is None:
                    self.srv.proc.kill()
                    self.srv.proc.wait()
                time.sleep(1.0)
        raise RuntimeError(f"the server would not start again: {err}")

    def set_map(self, mb):
        self.srv.config["storage"]["mapSizeMB"] = mb
        with open(self.srv.cfgpath, "w") as f:
            json.dump(self.srv.config, f)

    def pause(self, pid, seconds):
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    def start_worker(self):
        port = getattr(self, "worker_port", 0) or 0
        wdir = os.path.join(self.tmp, "worker")
        os.makedirs(wdir, exist_ok=True)
        logp = os.path.join(self.tmp, "worker.log")
        for _ in range(30):
            start = os.path.getsize(logp) if os.path.exists(logp) else 0
            log = open(logp, "ab")
            p = subprocess.Popen([jr.JOBRING, "worker", "--listen", f"127.0.0.1:{port}", "--secret",
                                  WORKER_SECRET, "--jobs", "4", "--workdir", wdir],
                                 stdout=log, stderr=log, env=self.env)
            log.close()
            end = time.time() + 20
            while time.time() < end and p.poll() is None:
                with open(logp, errors="replace") as f:
                    f.seek(start)
                    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
                if m:
                    self.worker, self.worker_port = p, int(m.group(1))
                    return
                time.sleep(0.05)
            if p.poll() is None:
                p.kill()
            p.wait()
            time.sleep(0.5)
        raise RuntimeError("the reference worker would not start")

    def restart_worker(self):
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait()
        self.start_worker()

    def rt_clients(self):
        return [c for o in self.orgs for c in o.rt]

    # ---- setup ----------------------------------------------------------------------------

    def outages(self, name):
        rng = rng_for(self.seed, "outage", name)
        d = self.a.duration
        out = []
        for _ in range(rng.choice([1, 2, 2, 3])):
            t0 = rng.uniform(0.03, 0.7) * d
            out.append((t0, t0 + rng.uniform(2.0, max(3.0, 0.15 * d)), rng.choice(["503", "500ra", "hang", "reset"])))
        return sorted(out)

    def admin(self, method, path, body=None):
        for _ in range(50):
            try:
                st, js, hd = http_call(self.port, method, path, body, self.admin_token)
            except Exception:
                time.sleep(0.2)
                continue
            if st in (429, 503):
                time.sleep(1.0)
                continue
            return st, js
        raise RuntimeError(f"{method} {path}: no answer")

    def as_org(self, org, method, path, body=None):
        for _ in range(100):
            st, js, hd = http_call(self.port, method, path, body, org.key)
            if st == 429:
                time.sleep(Clients.wait_hint(hd, 1.0) + 0.1)
                continue
            return st, js
        raise RuntimeError(f"{method} {path}: rate limited for good")

    def setup(self):
        self.tmp = tempfile.mkdtemp(prefix="jobring-chaos-")
        asan = os.environ.get("ASAN_OPTIONS", "")
        # a small quarantine, so that RSS measures the heap rather than ASan's
        # pool of freed blocks (256 MB per process by default)
        self.env = dict(os.environ, ASAN_OPTIONS=(asan + ":" if asan else "") + "quarantine_size_mb=16")
        self.provlog = os.path.join(self.tmp, "provider.jsonl")
        self.prov = subprocess.Popen([sys.executable, os.path.join(HERE, "chaosprov.py"), PROV_SECRET,
                                      self.provlog], stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(self.tmp, "provider.err"), "wb"))
        line = self.prov.stdout.readline().decode()
        prov_port = self.prov_port = int(line.split()[1])
        self.start_worker()
        for o in ORGS:
            for rname, _ in o["hooks"]:
                self.receivers[rname] = Receiver(rname, self.outages(rname), self.lclock)
        self.cb_receiver = self.receivers["cb"] = Receiver("cb", self.outages("cb"), self.lclock)
        cfg = server_config(f"http://127.0.0.1:{prov_port}/dispatch", PROV_SECRET,
                            f"http://127.0.0.1:{self.worker_port}/dispatch", WORKER_SECRET, self.media)
        cfg["storage"] = {"mapSizeMB": NORMAL_MAP_MB}
        self.stuck_ms = cfg["sweep"]["stuckSeconds"] * 1000
        self.srv = jr.Server(cfg, env=self.env, keep=True)
        self.clients = Clients(self)
        self.probe()
        # the sentinel's credit grant is event #1, so every chaos org's
        # events are after it and "resume after #1" reads them all
        self.srv.make_org(plan="pro", credits=1, name="sentinel")
        for d in ORGS:
            self.make_org(d)

    def probe(self):
        """Which of the parts being built now does this server have?"""
        st, _, _ = http_call(self.port, "GET", "/webhooks/endpoints", token="rb_live_x_y")
        self.has_webhooks = st != 404
        st, _, _ = http_call(self.port, "GET", "/events", token="rb_live_x_y")
        self.has_realtime = st != 404
        if not self.has_webhooks:
            self.skipped.append("webhooks: /webhooks/endpoints is 404 on this server")
        if not self.has_realtime:
            self.skipped.append("realtime: /events is 404 on this server (and the lifecycle chain "
                                "comes from polling only)")
        if not self.media:
            self.skipped.append("ffprobe/ffmpeg jobs: ffmpeg is not installed or --no-media")

    def make_org(self, d):
        org = Org(d)
        st, o = self.admin("POST", "/admin/orgs", {"name": d["name"], "plan": d["plan"]})
        assert st in (200, 201), (st, o)
        org.id = o["data"]["id"]
        st, b = self.admin("POST", f"/admin/orgs/{org.id}/credits", {"amount": d["credits"]})
        assert st == 200, (st, b)
        org.credits_ok = d["credits"]
        st, k = self.admin("POST", f"/admin/orgs/{org.id}/keys", {"name": "k", "test": False})
        org.key = k["data"]["key"]
        if d["test"]:
            st, k = self.admin("POST", f"/admin/orgs/{org.id}/keys", {"name": "t", "test": True})
            org.test_key = k["data"]["key"]
        if self.has_webhooks:
            for rname, events in d["hooks"]:
                body = {"name": rname, "url": self.receivers[rname].url}
                if events:
                    body["subscribedEvents"] = events
                st, e = self.as_org(org, "POST", "/webhooks/endpoints", body)
                assert st == 201, (st, e)
                rec = self.receivers[rname]
                rec.secret, rec.endpoint, rec.org = e["data"]["signingSecret"], e["data"]["id"], org
                rec.events = e["data"]["subscribedEvents"]
                org.endpoints.append((rname, rec.endpoint, set(rec.events)))
        rng = rng_for(self.seed, "assets", d["name"])
        for i in range(1 if d["plan"] == "free" else 2):
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 150_000)))
            got = self.clients.upload(org, f"seed{i}.bin", data)
            assert got, "asset upload failed at setup"
            org.assets.append((got[0], got[1], f"seed{i}.bin"))
        if self.media and d["plan"] != "tiny":
            got = self.clients.upload(org, "clip.mp4", self.clip())
            assert got, "clip upload failed at setup"
            org.clip_url = got[0]
        org.rt = []
        if self.has_realtime:
            for kind in ("ws", "sse"):
                org.rt.append(RTClient(f"{d['name']}-{kind}", kind, lambda: self.port,
                                       org.key, rng_for(self.seed, "rt", d["name"], kind), self.say))
        self.orgs.append(org)

    def clip(self):
        if not hasattr(self, "_clip"):
            p = os.path.join(self.tmp, "clip.mp4")
            subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10",
                            "-c:v", "mpeg4", "-y", p], check=True)
            with open(p, "rb") as f:
                self._clip = f.read()
        return self._clip

    # ---- resources ---------------------------------------------------------------------------

    def peer_ports(self):
        ports = {r.port for r in self.receivers.values()}
        ports.add(self.prov_port)
        ports.add(self.worker_port)
        return ports

    @staticmethod
    def tcp_sockets():
        """socket inode -> remote port, for every TCP socket on the machine."""
        out = {}
        for path in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(path) as f:
                    next(f)
                    for line in f:
                        x = line.split()
                        out[x[9]] = int(x[2].rsplit(":", 1)[1], 16)
            except OSError:
                pass
        return out

    def sample(self):
        out = {}
        pids = self.actor_pids()
        pids["supervisor"] = self.srv.proc.pid
        tcp, peers = self.tcp_sockets(), self.peer_ports()
        for name, pid in pids.items():
            try:
                with open(f"/proc/{pid}/status") as f:
                    st = f.read()
                fds = pool = 0
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    try:
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    except OSError:
                        continue
                    m = re.fullmatch(r"socket:\[(\d+)\]", target)
                    if m and tcp.get(m.group(1)) in peers:
                        pool += 1
                    else:
                        fds += 1
                out[name] = {"pid": pid, "rss_kb": int(re.search(r"RssAnon:\s+(\d+)", st).group(1)),
                             "fds": fds, "pool": pool}
            except (OSError, AttributeError):
                pass
        return out

    def compare_resources(self, base, end):
        for name, b in base.items():
            e = end.get(name)
            if not e:
                self.res_violations.append(f"{name}: not running at the end")
                continue
            if e["fds"] > b["fds"] + FD_SLACK:
                self.res_violations.append(f"{name} (pid {e['pid']}): {e['fds']} open fds besides its "
                                           f"connection pools, baseline {b['fds']} (+{FD_SLACK} allowed)")
            bound = POOL_PER_PEER * len(self.peer_ports())
            if e["pool"] > bound:
                self.res_violations.append(f"{name} (pid {e['pid']}): {e['pool']} connections to the "
                                           f"receivers and providers, more than {bound}")
            allow = max(RSS_SLACK_KB, int(b["rss_kb"] * RSS_SLACK_RATIO))
            if e["rss_kb"] > b["rss_kb"] + allow:
                self.res_violations.append(f"{name} (pid {e['pid']}): RssAnon {e['rss_kb']} kB, baseline "
                                           f"{b['rss_kb']} kB (+{allow} kB allowed)")

    # ---- phases ----------------------------------------------------------------------------

    def wait(self, pred, timeout, what, step=0.2):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            time.sleep(step)
        self.say(f"gave up waiting for {what} after {timeout:.0f} s")
        return False

    def warmup(self):
        for org in self.orgs:
            threading.Thread(target=self.clients.poller, args=(org,), daemon=True).start()
            for c in org.rt:
                c.start()
        for n, org in enumerate(self.orgs):
            sp = {"org": org.name, "i": 100000 + n, "at": 0, "type": "fake", "kind": "warm",
                  "params": {"mode": "ok", "echo": f"warm{n}", "computeMs": 10}, "inputs": None,
                  "key": f"warm-{self.nonce}-{n}", "test": False, "callback": False, "cancel_after": None,
                  "replay_after": None, "retry_budget": 0, "malformed": False, "plan_limit": False}
            self.clients.submit(org, sp)
            if n < 2:
                sp = dict(sp, i=100100 + n, type="checksum", params={}, kind="warm",
                          inputs={"text": "warm", "how": "both"}, key=None)
                self.clients.submit(org, sp)
        self.wait(lambda: all(j.closed for j in self.jobs.values()), 90, "the warm-up jobs")
        self.wait(lambda: all(c.connected.is_set() for c in self.rt_clients()), 30, "realtime clients")
        time.sleep(2.0)
        self.base = self.sample()

    def load(self):
        self.phase = "load"
        specs = []
        total = self.a.jobs
        for org in self.orgs:
            n = round(total * org.share)
            if org.cap:
                n = min(n, org.cap)
            specs += [(org, sp) for sp in make_specs(self.seed, org.__dict__, n, self.a.duration,
                                                   self.media and org.plan != "tiny", self.nonce)]
        self.planned = len(specs)
        self.load_t0 = time.monotonic()
        for org, sp in specs:
            self.clients.sched.at(self.load_t0 + sp["at"], self.clients.submit, org, sp)
        self.faults = Faults(self, schedule(self.seed, self.a.duration))
        self.say(f"load: {len(specs)} jobs over {self.a.duration} s, {len(self.faults.plan)} faults planned")
        self.faults.start()
        while self.lclock() < self.a.duration:
            time.sleep(0.5)

    def storage_full(self, seconds, how):
        self.stop_server(how, "before the map is made tiny")
        size = os.path.getsize(os.path.join(self.srv.datadir, "data.mdb"))
        self.set_map(size // MB + 2)
        self.start_server()
        self.phase = "full"
        self.n_full = getattr(self, "n_full", 0) + 1
        org = self.orgs[0]
        n507 = made = 0
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            i += 1
            sp = {"org": org.name, "i": 200000 + self.n_full * 10000 + i, "at": 0, "type": "fake",
                  "kind": "fill", "params": {"mode": "ok", "echo": f"fill{i}", "computeMs": 0, "pad": "x" * 60000},
                  "inputs": None, "key": f"fill-{self.nonce}-{self.n_full}-{i}", "test": False,
                  "callback": False, "cancel_after": None, "replay_after": None, "retry_budget": 0,
                  "malformed": False, "plan_limit": False}
            body = {"type": "fake", "params": sp["params"], "idempotencyKey": sp["key"]}
            org.submits["keys_sent"].add(sp["key"])
            try:
                st, js, hd = self.clients.call("fill", "POST", "/jobs", body, org.key)
            except Lost:
                org.submits["unknown_keyed"].add(sp["key"])
                time.sleep(0.2)
                continue
            except Exception:
                time.sleep(0.2)
                continue
            if st == 201:
                made += 1
                self.clients.register(org, sp, js["data"], st, {}, body, org.key)
            elif st == 507:
                n507 += 1
                time.sleep(0.05)
        self.say(f"storage full: {made} filler jobs accepted, then {n507} answers 507")
        # still "full" until the server with room is up: the full one answers
        # the load clients 507 until it is stopped
        self.stop_server("TERM", "with the map full")
        self.set_map(NORMAL_MAP_MB)
        self.start_server()
        self.phase = "load"
        return n507

    def drain(self):
        self.phase = "drain"
        self.say("load over: waiting for the last faults, then draining")
        self.faults.join(timeout=300)
        self.faults.stop_ev.set()
        self.faults_done = self.faults.done
        self.clients.retries_on = False
        if self.srv.config["storage"]["mapSizeMB"] != NORMAL_MAP_MB:
            if self.srv.proc.poll() is None:
                self.stop_server("TERM", "restoring the map")
            self.set_map(NORMAL_MAP_MB)
        if self.srv.proc.poll() is not None:
            self.start_server()
        for p in (self.prov, self.worker):
            os.kill(p.pid, signal.SIGCONT)
        if self.worker.poll() is not None:
            self.start_worker()
        for r in self.receivers.values():
            r.healthy.set()
        self.wait(self.clients.sched.idle, 120, "the clients' pending actions")
        self.say("every submission and client action is done")
        if not self.wait(lambda: all(j.closed for j in self.jobs.values()), 180, "every job to finish", 0.5):
            for j in self.jobs.values():
                if not j.closed:
                    self.say(f"  {j.id}: {j.polls[-1:] if j.polls else 'never polled'}")
        self.say("every job has finished")
        self.clients.stop_ev.set()
        self.clients.sched.stopped = True

    def final(self):
        self.phase = "final"
        for org in self.orgs:
            self.finals[org.name] = self.clients.final_list(org)
        # the webhooks the client's own records call for
        if self.has_webhooks:
            self.wait(self.hooks_done, 90, "webhook deliveries", 0.5)
            self.say("the webhooks the clients expect have arrived")
            self.redeliver()
        for org in self.orgs:
            self.logs[org.name] = read_log(self.port, org.key, 1) if self.has_realtime else []
        ends = {org.name: (self.logs[org.name][-1][0] if self.logs[org.name] else None) for org in self.orgs}
        if not self.wait(lambda: all(c.last == ends[o.name] and c.connected.is_set() for o in self.orgs
                                     for c in o.rt if ends[o.name] is not None), 30, "realtime clients to catch up"):
            for o in self.orgs:
                for c in o.rt:
                    self.say(f"  {c.cname}: last #{c.last}, log end #{ends[o.name]}, connected "
                             f"{c.connected.is_set()}, {c.connects} connects, {c.refusals} refusals")
        self.say("the event log is read and the realtime clients are at its end")
        time.sleep(3.0)
        self.end_sample = self.sample()
        self.compare_resources(self.base, self.end_sample)
        for c in self.rt_clients():
            c.stop()
        for org in self.orgs:
            self.balances[org.name] = self.clients.balance(org)
        st, js = self.admin("GET", "/admin/dlq")
        self.dlq = {d["id"]: d for d in js["data"]} if st == 200 and js["meta"]["total"] < 1000 else None
        self.prov.send_signal(signal.SIGTERM)
        self.prov.wait()
        with open(self.provlog) as f:
            self.provider_log = [json.loads(x) for x in f if x.strip()]
        self.exit_rc = self.srv.stop()
        self.store_check("at the end")
        self.worker.send_signal(signal.SIGTERM)
        try:
            self.worker.wait(15)
        except subprocess.TimeoutExpired:
            self.worker.kill()
        for r in self.receivers.values():
            r.close()
        for path in (self.srv.logpath, os.path.join(self.tmp, "worker.log")):
            seen = set()
            per_sec = {}
            with open(path, errors="replace") as f:
                for line in f:
                    if SANITIZER.search(line) and line not in seen:
                        seen.add(line)
                        self.sanitizer.append((os.path.basename(path), line.strip()[:300]))
                    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\S* (\w+)\[\d+\] \w+: (.{0,60})", line)
                    if m:
                        c = per_sec.setdefault(m.group(1), collections.Counter())
                        c[(m.group(2), m.group(3))] += 1
            floods = [(sum(c.values()), sec, c.most_common(1)[0]) for sec, c in per_sec.items()
                      if sum(c.values()) > LOG_FLOOD]
            if floods:
                n, sec, ((actor, msg), k) = max(floods)
                self.log_floods.append(f"{os.path.basename(path)}: {len(floods)} seconds with more than "
                                       f"{LOG_FLOOD} lines; worst {sec}: {n} lines, {k} from {actor}: '{msg}…'")
        self.log_bytes = os.path.getsize(self.srv.logpath)

    def redeliver(self):
        """POST …/redeliver one delivered delivery per endpoint: the same id
        must arrive again with a higher X-Rendobar-Attempt."""
        asked = []
        for org in self.orgs:
            for rname, eid, _ in org.endpoints:
                done = [r for r in self.receivers[rname].snapshot() if 200 <= r["answered"] < 300]
                if not done:
                    continue
                r = done[rng_for(self.seed, "redeliver", rname).randrange(len(done))]
                before = max(int(x["attempt"] or 0) for x in self.receivers[rname].snapshot()
                             if x["delivery"] == r["delivery"])
                st, _ = self.as_org(org, "POST", f"/webhooks/endpoints/{eid}/deliveries/{r['delivery']}/redeliver")
                asked.append((rname, r["delivery"], st, before))

        def after(rname, did):
            a = [int(x["attempt"] or 0) for x in self.receivers[rname].snapshot() if x["delivery"] == did]
            return max(a) if a else None

        self.wait(lambda: all((after(n, d) or 0) > b for n, d, st, b in asked if st in (200, 202)), 30,
                  "the redeliveries")
        self.redelivered = [(n, d, st, b, after(n, d)) for n, d, st, b in asked]

    def hooks_done(self):
        for org in self.orgs:
            for rname, _, events in org.endpoints:
                got = {(r.get("job"), r.get("event"), r.get("job_attempt"))
                       for r in self.receivers[rname].snapshot() if 200 <= r["answered"] < 300}
                for jid, job in org.jobs.items():
                    f = self.finals[org.name].get(jid)
                    if f and f["status"] in TERMINAL:
                        ev = TERMINAL_EVENTS[TERMINAL.index(f["status"])]
                        if ev in events and (jid, ev, f.get("attempt")) not in got:
                            return False
        return True

    # ---- report ---------------------------------------------------------------------------------

    def report(self, ck, violations):
        by_status, by_kind = {}, {}
        for org in self.orgs:
            for jid, job in org.jobs.items():
                f = self.finals[org.name].get(jid)
                s = f["status"] if f else "LOST"
                by_status[s] = by_status.get(s, 0) + 1
                by_kind[job.spec["type"]] = by_kind.get(job.spec["type"], 0) + 1
        faults = {}
        for f in self.faults_done:
            faults[f["kind"]] = faults.get(f["kind"], 0) + 1
        p = print
        p("chaos: ---------------------------------------------------------------- report")
        p(f"chaos: seed {self.seed}, duration {self.a.duration} s (whole run {self.clock():.0f} s), "
          f"{self.planned} jobs planned "
          f"(+ warm-up and filler), {len(self.jobs)} acknowledged jobs checked")
        p(f"chaos: final status {by_status}; by type {by_kind}")
        p(f"chaos: faults injected {faults}")
        for f in self.faults_done:
            extra = {k: v for k, v in f.items() if k not in ("t", "kind", "args", "planned", "ok")}
            p(f"chaos:   {f['t']:6.1f}s {f['kind']:<15} {f['args']} {extra}")
        for k, v in ck.summary.items():
            p(f"chaos: {k}: {v}")
        http = {}
        for (what, st, code), n in self.clients.stats.items():
            if st != 200 and st != 201:
                http[f"{what} {st}{' ' + code if code else ''}"] = n
        p(f"chaos: non-2xx answers and failures seen by clients: {dict(sorted(http.items()))}")
        p("chaos: resources, baseline → end: RssAnon kB, fds (besides pools), pooled connections to peers:")
        for name, b in self.base.items():
            e = self.end_sample.get(name, {})
            p(f"chaos:   {name:<11} {b['rss_kb']:>8} → {e.get('rss_kb', '-'):>8}   {b['fds']:>4} → {e.get('fds', '-'):>4}"
              f"   {b['pool']:>3} → {e.get('pool', '-'):>3}   (pid {b['pid']} → {e.get('pid', '-')})")
        p(f"chaos: tolerance: fds +{FD_SLACK}, RssAnon +max({RSS_SLACK_KB // 1024} MiB, "
          f"{int(RSS_SLACK_RATIO * 100)}%) per process; pools ≤ {POOL_PER_PEER} per peer; "
          f"server log {self.log_bytes // 1024} KiB")
        for what, rc in self.term_rcs:
            p(f"chaos: SIGTERM {what} → {rc}")
        for s in self.skipped:
            p(f"chaos: SKIPPED {s}")
        for n in ck.notes:
            p(f"chaos: note: {n}")
        kinds = collections.Counter(m["kind"] for m in ck.minors)
        for kind, n in kinds.items():
            ex = [m for m in ck.minors if m["kind"] == kind][:3]
            p(f"chaos: MINOR [{kind}] {n} jobs (not an invariant; the run does not fail on it), e.g. "
              + "; ".join(f"{m['jobs'][0] if m['jobs'] else ''}: {m['detail']}" for m in ex))
        if self.clients.sched.errors:
            p(f"chaos: note: {self.clients.sched.errors} client actions raised (see above)")
        if violations:
            p(f"chaos: {len(violations)} INVARIANT VIOLATIONS")
            shown = set()
            for v in violations:
                p(f"chaos: VIOLATION [{v['kind']}] {v['detail']}  jobs: {' '.join(v['jobs'][:10])}")
                for jid in v["jobs"][:3]:
                    if jid not in shown:
                        shown.add(jid)
                        p(history(self, ck, jid))
        else:
            p("chaos: no invariant violated")
        if self.a.report:
            with open(self.a.report, "w") as f:
                json.dump({"seed": self.seed, "violations": violations, "minor": ck.minors,
                           "faults": self.faults_done,
                           "summary": ck.summary, "final_status": by_status,
                           "resources": {"base": self.base, "end": self.end_sample}}, f, indent=1, default=str)
        p(f"chaos: data and logs in {self.tmp} and {self.srv.tmp}" if self.a.keep or violations
          else "chaos: (--keep keeps the data dir and logs)")

    def cleanup(self, keep):
        for p in (getattr(self, "prov", None), getattr(self, "worker", None)):
            if p and p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    p.kill()
                    p.wait()
                except OSError:
                    pass
        srv = getattr(self, "srv", None)
        if srv:
            srv.stop(signal.SIGKILL)
            if not keep:
                shutil.rmtree(srv.tmp, ignore_errors=True)
        if not keep and hasattr(self, "tmp"):
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobring", default=os.environ.get("JOBRING", os.path.join(ROOT, "build-chaos", "jobring")))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--jobs", type=int, default=150)
    ap.add_argument("--keep", action="store_true", help="keep the data dir and the logs")
    ap.add_argument("--no-media", action="store_true", help="no ffprobe/ffmpeg jobs")
    ap.add_argument("--report", help="write the findings as JSON here")
    a = ap.parse_args()
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    print(f"chaos: seed {a.seed}", flush=True)
    jr.JOBRING = os.path.abspath(a.jobring)
    if not os.access(jr.JOBRING, os.X_OK):
        print(f"chaos: no jobring binary at {jr.JOBRING}", flush=True)
        return 2
    run = Run(a)
    violations = None
    try:
        run.setup()
        run.warmup()
        run.load()
        run.drain()
        run.final()
        ck = Checker(run)
        violations = ck.run_all()
        run.report(ck, violations)
    except BaseException:
        import traceback
        traceback.print_exc()
        print(f"chaos: the run itself failed (seed {a.seed}); logs in {getattr(run, 'tmp', '?')}", flush=True)
        if getattr(run, "srv", None):
            sys.stdout.write("---- server log (tail) ----\n" + run.srv.logtext()[-4000:] + "\n")
        run.cleanup(keep=True)
        return 3
    run.cleanup(keep=a.keep or bool(violations))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
