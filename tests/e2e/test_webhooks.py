"""Webhooks: endpoints API (both spellings), deliveries to a real receiver with
both signature schemes verified, the right org only, retries with the same
delivery id and a counting X-Rendobar-Attempt, auto-disable, 410, secret
rotation, per-job callbacks, kill -9 of the notifier mid-delivery, the
deliveries list and redeliver, and SSRF refusal with allowPrivateTargets off.

`python3 tests/e2e/test_webhooks.py build/jobring --bench N` instead measures
deliveries per second to a loopback receiver (prints numbers, checks nothing
about speed)."""
import base64
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakeprov import FakeProvider
from jr import Server, check, wait_for


# ---- a webhook receiver -------------------------------------------------------

class Receiver:
    """Records every request per path; a path's plan says how to answer:
    {"fail": N, "status": S} fails the first N with S, {"always": S},
    {"hang": secs} holds the first request that long before answering."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = {}     # path -> [(time, headers{lower: value}, body bytes)]
        self.plans = {}
        self.seen = {}
        rcv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # head and body are two writes

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                path = self.path
                with rcv.lock:
                    rcv.got.setdefault(path, []).append((time.time(), hdrs, body))
                    nth = rcv.seen[path] = rcv.seen.get(path, 0) + 1
                    plan = rcv.plans.get(path, {})
                st = 200
                if "always" in plan:
                    st = plan["always"]
                elif nth <= plan.get("fail", 0):
                    st = plan.get("status", 500)
                if nth == 1 and plan.get("hang"):
                    time.sleep(plan["hang"])
                data = b'{"ok":true}'
                try:
                    self.send_response(st)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        class S(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # connections cut when a server is killed are expected

        self.httpd = S(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def reqs(self, path):
        with self.lock:
            return list(self.got.get(path, []))

    def events(self, path):
        return [json.loads(b)["event"] for _, _, b in self.reqs(path)]

    def close(self):
        self.httpd.shutdown()


def verify_rendobar(secret, hdrs, body, header="x-rendobar-signature"):
    ts = hdrs.get("x-rendobar-timestamp", "")
    sig = hdrs.get(header, "")
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(sig, want) and abs(time.time() - int(ts)) <= 300


def verify_std(secret, hdrs, body):
    """Standard Webhooks: any v1 entry of webhook-signature matches."""
    key = base64.b64decode(secret[len("whsec_"):])
    msg = f"{hdrs['webhook-id']}.{hdrs['webhook-timestamp']}.".encode() + body
    want = base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    sigs = [s.split(",", 1)[1] for s in hdrs.get("webhook-signature", "").split() if s.startswith("v1,")]
    return any(hmac.compare_digest(s, want) for s in sigs) and \
        abs(time.time() - int(hdrs["webhook-timestamp"])) <= 300


def verified(secret, hdrs, body):
    return verify_rendobar(secret, hdrs, body) and verify_std(secret, hdrs, body)


# ---- the server and its jobs ---------------------------------------------------

prov = FakeProvider()
CFG = {
    "providers": [{"id": "fake", "url": prov.url, "secret": prov.secret, "types": ["fake"],
                   "capacity": 64}],
    "jobTypes": {"fake": {"schema": {"type": "object"}, "maxExecutionSeconds": 60,
                          "price": {"base": 1000000, "perSecond": 0, "estimateSeconds": 0}}},
    "plans": {"big": {"concurrentJobs": 1000, "requestsPerMinute": 10000000, "queueLimit": 100000,
                      "maxJobTimeout": 900}},
    "webhooks": {"backoffMs": 200, "backoffMaxMs": 800, "maxAttempts": 3,
                 "disableAfterFailures": 2, "timeoutMs": 4000},
}
ALL = ["job.created", "job.started", "job.completed", "job.failed", "job.cancelled"]


def submit(s, key, params=None, **kw):
    st, j = s.request("POST", "/jobs", dict({"type": "fake", "params": params or {}}, **kw), token=key)
    assert st == 201, (st, j)
    return j["data"]["id"]


def job_status(s, key, jid):
    return s.request("GET", f"/jobs/{jid}", token=key)[1]["data"]["status"]


def create_ep(s, key, url, events=None, name="hook", path="/webhooks/endpoints"):
    body = {"name": name, "url": url}
    if events is not None:
        body["subscribedEvents"] = events
    return s.request("POST", path, body, token=key)


def ep_of(s, key, eid):
    return s.request("GET", f"/webhooks/endpoints/{eid}", token=key)[1]["data"]


def bench(n, url=None):
    """The notifier is stopped (SIGSTOP) while n jobs are submitted, so their
    job.created events pile up; then it is continued and we time how long it
    takes to turn the backlog into deliveries and deliver them all. With url,
    deliveries go to that receiver instead of this script's and completion is
    read from the deliveries API."""
    from concurrent.futures import ThreadPoolExecutor
    rcv = Receiver()
    with Server(dict(CFG, webhooks={"backoffMs": 200, "timeoutMs": 10000})) as s:
        org, key = s.make_org(plan="big", credits=0, test=True)
        st, e = create_ep(s, key, url or rcv.url("/bench"), ["job.created"])
        assert st == 201, e
        eid = e["data"]["id"]

        def delivered():
            if not url:
                return len(rcv.reqs("/bench"))
            st, r = s.request("GET", f"/webhooks/endpoints/{eid}/deliveries?status=delivered&limit=1",
                              token=key)
            return r["meta"]["total"]

        pid = s.actor_pids()["notifier"]
        os.kill(pid, signal.SIGSTOP)
        t0 = time.time()
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda _: submit(s, key, {"mode": "never"}), range(n)))
        t1 = time.time()
        os.kill(pid, signal.SIGCONT)
        wait_for(lambda: delivered() >= n, timeout=600, step=0.25 if url else 0.02, what="deliveries")
        t2 = time.time()
        print(f"submitted {n} jobs in {t1 - t0:.2f}s with the notifier stopped; after SIGCONT all "
              f"{n} job.created deliveries were delivered in {t2 - t1:.2f}s = {n / (t2 - t1):.0f} "
              f"deliveries/s to {url or 'the Python receiver'}", flush=True)
    rcv.close()


if len(sys.argv) > 3 and sys.argv[2] == "--bench":
    bench(int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
    raise SystemExit(0)

rcv = Receiver()
with Server(CFG) as s:
    org_a, key_a = s.make_org(plan="big", name="a")
    org_b, key_b = s.make_org(plan="big", name="b")

    # ---- the endpoints API ------------------------------------------------------
    st, r = create_ep(s, key_a, rcv.url("/a"), ["job.created", "job.completed", "job.failed",
                                                "job.cancelled"], name="Orders")
    check(st == 201 and r["data"]["id"].startswith("we_") and
          r["data"]["signingSecret"].startswith("whsec_") and r["data"]["active"] is True,
          "POST /webhooks/endpoints → 201 with the signing secret")
    ea, sec_a = r["data"]["id"], r["data"]["signingSecret"]
    st, r = s.request("GET", "/webhooks/endpoints", token=key_a)
    check(st == 200 and [e["id"] for e in r["data"]] == [ea] and "signingSecret" not in r["data"][0],
          "list: the org's endpoint, without its secret")
    st, r = s.request("GET", f"/webhook-endpoints/{ea}", token=key_a)
    check(st == 200 and r["data"]["url"] == rcv.url("/a") and r["data"]["name"] == "Orders"
          and "signingSecret" not in r["data"], "GET /webhook-endpoints/{id} (the older spelling)")
    st, r = create_ep(s, key_b, rcv.url("/b"), path="/webhook-endpoints")
    check(st == 201 and r["data"]["subscribedEvents"] == ["job.completed", "job.failed", "job.cancelled"],
          "create via /webhook-endpoints; default events completed, failed, cancelled")
    eb, sec_b = r["data"]["id"], r["data"]["signingSecret"]
    st, r = s.request("PATCH", f"/webhooks/endpoints/{eb}", {"subscribedEvents": ALL}, token=key_b)
    check(st == 200 and r["data"]["subscribedEvents"] == ALL and "signingSecret" not in r["data"],
          "PATCH subscribedEvents")
    for bad, what in [({"name": "x"}, "missing url"),
                      ({"name": "x", "url": rcv.url("/x"), "subscribedEvents": ["job.exploded"]}, "unknown event"),
                      ({"name": "x", "url": rcv.url("/x"), "subscribedEvents": []}, "empty events"),
                      ({"name": "y" * 51, "url": rcv.url("/x")}, "a 51-character name"),
                      ({"name": "x", "url": rcv.url("/x"), "events": ["job.failed"]}, "an unknown field"),
                      ({"name": "x", "url": "ftp://127.0.0.1/x"}, "an ftp URL")]:
        st, r = s.request("POST", "/webhooks/endpoints", bad, token=key_a)
        check(st == 400 and r["error"]["code"] == "VALIDATION_ERROR" and r["error"]["details"],
              f"create with {what} → 400 VALIDATION_ERROR with details")
    for m, body in [("GET", None), ("PATCH", {"active": False}), ("DELETE", None)]:
        st, r = s.request(m, f"/webhooks/endpoints/{ea}", body, token=key_b)
        check(st == 404 and r["error"]["code"] == "NOT_FOUND", f"{m} of another org's endpoint → 404")
    st, r = s.request("GET", f"/webhooks/endpoints/{ea}/deliveries", token=key_b)
    check(st == 404, "another org's delivery list → 404")
    org_c, key_c = s.make_org(plan="big", name="c")
    ids = [create_ep(s, key_c, rcv.url(f"/c{i}"), name=f"c{i}")[1]["data"]["id"] for i in range(10)]
    st, r = create_ep(s, key_c, rcv.url("/c10"))
    check(len(set(ids)) == 10 and st == 409 and r["error"]["code"] == "CONFLICT", "an 11th endpoint → 409 CONFLICT")
    st, r = s.request("DELETE", f"/webhooks/endpoints/{ids[0]}", token=key_c)
    check(st == 200 and r["data"]["deleted"] is True, "DELETE → 200")
    st, _ = s.request("GET", f"/webhooks/endpoints/{ids[0]}", token=key_c)
    check(st == 404 and create_ep(s, key_c, rcv.url("/c10"))[0] == 201, "…it is gone and frees a slot")

    # ---- deliveries for the right org, both signatures ------------------------------
    j_ok = submit(s, key_a, {"mode": "ok"})
    j_fail = submit(s, key_a, {"mode": "fail", "code": "INPUT_FETCH_FAILED"})
    j_cancel = submit(s, key_a, {"mode": "never"})
    wait_for(lambda: job_status(s, key_a, j_cancel) == "dispatched", what="dispatched")
    st, _ = s.request("POST", f"/jobs/{j_cancel}/cancel", token=key_a)
    assert st == 200
    wait_for(lambda: len(rcv.reqs("/a")) >= 6, timeout=20, what="6 webhooks for org a")
    time.sleep(0.5)
    got = rcv.reqs("/a")
    evs = sorted(json.loads(b)["event"] for _, _, b in got)
    check(evs == sorted(["job.created"] * 3 + ["job.completed", "job.failed", "job.cancelled"]),
          f"org a got created ×3, completed, failed, cancelled: {evs}")
    check(all(verified(sec_a, h, b) for _, h, b in got), "every delivery verifies with both schemes")
    check(not any(verified(sec_b, h, b) for _, h, b in got), "…and not with another endpoint's secret")
    bodies = [json.loads(b) for _, _, b in got]
    check(all(x["version"] == "1" and x["orgId"] == org_a and x["jobId"] == x["data"]["jobId"]
              and x["data"]["jobType"] == "fake" and isinstance(x["timestamp"], int) for x in bodies),
          "envelope: version, orgId, top-level jobId, data.jobId, data.jobType, timestamp (ms)")
    check(all(h["x-rendobar-event"] == json.loads(b)["event"] and
              h["x-rendobar-delivery"] == h["webhook-id"] == json.loads(b)["deliveryId"] and
              h["x-rendobar-delivery"].startswith("del_") and h["x-rendobar-attempt"] == "1" and
              h["content-type"] == "application/json" for _, h, b in got),
          "headers: event, delivery id = webhook-id = deliveryId, attempt 1")
    failed = [x for x in bodies if x["event"] == "job.failed"][0]
    done = [x for x in bodies if x["event"] == "job.completed"][0]
    check(failed["jobId"] == j_fail and failed["data"]["status"] == "failed" and
          failed["data"]["error"]["code"] == "INPUT_FETCH_FAILED" and failed["data"]["error"]["message"],
          "job.failed carries the error code and message")
    check(done["jobId"] == j_ok and done["data"]["status"] == "complete" and
          done["data"]["cost"]["amount"] == 1000000, "job.completed carries the cost")
    check(rcv.reqs("/b") == [], "org b's endpoint got nothing of org a's jobs")
    j_b = submit(s, key_b, {"mode": "ok"})
    wait_for(lambda: len(rcv.reqs("/b")) >= 3, timeout=20, what="org b's webhooks")
    time.sleep(0.3)
    check(sorted(rcv.events("/b")) == ["job.completed", "job.created", "job.started"] and
          all(json.loads(b)["orgId"] == org_b and verified(sec_b, h, b) for _, h, b in rcv.reqs("/b")),
          "org b got created, started, completed of its own job, signed with its secret")
    check(len(rcv.reqs("/a")) == 6, "…and org a nothing more")

    # ---- deliveries list and redeliver ------------------------------------------------------
    st, r = s.request("GET", f"/webhooks/endpoints/{ea}/deliveries", token=key_a)
    check(st == 200 and r["meta"]["total"] == 6 and len(r["data"]) == 6 and
          all(x["status"] == "delivered" and x["attempts"] == 1 and x["lastStatus"] == 200 and
              x["id"].startswith("del_") and x["createdAt"] for x in r["data"]) and
          r["data"][0]["createdAt"] >= r["data"][-1]["createdAt"],
          "GET …/{id}/deliveries: 6 delivered, newest first")
    st, r2 = s.request("GET", f"/webhooks/endpoints/{ea}/deliveries?limit=2&offset=1&status=delivered",
                       token=key_a)
    check(st == 200 and [x["id"] for x in r2["data"]] == [x["id"] for x in r["data"][1:3]], "limit, offset, status")
    did = r["data"][0]["id"]
    st, r = s.request("POST", f"/webhooks/endpoints/{ea}/deliveries/{did}/redeliver", token=key_a)
    check(st == 202 and r["data"]["status"] == "pending", "redeliver → 202, pending")
    wait_for(lambda: [h for _, h, _ in rcv.reqs("/a") if h["x-rendobar-delivery"] == did and
                      h["x-rendobar-attempt"] == "2"], what="the redelivery")
    st, r = s.request("POST", f"/webhooks/deliveries/{did}/redeliver", token=key_a)
    check(st == 202, "POST /webhooks/deliveries/{id}/redeliver → 202")
    wait_for(lambda: [h for _, h, _ in rcv.reqs("/a") if h["x-rendobar-delivery"] == did and
                      h["x-rendobar-attempt"] == "3"], what="the second redelivery")
    again = [(h, b) for _, h, b in rcv.reqs("/a") if h["x-rendobar-delivery"] == did]
    check(len(again) == 3 and len({b for _, b in again}) == 1 and all(verified(sec_a, h, b) for h, b in again),
          "redelivered with the same id and body, attempts 2 and 3")
    st, _ = s.request("POST", f"/webhooks/deliveries/{did}/redeliver", token=key_b)
    check(st == 404, "another org cannot redeliver it (404)")
    wait_for(lambda: s.request("GET", f"/webhooks/endpoints/{ea}/deliveries", token=key_a)[1]["data"][0]
             ["status"] == "delivered", what="redelivery recorded")

    # ---- retries: same id, attempts count up ------------------------------------------
    rcv.plans["/flaky"] = {"fail": 2, "status": 500}
    st, r = create_ep(s, key_a, rcv.url("/flaky"), ["job.created"])
    e_flaky, sec_flaky = r["data"]["id"], r["data"]["signingSecret"]
    submit(s, key_a, {"mode": "never"})
    wait_for(lambda: len(rcv.reqs("/flaky")) >= 3, timeout=20, what="3 attempts")
    got = rcv.reqs("/flaky")
    gaps = [got[i + 1][0] - got[i][0] for i in range(len(got) - 1)]
    check(len({h["x-rendobar-delivery"] for _, h, _ in got}) == 1 and
          [h["x-rendobar-attempt"] for _, h, _ in got] == ["1", "2", "3"] and
          len({b for _, _, b in got}) == 1 and all(verified(sec_flaky, h, b) for _, h, b in got),
          "500, 500, 200: one delivery id, attempts 1 2 3, the same body, each signed afresh")
    check(gaps[0] >= 0.19 and gaps[1] >= 0.39, f"backoff between attempts: {[round(g, 3) for g in gaps]}")
    # the receiver has answered; the notifier records the outcome on its next turn
    def delivered():
        st, r = s.request("GET", f"/webhooks/endpoints/{e_flaky}/deliveries", token=key_a)
        d = r["data"][0] if st == 200 and r["data"] else {}
        return d if d.get("status") == "delivered" else None
    try:
        d = wait_for(delivered, timeout=10, what="the outcome to be recorded")
    except AssertionError:
        d = {}
    check(d.get("status") == "delivered" and d.get("attempts") == 3 and d.get("lastStatus") == 200 and
          d.get("event") == "job.created" and d.get("deliveredAt") and d.get("nextAttemptAt") is None,
          "the delivery list: delivered after 3 attempts, lastStatus 200")

    # ---- auto-disable after disableAfterFailures (2) final failures; 410 --------------
    rcv.plans["/dead"] = {"always": 500}
    st, r = create_ep(s, key_a, rcv.url("/dead"), ["job.created"])
    e_dead = r["data"]["id"]
    submit(s, key_a, {"mode": "never"})
    submit(s, key_a, {"mode": "never"})
    wait_for(lambda: not ep_of(s, key_a, e_dead)["active"], timeout=30, what="auto-disable")
    ep = ep_of(s, key_a, e_dead)
    check(ep["disabledReason"] == "failures" and len(rcv.reqs("/dead")) == 6,
          "2 deliveries failed 3 times each → the endpoint is disabled (active:false)")
    st, r = s.request("GET", f"/webhooks/endpoints/{e_dead}/deliveries?status=failed", token=key_a)
    check(st == 200 and len(r["data"]) == 2 and all(x["attempts"] == 3 and x["lastStatus"] == 500
                                                    for x in r["data"]), "both deliveries are failed")
    submit(s, key_a, {"mode": "never"})
    time.sleep(1.0)
    check(len(rcv.reqs("/dead")) == 6, "a disabled endpoint gets no new deliveries")
    rcv.plans["/gone"] = {"always": 410}
    st, r = create_ep(s, key_a, rcv.url("/gone"), ["job.created"])
    e_gone = r["data"]["id"]
    submit(s, key_a, {"mode": "never"})
    wait_for(lambda: not ep_of(s, key_a, e_gone)["active"], timeout=20, what="410 disable")
    time.sleep(0.8)
    check(ep_of(s, key_a, e_gone)["disabledReason"] == "gone" and len(rcv.reqs("/gone")) == 1,
          "a 410 Gone disables the endpoint after one attempt")
    st, r = s.request("PATCH", f"/webhooks/endpoints/{e_gone}", {"active": True}, token=key_a)
    check(st == 200 and r["data"]["active"] and r["data"]["disabledReason"] is None, "PATCH active:true re-enables")
    for e in (e_dead, e_gone, e_flaky):
        s.request("DELETE", f"/webhooks/endpoints/{e}", token=key_a)

    # ---- secret rotation ------------------------------------------------------------------
    st, r = create_ep(s, key_b, rcv.url("/rot"), ["job.created"])
    e_rot, old = r["data"]["id"], r["data"]["signingSecret"]
    st, r = s.request("POST", f"/webhooks/endpoints/{e_rot}/rotate-secret", token=key_b)
    new = r["data"]["signingSecret"] if st == 200 else None
    check(st == 200 and new and new != old and r["data"]["previousSecretExpiresAt"] > time.time() * 1000 + 23 * 3600e3,
          "rotate-secret → a new secret, the old one valid for 24 h")
    submit(s, key_b, {"mode": "never"})
    wait_for(lambda: rcv.reqs("/rot"), what="the rotated delivery")
    _, h, b = rcv.reqs("/rot")[0]
    check(verify_rendobar(new, h, b) and verify_rendobar(old, h, b, "x-rendobar-signature-previous")
          and not verify_rendobar(old, h, b), "X-Rendobar-Signature uses the new secret, -Previous the old")
    check(verify_std(new, h, b) and verify_std(old, h, b) and len(h["webhook-signature"].split()) == 2,
          "webhook-signature carries both (v1,new v1,old)")

    # ---- per-job callbacks ----------------------------------------------------------------
    st, r = s.request("GET", "/webhooks/callback-secret", token=key_a)
    cbsec = r["data"]["signingSecret"]
    check(st == 200 and cbsec.startswith("whsec_") and
          s.request("GET", "/webhooks/callback-secret", token=key_a)[1]["data"]["signingSecret"] == cbsec,
          "GET /webhooks/callback-secret: the org's callback secret, stable")
    jc = submit(s, key_a, {"mode": "ok"}, callback={"url": rcv.url("/cb1"), "headers": {"X-Token": "t1"},
                                                    "verify": True})
    jn = submit(s, key_a, {"mode": "fail"}, callback={"url": rcv.url("/cb2")})
    wait_for(lambda: rcv.reqs("/cb1") and rcv.reqs("/cb2"), timeout=20, what="callbacks")
    time.sleep(0.5)
    (_, h1, b1), = rcv.reqs("/cb1")
    (_, h2, b2), = rcv.reqs("/cb2")
    x1, x2 = json.loads(b1), json.loads(b2)
    check(x1["event"] == "job.completed" and x1["jobId"] == jc and x1["data"]["jobId"] == jc and
          h1.get("x-token") == "t1" and verified(cbsec, h1, b1),
          "callback with verify: the envelope on the terminal status, custom header, both signatures")
    check(x2["event"] == "job.failed" and x2["jobId"] == jn and "x-rendobar-signature" not in h2 and
          "webhook-signature" not in h2 and h2["x-rendobar-delivery"] == x2["deliveryId"],
          "callback without verify: unsigned, one call on the terminal status")

    # ---- kill -9 of the notifier mid-delivery ---------------------------------------------------
    rcv.plans["/slow"] = {"hang": 6}
    st, r = create_ep(s, key_b, rcv.url("/slow"), ["job.created"])
    e_slow, sec_slow = r["data"]["id"], r["data"]["signingSecret"]
    submit(s, key_b, {"mode": "never"})
    wait_for(lambda: rcv.reqs("/slow"), what="the first attempt to arrive")
    pid = s.actor_pids()["notifier"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(rcv.reqs("/slow")) >= 2, timeout=30, what="the delivery after the restart")
    got = rcv.reqs("/slow")
    check(s.actor_pids()["notifier"] != pid and len({h["x-rendobar-delivery"] for _, h, _ in got}) == 1
          and all(verified(sec_slow, h, b) for _, h, b in got),
          "kill -9 mid-delivery: after the restart the same delivery id arrives again")
    check(got[-1][1]["x-rendobar-attempt"] == "1",
          "…as attempt 1 again: the lost attempt's outcome was never recorded (at-least-once)")
    time.sleep(1.0)
    st, r = s.request("GET", f"/webhooks/endpoints/{e_slow}/deliveries", token=key_b)
    check(st == 200 and len(r["data"]) == 1 and r["data"][0]["status"] == "delivered" and
          r["data"][0]["attempts"] == 1, "…and it is recorded as delivered once")

    rc, out = s.check_store()
    check(rc == 0, "jobring check passes")
    st = s.stop()
    check(st == 0, "SIGTERM drains and exits 0")
    log = s.logtext()
    check("runtime error" not in log and "Sanitizer" not in log, "no sanitizer report in the server log")

# ---- SSRF: allowPrivateTargets false -------------------------------------------------------------
with Server(dict(CFG, webhooks={"allowPrivateTargets": False})) as s:
    org, key = s.make_org(plan="big")
    for url in ["http://127.0.0.1:9/x", "https://127.0.0.1/x", "https://localhost/x", "https://10.0.0.5/",
                "https://[::1]/", "https://169.254.169.254/latest/meta-data", "https://db.internal/h",
                "https://printer.local/h", "https://0x7f000001/", "https://2130706433/"]:
        st, r = create_ep(s, key, url)
        check(st == 400 and r["error"]["code"] == "VALIDATION_ERROR" and r["error"]["details"][0]["path"] == ["url"],
              f"{url} refused: {r['error']['message'] if st == 400 else st}")
    st, r = create_ep(s, key, "https://hooks.example.com/in")
    check(st == 201, "a public https URL is accepted")
    s.stop()
    log = s.logtext()
    check("runtime error" not in log and "Sanitizer" not in log, "no sanitizer report in the server log")

rcv.close()
prov.close()
print("webhooks: all checks passed")
