"""The chaos checker: holds jobring to what its clients, its webhook
receivers, its realtime clients and the fake provider recorded.

Vocabulary:
- acked job: a job id some 2xx answer named (submit, replay, dupe, a 409
  that names the job of our own key, cancel, retry).
- L_O: org O's event log as the clients know it: the org's streamable
  events (job.created, job.status, persisted job.progress, balance.updated)
  read at the end by paging GET /events from Last-Event-ID 1 (a replay),
  together with every event a client received live (another code path: a
  replay that drops events shows up as such, not as a broken lifecycle).
- chain: a job's events in L_O. Each job.status says prevStatus → status,
  so the chain is the job's whole path.

Per acked job: it is in the final list and terminal; its chain starts with
one job.created, every move chains from the previous one and is in the
lifecycle table (waiting→failed only DISPATCH_EXHAUSTED), it ends in the
API's status and attempt, its failed→waiting moves match the retries the
client got 200 for (±the ones with unknown outcome) and retryCount; the
poller's statuses are a subsequence of the chain and attempts never go
back; a cancel answered 200 ends cancelled, one answered 409 does not; the
cost is the price (fake: base + perSecond × computeMs, capped at the hold;
worker types: base; test mode: 0), and failures carry a code somebody
reported; outputs echo the params and checksums match the bytes sent; a
PROVIDER_TIMEOUT is never early; a job socket's snapshot and events match.
Per org: one job per idempotency key, no job without a 2xx unless a submit
had an unknown outcome, balance = credits − captured prices, held = 0.
Webhooks: every chain event an endpoint subscribes to reached it with a 2xx,
with one delivery id per (endpoint, job, event, attempt), the envelope's
status fits the event, signatures verify, nothing arrives that the chain
does not explain; a redelivery comes back with the same id. The provider:
every report answered {"ok":true} is in the chain, and no terminal report
is applied twice. The DLQ holds exactly the DISPATCH_EXHAUSTED jobs.

"No gap" for realtime: a logical client's sessions, concatenated, must be
exactly L_O restricted to (its first seq .. the end of the log]: every
session that resumed from id r receives L_O's seqs after r, in order, with
no seq missing, repeated or from another org, and each message equals the
log's record for that seq; the client must reach the log's end once the
system is quiet. A fresh session (no id) starts wherever the server says
"now", so only what follows its first message is checked. Live progress
messages ({"live":true}, not in the log) are left out."""
import collections
import re

from workload import TERMINAL, expected_price

LEGAL = {
    None: {"waiting"},
    "waiting": {"waiting", "dispatched", "failed", "cancelled"},
    "dispatched": {"running", "complete", "failed", "cancelled"},
    "running": {"complete", "failed", "cancelled"},
    "complete": set(),
    "failed": {"waiting"},
    "cancelled": set(),
}
TERM_EVENT = {"complete": "job.completed", "failed": "job.failed", "cancelled": "job.cancelled"}
HOOK_STATUS = {"job.created": "waiting", "job.started": "running", "job.completed": "complete",
               "job.failed": "failed", "job.cancelled": "cancelled"}


def webhook_events(prev, status):
    """outbox_map(): the webhook events of one job.status move."""
    if status == "running":
        return ["job.started"]
    if status == "complete":
        return ["job.started", "job.completed"] if prev == "dispatched" else ["job.completed"]
    if status in TERM_EVENT:
        return [TERM_EVENT[status]]
    return []


class Checker:
    def __init__(self, run):
        self.run = run
        self.violations = []
        self.notes = []
        self.minors = []
        self.summary = collections.OrderedDict()
        self.watched = 0

    def minor(self, kind, jobs, detail):
        """A real inconsistency that breaks none of the invariants: reported,
        does not fail the run."""
        self.minors.append({"kind": kind, "jobs": list(jobs), "detail": detail})

    def bad(self, kind, jobs, detail):
        self.violations.append({"kind": kind, "jobs": sorted(set(j for j in jobs if j)), "detail": detail})

    # ---- the event log ------------------------------------------------------------------

    def chains(self):
        """job id -> [event tuples] from every org's log; and per-org L_O."""
        self.chain = collections.defaultdict(list)
        self.job_org = {}
        self.L = {}
        for org in self.run.orgs:
            # the log as read at the end (a replay), plus whatever the
            # clients got live (hub_publish: another path): a replay that
            # drops events shows up here, not as a broken lifecycle
            read = {e[0]: e for e in self.run.logs[org.name]}
            merged = dict(read)
            for c in org.rt:
                for sess in c.sessions:
                    for e in sess["events"]:
                        if e[0] not in merged:
                            merged[e[0]] = e
            extra = sorted(set(merged) - set(read))
            if extra:
                self.bad("realtime", [merged[q][2] for q in extra[:10]],
                         f"org {org.name}: reading the event log from #1 at the end missed {len(extra)} "
                         f"events that clients had received: {extra[:20]}")
            self.L[org.name] = [merged[q] for q in sorted(merged)]
            for ev in self.L[org.name]:
                if ev[2]:
                    self.chain[ev[2]].append(ev)
                    prev = self.job_org.setdefault(ev[2], org.name)
                    if prev != org.name:
                        self.bad("realtime-org", [ev[2]], f"job events in the logs of {prev} and {org.name}")

    def check_chain(self, jid, final, job):
        if not self.run.has_realtime:
            return None   # no event log to read: the polls are all there is
        evs = [e for e in self.chain.get(jid, []) if e[1] in ("job.created", "job.status")]
        if not evs:
            self.bad("event-log", [jid], "no job.created/job.status event in the org's event log")
            return None
        path = []
        status, n_created, back = None, 0, 0
        for seq, typ, _, st, prev, attempt, data in evs:
            if typ == "job.created":
                n_created += 1
                if status is not None or st != "waiting":
                    self.bad("lifecycle", [jid], f"job.created #{seq} with status {st} after {status}")
                status = "waiting"
                path.append((seq, None, "waiting", attempt, data))
                continue
            if prev != status:
                self.bad("lifecycle", [jid], f"event #{seq} says {prev}→{st} but the job was {status}")
            if st not in LEGAL.get(prev, set()) or st == prev:
                self.bad("lifecycle", [jid], f"event #{seq}: {prev}→{st} is not in the lifecycle table")
            code = (data or {}).get("code")
            if st == "failed" and prev == "waiting" and code != "DISPATCH_EXHAUSTED":
                self.bad("lifecycle", [jid], f"event #{seq}: waiting→failed with code {code}")
            if st == "failed" and prev in ("dispatched", "running") and code == "DISPATCH_EXHAUSTED":
                self.bad("lifecycle", [jid], f"event #{seq}: {prev}→failed DISPATCH_EXHAUSTED")
            if prev == "failed" and st == "waiting":
                back += 1
            status = st
            path.append((seq, prev, st, attempt, data))
        if n_created != 1:
            self.bad("lifecycle", [jid], f"{n_created} job.created events")
        if final is not None:
            if status != final["status"]:
                self.bad("lifecycle", [jid], f"the log ends in {status}, the API says {final['status']}")
            elif path[-1][3] != final.get("attempt"):
                self.bad("lifecycle", [jid], f"the last event has attempt {path[-1][3]}, the job "
                         f"{final.get('attempt')}")
            if status == "complete":
                cost = (path[-1][4] or {}).get("cost")
                amount = (final.get("cost") or {}).get("amount")
                if cost is not None and cost != amount:
                    self.bad("money", [jid], f"job.status complete says cost {cost}, the job {amount}")
        if final is not None and final.get("retryCount") != back:
            self.bad("lifecycle", [jid], f"retryCount {final.get('retryCount')}, but the log has {back} "
                     f"failed→waiting moves")
        if job is not None:
            lo, hi = job.retries_ok, job.retries_ok + job.retries_unknown
            if not lo <= back <= hi:
                self.bad("lifecycle", [jid], f"{back} failed→waiting moves, but the client retried "
                         f"{job.retries_ok} times (+{job.retries_unknown} unknown)")
        return path

    # ---- per job ---------------------------------------------------------------------------

    def check_job(self, job, final):
        jid = job.id
        if final is None:
            self.bad("lost", [jid], "acknowledged, but not in the org's job list at the end")
            return
        if final["status"] not in TERMINAL:
            self.bad("unfinished", [jid], f"still {final['status']} at the end")
        self.check_times(jid, final)
        path = self.check_chain(jid, final, job)
        if any(p[1] == "MISSING" for p in job.polls):
            self.bad("lost", [jid], "GET /jobs/{id} answered 404 after the job was acknowledged")
        # the poller's view is a subsequence of the chain; attempts never go back
        polls = [p for p in job.polls if p[1] != "MISSING"]
        atts = [p[2] for p in polls if p[2] is not None]
        if any(b < a for a, b in zip(atts, atts[1:])):
            self.bad("poll-order", [jid], f"attempt went backwards in polls: {atts}")
        if path:
            seq = [p[2] for p in path]
            i = 0
            for p in polls:
                st = p[1]
                if i < len(seq) and seq[i] == st:
                    continue
                j = i + 1
                while j < len(seq) and seq[j] != st:
                    j += 1
                if j >= len(seq):
                    self.bad("poll-order", [jid], f"a poll saw {st} at {p[0]:.2f}s where the log's path "
                             f"{'→'.join(seq)} has no such step after {seq[i] if i < len(seq) else '-'}")
                    break
                i = j
            terms = {(p[2], p[3]) for p in path if p[2] in TERMINAL}
            for p in polls:
                if p[1] in TERMINAL and (p[1], p[2]) not in terms:
                    self.bad("poll-order", [jid], f"a poll saw {p[1]} at attempt {p[2]}: not in the log")
        # the client's own acknowledgements
        if job.cancel == "ok" and final["status"] != "cancelled":
            self.bad("cancel", [jid], f"cancel answered 200 cancelled, the job ended {final['status']}")
        if job.cancel and job.cancel.endswith("conflict") and final["status"] == "cancelled":
            self.bad("cancel", [jid], "cancel answered 409, yet the job ended cancelled")
        if job.retry_conflicts and not job.retries_unknown:
            self.bad("retry", [jid], f"POST retry → 409 on a job the client saw failed "
                     f"(attempts {job.retry_conflicts})")
        for st, what in job.replays:
            if st == 409 and path and not any(p[2] == "failed" and (p[4] or {}).get("code") == "DISPATCH_EXHAUSTED"
                                              for p in path):
                self.bad("idempotency", [jid], "a key replay → 409, but the job never failed DISPATCH_EXHAUSTED")
        if job.watch is not None:
            self.check_watch(job)
        self.check_money_output(job, final, path)

    def check_times(self, jid, f):
        """The job's own timestamps are in order, and a timeout is never early:
        the exec deadline is dispatchedAt + timeoutMs, and the stuck sweep
        needs sweep.stuckSeconds without a report, which began no earlier than
        dispatchedAt."""
        ts = [(k, f.get(k)) for k in ("createdAt", "dispatchedAt", "startedAt", "completedAt") if f.get(k)]
        for (a, x), (b, y) in zip(ts, ts[1:]):
            if y < x:
                self.minor("timestamps", [jid], f"{b} is {x - y} ms before {a}")
        err = f.get("error") or {}
        if f["status"] == "failed" and err.get("code") == "PROVIDER_TIMEOUT" and f.get("dispatchedAt"):
            floor = min(f.get("timeoutMs") or 0, self.run.stuck_ms)
            took = f["completedAt"] - f["dispatchedAt"]
            if took < floor:
                self.bad("timeout", [jid], f"PROVIDER_TIMEOUT after {took} ms, before timeoutMs "
                         f"{f.get('timeoutMs')} and the stuck sweep's {self.run.stuck_ms} ms")

    def check_watch(self, job):
        """GET /events/ws/job/{id}: the snapshot is the job as of its id,
        then exactly the job's logged events after it."""
        w, jid = job.watch, job.id
        w.join(timeout=1.0)
        self.watched += 1
        if not w.msgs:
            self.notes.append(f"job socket of {jid} got nothing ({w.error})")
            return
        first = w.msgs[0]
        if not first.get("snapshot"):
            self.bad("realtime", [jid], f"job socket: the first message is not the snapshot: {first}")
            return
        if not self.run.has_realtime:
            return
        evs = [e for e in self.chain.get(jid, []) if e[1] in ("job.created", "job.status", "job.progress")]
        status = None
        for e in evs:
            if e[0] <= first["id"] and e[1] != "job.progress":
                status = e[3]
        if status != first["status"]:
            self.bad("realtime", [jid], f"job socket: snapshot #{first['id']} says {first['status']}, the log "
                     f"says {status} as of that id")
        got = [m["id"] for m in w.msgs[1:]]
        if got:
            want = [e[0] for e in evs if e[1] != "job.created" and first["id"] < e[0] <= got[-1]]
            if got != want:
                self.bad("realtime", [jid], f"job socket after snapshot #{first['id']}: got {got}, the log "
                         f"has {want}")
            by = {e[0]: e for e in evs}
            for m in w.msgs[1:]:
                e = by.get(m["id"])
                if e and (m.get("type"), m.get("status"), m.get("prevStatus"), m.get("attempt")) != \
                        (e[1], e[3], e[4], e[5]):
                    self.bad("realtime", [jid], f"job socket: #{m['id']} differs from the log: {m} vs {e[:6]}")

    def check_money_output(self, job, final, path):
        jid, sp = job.id, job.spec
        cost = (final.get("cost") or {}).get("amount")
        st = final["status"]
        typ = final["type"]
        test = final.get("test") or sp["test"]
        if st != "complete":
            if cost:
                self.bad("money", [jid], f"a {st} job has cost {cost}")
            if st == "failed":
                code = (final.get("error") or {}).get("code")
                mode = sp["params"].get("mode")
                chaos = ("PROVIDER_TIMEOUT", "DISPATCH_EXHAUSTED")
                if typ in ("fake", "fakeq"):
                    allowed = chaos + ((sp["params"].get("code", "PROCESSING_FAILED"),) if mode == "fail" else ())
                    if code not in allowed:
                        self.bad("output", [jid], f"fake mode {mode} failed with {code}: nobody reported that")
                elif typ == "fail" and code not in chaos + (sp["params"].get("code"),):
                    self.bad("output", [jid], f"type fail ended with code {code}, asked {sp['params'].get('code')}")
            return
        if test:
            if cost:
                self.bad("money", [jid], f"a test-mode job cost {cost}")
        else:
            want = expected_price(typ, sp["params"].get("computeMs", 1000)) if typ in ("fake", "fakeq") else None
            if typ in ("sleep", "fail", "checksum", "ffprobe"):
                want = {"sleep": 1_000_000, "fail": 100_000, "checksum": 100_000, "ffprobe": 500_000}[typ]
            if want is not None and cost != want:
                self.bad("money", [jid], f"{typ} complete cost {cost}, the price is {want}")
        out = final.get("output") or {}
        data = out.get("data") or {}
        if typ in ("fake", "fakeq") and data.get("echo") != sp["params"].get("echo"):
            self.bad("output", [jid], f"output.data {data} does not echo {sp['params'].get('echo')}")
        if typ == "checksum":
            got = data.get("checksums") or {}
            for name, sha in job.expect_sums.items():
                if got.get(name) != sha:
                    self.bad("output", [jid], f"checksum of input {name}: {got.get(name)}, want {sha}")

    # ---- whole-run checks ---------------------------------------------------------------------

    def check_orgs(self):
        for org in self.run.orgs:
            finals = self.run.finals[org.name]
            keys = collections.defaultdict(list)
            for jid, d in finals.items():
                if d.get("idempotencyKey"):
                    keys[d["idempotencyKey"]].append(jid)
            for k, ids in keys.items():
                if len(ids) > 1:
                    self.bad("idempotency", ids, f"{len(ids)} jobs with idempotency key {k}")
            phantoms = [jid for jid in finals if jid not in org.jobs and
                        jid not in org.submits["replay_created"]]   # those are reported already
            keyless = [jid for jid in phantoms if not finals[jid].get("idempotencyKey")]
            for jid in phantoms:
                k = finals[jid].get("idempotencyKey")
                if k and k not in org.submits["unknown_keyed"]:
                    why = "never sent" if k not in org.submits["keys_sent"] else "only refused or never answered 2xx"
                    self.bad("phantom", [jid], f"a job with key {k} that the client had no 2xx for ({why})")
                self.check_chain(jid, finals[jid], None)
                if finals[jid]["status"] not in TERMINAL:
                    self.bad("unfinished", [jid], f"unacknowledged job still {finals[jid]['status']}")
            if len(keyless) > org.submits["unknown_keyless"]:
                self.bad("phantom", keyless, f"{len(keyless)} keyless jobs nobody has a 2xx for, but only "
                         f"{org.submits['unknown_keyless']} keyless submits had an unknown outcome")
            self.summary[f"org {org.name}"] = (f"plan {org.plan}: {len(org.jobs)} acked, {len(phantoms)} "
                                               f"unacked-but-created, submits {dict(org.submits['rejected'])} "
                                               f"refused, {org.submits['unknown_keyless']} keyless unknown, "
                                               f"{len(org.submits['unknown_keyed'])} keyed unknown")
            self.check_money(org, finals)

    def check_dlq(self):
        """The dead-letter queue holds exactly the jobs that failed DISPATCH_EXHAUSTED."""
        if self.run.dlq is None:
            return
        want = {jid for org in self.run.orgs for jid, d in self.run.finals[org.name].items()
                if d["status"] == "failed" and (d.get("error") or {}).get("code") == "DISPATCH_EXHAUSTED"}
        got = set(self.run.dlq)
        for jid in sorted(want - got):
            self.bad("dlq", [jid], "failed DISPATCH_EXHAUSTED but not in the dead-letter queue")
        for jid in sorted(got - want):
            self.bad("dlq", [jid], f"in the dead-letter queue, but the job is {self.run.dlq[jid]['status']} "
                     f"{(self.run.dlq[jid].get('error') or {}).get('code')}")
        self.summary["dlq"] = f"{len(got)} jobs in the dead-letter queue, {len(want)} expected"

    def check_money(self, org, finals):
        bal = self.run.balances[org.name]
        spent = sum((d.get("cost") or {}).get("amount") or 0 for d in finals.values()
                    if d["status"] == "complete" and not d.get("test"))
        base = org.credits_ok - spent
        options = {base}
        for amt in org.credits_unknown:
            options |= {o + amt for o in options}
        if bal["held"] != 0:
            self.bad("money", [], f"org {org.name}: {bal['held']} still held with every job finished")
        if bal["balance"] not in options:
            self.bad("money", [], f"org {org.name}: balance {bal['balance']}, but credits {org.credits_ok} "
                     f"(+ unknown {org.credits_unknown}) − captured {spent} = {sorted(options)}")

    def check_webhooks(self):
        n_keys = n_dup = 0
        for rec in self.run.receivers.values():
            recs = rec.snapshot()
            if (rec.endpoint is None and rec.name != "cb") or not self.run.has_webhooks:
                continue
            by_key = collections.defaultdict(list)
            for r in recs:
                if r.get("bad_json"):
                    self.bad("webhook", [], f"{rec.name}: a body that is not JSON")
                    continue
                if r["path"] == "/hook":
                    if r["sig_ok"] is False:
                        self.bad("webhook", [r.get("job")], f"{rec.name}: a bad X-Rendobar-Signature")
                    if rec.org and r.get("org") != rec.org.id:
                        self.bad("webhook", [r.get("job")], f"{rec.name}: org {r.get('org')} at {rec.org.name}'s endpoint")
                if r["delivery"] != r.get("body_delivery"):
                    self.bad("webhook", [r.get("job")], f"{rec.name}: X-Rendobar-Delivery {r['delivery']} "
                             f"≠ body deliveryId {r.get('body_delivery')}")
                if r.get("event") == "balance.low":
                    continue
                by_key[(r["path"], r.get("job"), r.get("event"), r.get("job_attempt"))].append(r)
            expected = self.expected_hooks(rec) if self.run.has_realtime else None
            for key, rs in by_key.items():
                want_status = HOOK_STATUS.get(key[2])
                if any(r.get("status") != want_status for r in rs):
                    self.bad("webhook", [key[1]], f"{rec.name}: {key[2]} with data.status "
                             f"{sorted(set(str(r.get('status')) for r in rs))}")
                ids = {r["delivery"] for r in rs}
                if len(ids) > 1:
                    n_dup += 1
                    self.bad("webhook", [key[1]], f"{rec.name}: {key[2]} (attempt {key[3]}) came with "
                             f"{len(ids)} delivery ids {sorted(ids)}")
                # (no check on the order of X-Rendobar-Attempt: the receiver's
                # threads can handle a late attempt before an early one)
                if expected is not None and key not in expected:
                    self.bad("webhook", [key[1]], f"{rec.name}: {key[2]} for attempt {key[3]} at {key[0]}, "
                             f"which no event in the log explains")
            for key in expected or ():
                n_keys += 1
                if not any(200 <= r["answered"] < 300 for r in by_key.get(key, [])):
                    got = [(r["delivery"], r["attempt"], r["answered"]) for r in by_key.get(key, [])]
                    self.bad("webhook", [key[1]], f"{rec.name}: {key[2]} (attempt {key[3]}) was never "
                             f"delivered with a 2xx; received {got}")
        self.summary["webhooks"] = f"{n_keys} (endpoint, event) pairs expected and checked, {n_dup} with several ids"

    def expected_hooks(self, rec):
        """{(path, job, event, attempt)} the log says rec must get."""
        out = set()
        if rec.name == "cb":
            for org in self.run.orgs:
                for jid, job in org.jobs.items():
                    if not job.spec["callback"]:
                        continue
                    path = f"/cb/{org.name}-{job.spec['i']}"
                    for e in self.chain.get(jid, []):
                        if e[1] == "job.status" and e[3] in TERM_EVENT:
                            out.add((path, jid, TERM_EVENT[e[3]], e[5]))
            return out
        events = set(rec.events)
        for jid, evs in self.chain.items():
            if self.job_org.get(jid) != rec.org.name:
                continue
            for e in evs:
                names = ["job.created"] if e[1] == "job.created" else \
                    webhook_events(e[4], e[3]) if e[1] == "job.status" else []
                for n in names:
                    if n in events:
                        out.add(("/hook", jid, n, e[5]))
        return out

    def check_client_hooks(self):
        """From the client's own records only: the final terminal state, and
        every failure it retried, reached each subscribed endpoint."""
        for org in self.run.orgs:
            for rname, _, events in org.endpoints:
                rec = self.run.receivers[rname]
                ok = {(r.get("job"), r.get("event"), r.get("job_attempt")) for r in rec.snapshot()
                      if r["path"] == "/hook" and 200 <= r["answered"] < 300}
                for jid, job in org.jobs.items():
                    f = self.run.finals[org.name].get(jid)
                    want = []
                    if f and f["status"] in TERM_EVENT:
                        want.append((TERM_EVENT[f["status"]], f.get("attempt")))
                    want += [("job.failed", a) for a in job.failed_retried]
                    for ev, att in want:
                        if ev in events and (jid, ev, att) not in ok:
                            self.bad("webhook", [jid], f"{rname}: the client saw {ev} at attempt {att}; "
                                     f"the endpoint never got it with a 2xx")

    def check_realtime(self):
        n_sess = n_resumed = n_events = 0
        for org in self.run.orgs:
            log = self.L[org.name]
            seqs = [e[0] for e in log]
            by_seq = {e[0]: e for e in log}
            end = seqs[-1] if seqs else 0
            for c in org.rt:
                if not c.sessions:
                    self.bad("realtime", [], f"{c.cname}: never connected ({c.refusals} refusals, last "
                             f"error {c.last_error})")
                got_all = []
                for s in c.sessions:
                    n_sess += 1
                    evs = s["events"]
                    n_events += len(evs)
                    got = [e[0] for e in evs]
                    for e in evs:
                        if e[0] not in by_seq:
                            self.bad("realtime", [e[2]], f"{c.cname}: got #{e[0]} {e[1]} {e[2]}, not an event "
                                     f"of org {org.name}'s log")
                        elif tuple(e[:6]) != tuple(by_seq[e[0]][:6]):
                            self.bad("realtime", [e[2]], f"{c.cname}: #{e[0]} differs from the log: {e[:6]} "
                                     f"vs {by_seq[e[0]][:6]}")
                    if any(b <= a for a, b in zip(got, got[1:])):
                        self.bad("realtime", [], f"{c.cname}: a session's ids are not increasing: {got[:50]}")
                    if s["resume"] is not None:
                        n_resumed += 1
                        lo = s["resume"]
                        hi = got[-1] if got else None
                        if hi is not None:
                            want = [q for q in seqs if lo < q <= hi]
                            if got != want:
                                miss = sorted(set(want) - set(got))[:20]
                                extra = sorted(set(got) - set(want))[:20]
                                self.bad("realtime", [by_seq[m][2] for m in miss if m in by_seq],
                                         f"{c.cname} ({s['kind']}, resumed by {s['via']} after #{lo}): "
                                         f"missing {miss}, extra {extra}")
                    elif len(got) > 1:
                        want = [q for q in seqs if got[0] <= q <= got[-1]]
                        if got != want:
                            miss = sorted(set(want) - set(got))[:20]
                            self.bad("realtime", [by_seq[m][2] for m in miss if m in by_seq],
                                     f"{c.cname} ({s['kind']}, fresh): missing {miss}")
                    got_all += got
                if got_all and got_all[-1] != end:
                    self.bad("realtime", [], f"{c.cname}: ended at #{got_all[-1]}, the log at #{end}: "
                             f"never caught up")
                if len(got_all) != len(set(got_all)):
                    dup = [q for q, n in collections.Counter(got_all).items() if n > 1][:20]
                    self.bad("realtime", [], f"{c.cname}: duplicates across resumes: {dup}")
        self.summary["realtime"] = (f"{n_sess} sessions ({n_resumed} resumed), {n_events} events received "
                                    f"and compared with the log; {self.watched} job sockets")
        for rname, did, st, before, after in getattr(self.run, "redelivered", []):
            if st not in (200, 202) or after is None or after <= before:
                self.bad("webhook", [], f"{rname}: redeliver of {did} → {st}; attempts seen before "
                         f"{before}, after {after}")

    def check_provider(self):
        oks = collections.Counter()
        if not self.run.has_realtime:
            return
        for r in self.run.provider_log:
            if r["k"] != "report" or not isinstance(r.get("answer"), dict) or not r["answer"].get("ok"):
                continue
            jid, ev, att = r["job"], r["event"], r["attempt"]
            path = [e for e in self.chain.get(jid, []) if e[1] == "job.status"]
            if not path and jid in self.run.jobs:
                continue  # reported in check_chain
            if ev in ("complete", "failed"):
                oks[(jid, att)] += 1
                want = "complete" if ev == "complete" else "failed"
                if not any(e[3] == want and e[5] == att for e in path):
                    self.bad("provider", [jid], f"the reporter answered ok to '{ev}' for attempt {att}, "
                             f"but the log has no {want} at that attempt")
            elif ev == "running":
                if not any(e[3] == "running" and e[5] == att for e in path):
                    self.bad("provider", [jid], f"'running' for attempt {att} answered ok, no running event")
        for (jid, att), n in oks.items():
            if n > 1:
                self.bad("provider", [jid], f"{n} terminal reports for attempt {att} answered ok (applied twice?)")
        self.summary["provider"] = (f"{sum(1 for r in self.run.provider_log if r['k'] == 'dispatch')} dispatches, "
                                    f"{sum(1 for r in self.run.provider_log if r['k'] == 'report')} reports, "
                                    f"{sum(1 for r in self.run.provider_log if r['k'] == 'cancel')} cancels")

    def check_http(self):
        full = sum(1 for f in self.run.clients.fivexx if f[3] == 507 and f[1] == "full")
        for t, phase, what, st, code, msg in self.run.clients.fivexx:
            if st == 507 and phase == "full":
                if code != "STORAGE_FULL":
                    self.bad("http", [], f"507 with code {code} at {t:.1f}s ({what})")
                continue
            if st == 503:
                continue
            self.bad("http", [], f"{what} → {st} {code} ({msg}) at {t:.1f}s in phase {phase}")
        phases = sum(1 for f in self.run.faults_done if f["kind"] == "storage_full")
        self.summary["storage full"] = f"{phases} phases, {full} answers 507 STORAGE_FULL"
        if phases and not full:
            self.notes.append("the map was made tiny but no 507 was seen (it did not fill in time)")
        for a in self.run.clients.anomalies:
            self.bad(a["kind"], a["jobs"], a["detail"])

    def check_process(self):
        for what, rc, out in self.run.store_checks:
            if rc != 0:
                self.bad("store", [], f"jobring check {what}: rc {rc}: {out.strip()[-800:]}")
        self.summary["jobring check"] = f"{len(self.run.store_checks)} runs"
        if self.run.exit_rc != 0:
            self.bad("exit", [], f"SIGTERM of the server → exit {self.run.exit_rc}")
        for where, line in self.run.sanitizer:
            self.bad("sanitizer", [], f"{where}: {line}")
        for f in self.run.faults_done:
            if not f.get("ok", True):
                self.bad("fault", [], f"fault {f['kind']} at {f['t']:.1f}s: {f.get('error')}")
        for what in self.run.res_violations:
            self.bad("resources", [], what)
        for what in self.run.log_floods:
            self.bad("log-flood", [], what)

    def run_all(self):
        self.chains()
        for org in self.run.orgs:
            finals = self.run.finals[org.name]
            for jid, job in org.jobs.items():
                self.check_job(job, finals.get(jid))
        self.check_orgs()
        self.check_dlq()
        self.check_webhooks()
        self.check_client_hooks()
        self.check_realtime()
        self.check_provider()
        self.check_http()
        self.check_process()
        return self.violations


def history(run, checker, jid):
    """Every record about one job, for a failure report."""
    lines = []
    job = run.jobs.get(jid)
    if job:
        sp = job.spec
        lines.append(f"  spec: {sp['org']}#{sp['i']} {sp['kind']} type={sp['type']} params={sp['params']} "
                     f"key={sp['key']} test={sp['test']} cancel_after={sp['cancel_after']} budget={sp['retry_budget']}")
        lines.append(f"  acks: {job.acked}")
        lines.append(f"  polls: {[(round(t, 2), s, a, r) for t, s, a, r in job.polls]}")
        lines.append(f"  cancel={job.cancel} retries ok={job.retries_ok} unknown={job.retries_unknown} "
                     f"conflicts={job.retry_conflicts} failed_retried={job.failed_retried} replays={job.replays}")
    for org in run.orgs:
        f = run.finals.get(org.name, {}).get(jid)
        if f:
            lines.append(f"  final: status={f['status']} attempt={f.get('attempt')} retryCount={f.get('retryCount')} "
                         f"cost={f.get('cost')} error={f.get('error')} output={str(f.get('output'))[:200]}")
    lines.append("  log: " + " ".join(f"#{e[0]}:{e[4] or ''}→{e[3]}@{e[5]}{'' if not e[6] else e[6]}"
                                      for e in checker.chain.get(jid, []) if e[1] != "job.progress"))
    prov = [r for r in run.provider_log if r.get("job") == jid]
    if prov:
        lines.append("  provider: " + " ".join(
            f"{r['k']}:{r.get('event') or r.get('mode') or ''}@{r.get('attempt')}"
            f"{'=' + str(r.get('status')) + ('ok' if isinstance(r.get('answer'), dict) and r['answer'].get('ok') else 'ign' if isinstance(r.get('answer'), dict) and r['answer'].get('ignored') else '') if r['k'] == 'report' else ''}"
            for r in prov))
    hooks = []
    for rec in run.receivers.values():
        for r in rec.snapshot():
            if r.get("job") == jid:
                hooks.append(f"{rec.name}:{r.get('event')}@{r.get('job_attempt')} {r['delivery']} "
                             f"try{r['attempt']}→{r['answered']} at {r['t']:.2f}s")
    if hooks:
        lines.append("  webhooks: " + "; ".join(hooks))
    return "\n".join(lines)


SANITIZER = re.compile(r"(AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer)")
