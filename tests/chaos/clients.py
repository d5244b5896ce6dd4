"""The chaos clients' behaviour: submit (retrying with the same idempotency
key after a lost answer), poll, cancel, retry by hand, replay a key, upload
an asset, top up credits. See workload.py for the records they keep."""
import collections
import hashlib
import threading
import time
import urllib.parse

from rt import JobWatch, rng_for
from workload import OPEN, TERMINAL, MAX_TOPUPS, TOPUP, Job, Lost, Refused, Scheduler, http_call


class Clients:
    def __init__(self, run):
        self.run = run
        self.sched = Scheduler()
        self.stats = collections.Counter()      # (what, status, code) -> n
        self.fivexx = []                        # (t, phase, what, status, code, message)
        self.anomalies = []                     # client-side findings for the checker
        self.retries_on = True                  # manual retries only while the load runs
        self.stop_ev = threading.Event()
        self.key_ids = {}                       # idempotency key -> job id first acknowledged
        self.created = collections.Counter()    # idempotency key -> 201 answers
        self.lock = threading.Lock()

    # ---- plumbing -------------------------------------------------------------------

    def call(self, what, method, path, body=None, token=None, timeout=10.0, raw=None):
        try:
            st, js, hd = http_call(self.run.port, method, path, body, token, timeout, raw)
        except Refused:
            self.stats[(what, "refused", None)] += 1
            raise
        except Lost:
            self.stats[(what, "lost", None)] += 1
            raise
        code = ((js or {}).get("error") or {}).get("code") if isinstance(js, dict) else None
        self.stats[(what, st, code)] += 1
        if st >= 500:
            msg = ((js or {}).get("error") or {}).get("message") if isinstance(js, dict) else None
            self.fivexx.append((self.run.lclock(), self.run.phase, what, st, code, msg))
        return st, js, hd

    def anomaly(self, kind, jobs, detail):
        with self.lock:
            self.anomalies.append({"kind": kind, "jobs": list(jobs), "detail": detail})

    @staticmethod
    def wait_hint(hd, default=0.5):
        try:
            return min(5.0, float(hd.get("retry-after", default)))
        except (TypeError, ValueError):
            return default

    # ---- admin ------------------------------------------------------------------------

    def topup(self, org, amount=TOPUP):
        for _ in range(30):
            try:
                st, js, hd = self.call("topup", "POST", f"/admin/orgs/{org.id}/credits",
                                       {"amount": amount}, self.run.admin_token)
            except Refused:
                time.sleep(0.5)
                continue
            except Lost:
                org.credits_unknown.append(amount)
                return
            if st == 200:
                org.credits_ok += amount
                return
            time.sleep(0.5)

    # ---- assets ---------------------------------------------------------------------------

    def upload(self, org, name, data, deadline_s=40.0):
        """POST /assets → PUT → complete. (url, sha256) or None."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            try:
                st, js, hd = self.call("asset", "POST", "/assets", {"name": name, "size": len(data)},
                                       org.key)
                if st == 429 or st >= 500:
                    time.sleep(self.wait_hint(hd))
                    continue
                if st != 201:
                    self.anomaly("asset-create", [], f"POST /assets → {st} {js}")
                    return None
                aid, up = js["data"]["id"], js["upload"]["url"]
                u = urllib.parse.urlsplit(up)
                st, _, _ = self.call("asset-put", "PUT", u.path + "?" + u.query, raw=data)
                if st not in (200, 201, 204):
                    time.sleep(0.3)
                    continue
                for _ in range(20):
                    st, js, hd = self.call("asset", "POST", f"/assets/{aid}/complete", {}, org.key)
                    if st == 200:
                        return js["data"]["url"], hashlib.sha256(data).hexdigest()
                    if st in (409, 404) or (st < 500 and st != 429):
                        break
                    time.sleep(self.wait_hint(hd))
            except (Refused, Lost):
                time.sleep(0.3)
        return None

    # ---- submit ---------------------------------------------------------------------------

    def body_for(self, org, sp):
        body = {"type": sp["type"], "params": dict(sp["params"])}
        sums = {}
        ins = sp.get("inputs")
        if sp["type"] == "checksum":
            inputs = {}
            how = ins["how"]
            if how in ("content", "both"):
                inputs["a.txt"] = {"content": ins["text"]}
                sums["a.txt"] = hashlib.sha256(ins["text"].encode()).hexdigest()
            if how in ("asset", "both") and org.assets:
                url, sha, _ = org.assets[sp["i"] % len(org.assets)]
                inputs["b.bin"] = url
                sums["b.bin"] = sha
            if how == "fresh":
                rng = rng_for(self.run.seed, "asset", org.name, sp["i"])
                data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 40000)))
                got = self.upload(org, f"f{sp['i']}.bin", data)
                if got:
                    inputs["c.bin"] = {"url": got[0]}
                    sums["c.bin"] = got[1]
            if not inputs:
                inputs["a.txt"] = {"content": ins["text"]}
                sums["a.txt"] = hashlib.sha256(ins["text"].encode()).hexdigest()
            body["inputs"] = inputs
        elif ins and ins.get("clip"):
            body["inputs"] = {"clip.mp4": org.clip_url}
        if sp["malformed"]:
            body["inputs"] = {"../escape": "http://127.0.0.1:9/x"}
        if sp["plan_limit"]:
            body["type"] = "ffprobe"
            body["params"] = {"input": "x"}
            body.pop("inputs", None)
        if sp["key"]:
            body["idempotencyKey"] = sp["key"]
        if sp["callback"]:
            body["callback"] = {"url": self.run.cb_receiver.cb_base + f"{org.name}-{sp['i']}"}
        return body, sums

    def submit(self, org, sp):
        body, sums = self.body_for(org, sp)
        token = org.test_key if sp["test"] else org.key
        key = sp["key"]
        expect_reject = sp["malformed"] or sp["plan_limit"]
        maybe_sent = False
        end = time.monotonic() + 60.0
        if key:
            org.submits["keys_sent"].add(key)
        go = threading.Event()
        for _ in range(sp.get("dupes", 0) - 1):
            threading.Thread(target=self.dupe, args=(org, sp, body, token, sums, go), daemon=True).start()
        go.set()
        while True:
            if time.monotonic() > end or self.stop_ev.is_set():
                org.submits["gave_up"] += 1
                if maybe_sent:
                    org.submits["unknown_keyed"].add(key)
                return
            try:
                st, js, hd = self.call("submit", "POST", "/jobs", body, token)
            except Refused:
                time.sleep(0.3)
                continue
            except Lost:
                if not key:
                    org.submits["unknown_keyless"] += 1
                    return
                maybe_sent = True
                time.sleep(0.3)
                continue
            code = ((js or {}).get("error") or {}).get("code")
            if st in (200, 201):
                d = js["data"]
                if expect_reject:
                    self.anomaly("gate", [d["id"]], f"a {'plan-limited' if sp['plan_limit'] else 'malformed'} "
                                 f"submit was accepted: {st}")
                if st == 200 and not maybe_sent and not sp.get("dupes"):
                    self.anomaly("idempotency", [d["id"]], f"a first submit with fresh key {key} was "
                                 f"answered as a replay")
                if st == 201 and maybe_sent is False and d.get("idempotent"):
                    self.anomaly("idempotency", [d["id"]], "201 with idempotent: true")
                self.register(org, sp, d, st, sums, body, token)
                return
            if st == 429:
                time.sleep(self.wait_hint(hd, 1.0) + 0.1)
                continue
            if st == 402 and org.name == "tiny" and org.topups < MAX_TOPUPS:
                org.topups += 1
                self.topup(org)
                continue
            if st in (503, 507):
                time.sleep(0.5)
                continue
            if st >= 500:
                if not key:
                    org.submits["unknown_keyless"] += 1
                    return
                maybe_sent = True
                time.sleep(0.5)
                continue
            if st == 409 and maybe_sent and isinstance(js, dict):
                # our lost first try made the job, and it failed DISPATCH_EXHAUSTED
                # already: the 409 names it (documented replay behaviour)
                det = (js.get("error") or {}).get("details") or {}
                if isinstance(det, dict) and det.get("jobId"):
                    self.register(org, sp, {"id": det["jobId"], "status": "failed"}, 409, sums, body, token)
                    return
            org.submits["rejected"][f"{st} {code}"] = org.submits["rejected"].get(f"{st} {code}", 0) + 1
            if not expect_reject and st not in (402,):
                self.anomaly("gate", [], f"an ordinary submit of {sp['kind']} was refused: {st} {code} "
                             f"{(js or {}).get('error')}")
            if expect_reject:
                # gate order: plan (403), credits (402), schema (400)
                want = 403 if sp["plan_limit"] else 400
                if st != want and not (want == 400 and st == 402):
                    self.anomaly("gate", [], f"expected {want}, got {st} {code}")
            if maybe_sent:
                org.submits["unknown_keyed"].add(key)
            return

    def dupe(self, org, sp, body, token, sums, go):
        """The same keyed submit, sent at the same moment as the first."""
        go.wait()
        for _ in range(40):
            try:
                st, js, hd = self.call("dupe", "POST", "/jobs", body, token)
            except Refused:
                time.sleep(0.3)
                continue
            except Lost:
                return
            if st in (200, 201):
                self.register(org, sp, js["data"], st, sums, body, token)
                return
            if st in (429, 503, 507):
                time.sleep(self.wait_hint(hd))
                continue
            return

    def register(self, org, sp, d, st, sums, body, token):
        jid = d["id"]
        now = time.monotonic()
        with org.lock:
            job = org.jobs.get(jid)
            new = job is None
            if new:
                job = Job(jid, org.name, sp)
                job.expect_sums = sums
                org.jobs[jid] = job
                self.run.jobs[jid] = job
                org.submits["acked"] += 1
            job.acked.append((self.run.clock(), f"submit {st}", d["status"]))
        if sp["key"]:
            with self.lock:
                first = self.key_ids.setdefault(sp["key"], jid)
                if st == 201:
                    self.created[sp["key"]] += 1
                    if self.created[sp["key"]] > 1:
                        self.anomaly("idempotency", [jid], f"key {sp['key']}: {self.created[sp['key']]} "
                                     f"answers 201 Created")
            if first != jid:
                self.anomaly("idempotency", [first, jid], f"key {sp['key']} answered with two jobs")
        if not new:
            return
        if sp["cancel_after"] is not None:
            self.sched.at(now + sp["cancel_after"], self.cancel, org, job)
        if sp["replay_after"] is not None:
            self.sched.at(now + sp["replay_after"], self.replay, org, job, body, token)
        if sp.get("watch") and self.run.has_realtime:
            job.watch = JobWatch(self.run.port, org.key, jid)
            job.watch.start()

    # ---- actions on a job --------------------------------------------------------------------

    def cancel(self, org, job):
        for _ in range(40):
            try:
                st, js, hd = self.call("cancel", "POST", f"/jobs/{job.id}/cancel", {}, org.key)
            except Refused:
                time.sleep(0.5)
                continue
            except Lost:
                job.cancel = "unknown"
                time.sleep(0.5)
                continue
            if st == 200:
                s = js["data"]["status"]
                job.cancel = "ok" if s == "cancelled" else f"200 but {s}"
                job.acked.append((self.run.clock(), "cancel 200", s))
                job.closed = False
                return
            if st == 409:
                job.cancel = "conflict" if job.cancel is None else job.cancel + "+conflict"
                return
            if st in (429, 503, 507):
                time.sleep(self.wait_hint(hd))
                continue
            self.anomaly("cancel", [job.id], f"cancel → {st} {js}")
            return

    def retry(self, org, job, failed_attempt):
        code = ((job.last_seen or {}).get("error") or {}).get("code")
        admin = code == "DISPATCH_EXHAUSTED" and job.spec.get("requeue")
        try:
            for _ in range(40):
                try:
                    if admin:   # the operator's way back: out of the dead-letter queue
                        st, js, hd = self.call("requeue", "POST", f"/admin/dlq/{job.id}/requeue", {},
                                               self.run.admin_token)
                    else:
                        st, js, hd = self.call("retry", "POST", f"/jobs/{job.id}/retry", {}, org.key)
                except Refused:
                    time.sleep(0.5)
                    continue
                except Lost:
                    job.retries_unknown += 1
                    job.budget -= 1
                    return
                if st == 200:
                    job.retries_ok += 1
                    job.requeues += bool(admin)
                    job.failed_retried.append(failed_attempt)
                    job.budget -= 1
                    job.acked.append((self.run.clock(), "retry 200", js["data"]["status"]))
                    return
                if st == 409:
                    job.retry_conflicts.append(failed_attempt)
                    return
                if st == 402 and org.name == "tiny" and org.topups < MAX_TOPUPS:
                    org.topups += 1
                    self.topup(org)
                    continue
                if st in (402,):
                    return
                if st in (429, 503, 507):
                    time.sleep(self.wait_hint(hd))
                    continue
                self.anomaly("retry", [job.id], f"retry → {st} {js}")
                return
        finally:
            job.retry_pending = False
            job.closed = False

    def replay(self, org, job, body, token):
        for _ in range(20):
            try:
                st, js, hd = self.call("replay", "POST", "/jobs", body, token)
            except Refused:
                time.sleep(0.5)
                continue
            except Lost:
                return
            if st == 200:
                d = js["data"]
                job.replays.append((200, d["id"]))
                if d["id"] != job.id or not d.get("idempotent"):
                    self.anomaly("idempotency", [job.id, d["id"]], f"replay answered {d['id']} "
                                 f"idempotent={d.get('idempotent')}")
                return
            if st == 201:
                job.replays.append((201, js["data"]["id"]))
                org.submits["replay_created"].add(js["data"]["id"])
                self.anomaly("idempotency", [job.id, js["data"]["id"]],
                             "a replayed idempotency key created a second job")
                return
            if st == 409:
                job.replays.append((409, ((js or {}).get("error") or {}).get("code")))
                return
            if st in (429, 503, 507):
                time.sleep(self.wait_hint(hd))
                continue
            job.replays.append((st, str(js)[:200]))
            return

    # ---- polling --------------------------------------------------------------------------------

    def observe(self, org, job, d):
        job.polls.append((self.run.clock(), d["status"], d.get("attempt"), d.get("retryCount")))
        job.last_seen = d
        if d["status"] not in TERMINAL:
            return
        if (d["status"] == "failed" and job.budget > 0 and self.retries_on and not job.retry_pending
                and not self.stop_ev.is_set()):
            job.retry_pending = True
            rng = rng_for(self.run.seed, "retry", job.id, len(job.polls))
            self.sched.at(time.monotonic() + rng.uniform(0.2, 1.5), self.retry, org, job, d.get("attempt"))
        elif not job.retry_pending:
            job.closed = True

    def poll_once(self, org):
        open_jobs = [j for j in list(org.jobs.values()) if not j.closed and not j.retry_pending]
        if not open_jobs:
            return
        seen = {}
        for status in OPEN:
            off = 0
            while True:
                st, js, hd = self.call("poll", "GET", f"/jobs?status={status}&limit=100&offset={off}",
                                       token=org.key)
                if st != 200:
                    time.sleep(self.wait_hint(hd))
                    return
                for d in js["data"]:
                    seen[d["id"]] = d
                if len(js["data"]) < 100:
                    break
                off += 100
        for job in open_jobs:
            d = seen.get(job.id)
            if d is None:
                st, js, hd = self.call("get", "GET", f"/jobs/{job.id}", token=org.key)
                if st == 200:
                    d = js["data"]
                elif st == 404:
                    job.polls.append((self.run.clock(), "MISSING", None, None))
                    continue
                else:
                    time.sleep(self.wait_hint(hd))
                    return
            self.observe(org, job, d)

    def poller(self, org):
        while not self.stop_ev.is_set():
            try:
                self.poll_once(org)
            except (Refused, Lost):
                time.sleep(0.3)
                continue
            self.stop_ev.wait(org.poll)

    def final_list(self, org):
        """Every job of the org, from the list (pages of 100), as the API has them."""
        out, off = {}, 0
        end = time.monotonic() + 120
        while time.monotonic() < end:
            try:
                st, js, hd = self.call("final", "GET", f"/jobs?limit=100&offset={off}", token=org.key)
            except (Refused, Lost):
                time.sleep(0.5)
                continue
            if st != 200:
                time.sleep(self.wait_hint(hd, 1.0))
                continue
            for d in js["data"]:
                out[d["id"]] = d
            if off + 100 >= js["meta"]["total"]:
                return out
            off += 100
        raise TimeoutError(f"could not list org {org.name}'s jobs")

    def balance(self, org):
        for _ in range(60):
            try:
                st, js, hd = self.call("balance", "GET", "/billing/balance", token=org.key)
            except (Refused, Lost):
                time.sleep(0.5)
                continue
            if st == 200:
                return js["data"]
            time.sleep(self.wait_hint(hd, 1.0))
        raise TimeoutError("no balance")
