"""Timer wheel end to end: execution timeouts, the stuck sweep, a late report
after a timeout, and deadlines surviving kill -9 of the timer actor and of
the whole server (each fires exactly once, none early)."""
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from fakeprov import FakeProvider, post
from jr import Server, check, wait_for

prov = FakeProvider()
CFG = {
    "providers": [{"id": "fake", "url": prov.url, "secret": prov.secret, "types": ["fake", "quick"],
                   "capacity": 2000}],
    "jobTypes": {
        "fake": {"schema": {"type": "object"}, "maxExecutionSeconds": 300,
                 "price": {"base": 1000000, "perSecond": 0, "estimateSeconds": 0}},
        "quick": {"schema": {"type": "object"}, "maxExecutionSeconds": 2,
                  "price": {"base": 1000000, "perSecond": 0, "estimateSeconds": 0}},
    },
    "sweep": {"intervalSeconds": 1, "stuckSeconds": 2},
    "plans": {"big": {"concurrentJobs": 5000, "requestsPerMinute": 10000000, "queueLimit": 100000,
                      "maxJobTimeout": 900}},
}


def job(s, key, jid):
    return s.request("GET", f"/jobs/{jid}", token=key)[1]["data"]


def submit(s, key, typ, params):
    st, j = s.request("POST", "/jobs", {"type": typ, "params": params}, token=key)
    assert st == 201, (st, j)
    return j["data"]["id"]


def cancels_for(jid):
    with prov.lock:
        return [c for c in prov.cancels if jid in c[1]]


with Server(CFG) as s:
    org, key = s.make_org(plan="big", credits=10_000_000_000)
    bal0 = s.request("GET", "/billing/balance", token=key)[1]["data"]

    # 1. past the type's max execution time → PROVIDER_TIMEOUT, refund, provider cancel
    a = submit(s, key, "quick", {"mode": "ok", "delay": 4})
    j = wait_for(lambda: (lambda x: x if x["status"] == "failed" else None)(job(s, key, a)), timeout=10,
                 what="the timeout")
    took = (j["completedAt"] - j["dispatchedAt"]) / 1000
    check(j["error"]["code"] == "PROVIDER_TIMEOUT" and 2.0 <= took < 4.0,
          f"past maxExecutionSeconds → failed PROVIDER_TIMEOUT after {took:.2f}s (limit 2s, never early)")
    wait_for(lambda: cancels_for(a), what="the provider cancel")
    check(True, "the provider received the cancel")
    # 2. the late complete is ignored
    wait_for(lambda: any(r[1] == "complete" for r in prov.reports_of(a)), timeout=10, what="the late complete")
    late = [r for r in prov.reports_of(a) if r[1] == "complete"][0]
    bal = s.request("GET", "/billing/balance", token=key)[1]["data"]
    check(late[4] == {"ignored": True} and job(s, key, a)["status"] == "failed", "a late complete → ignored")
    check(bal["balance"] == bal0["balance"] and bal["held"] == 0, "balance back where it was: no charge, no double refund")

    # 3. a provider that accepts and never reports → failed by the sweep
    b = submit(s, key, "fake", {"mode": "never"})
    t0 = time.time()
    j = wait_for(lambda: (lambda x: x if x["status"] == "failed" else None)(job(s, key, b)), timeout=15,
                 what="the sweep")
    waited = time.time() - t0
    check(j["error"]["code"] == "PROVIDER_TIMEOUT" and waited <= 1 + 2 + 2,
          f"no report → failed by the sweep in {waited:.1f}s (interval 1s + stuck 2s)")

    # 4. kill -9 the timer actor with 1,000 deadlines pending
    ids = []
    with ThreadPoolExecutor(8) as ex:
        ids = list(ex.map(lambda i: submit(s, key, "quick", {"mode": "ok", "delay": 30}), range(1000)))
    wait_for(lambda: len(prov.dispatches) >= 1000 + 2, timeout=30, what="1,000 dispatches")
    os.kill(s.actor_pids()["timer"], signal.SIGKILL)
    wait_for(lambda: all(job(s, key, i)["status"] == "failed" for i in ids[::50]), timeout=60,
             what="the deadlines after the restart")
    # jobs dispatched last have the latest deadlines: wait for every one
    js = wait_for(lambda: (lambda js: js if all(x["status"] == "failed" for x in js) else None)(
        [job(s, key, i) for i in ids]), timeout=60, what="all 1,000 deadlines")
    early = [x["id"] for x in js if x["completedAt"] - x["dispatchedAt"] < 2000]
    codes = {x["error"]["code"] for x in js}
    check(all(x["status"] == "failed" for x in js) and codes == {"PROVIDER_TIMEOUT"} and not early,
          "kill -9 of the timer with 1,000 deadlines pending: all fired after the restart, none early")
    wait_for(lambda: all(cancels_for(i) for i in ids[::100]), what="cancels")
    time.sleep(1)
    multi = [i for i in ids if len(cancels_for(i)) > 1]
    check(not multi, "each fired exactly once (one provider cancel per job)")
    bal = s.request("GET", "/billing/balance", token=key)[1]["data"]
    check(bal["held"] == 0 and bal["balance"] == bal0["balance"], "every hold released, nothing charged")

    # 5. kill -9 the whole server with deadlines pending, restart on the same data dir
    ids2 = []
    with ThreadPoolExecutor(8) as ex:
        ids2 = list(ex.map(lambda i: submit(s, key, "quick", {"mode": "ok", "delay": 30}), range(200)))
    wait_for(lambda: all(job(s, key, i)["status"] in ("dispatched", "running") for i in ids2[::20]),
             what="dispatched")
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait()
    time.sleep(0.5)
    s.start()
    wait_for(lambda: all(job(s, key, i)["status"] == "failed" for i in ids2), timeout=30,
             what="the deadlines after a whole-server restart")
    js = [job(s, key, i) for i in ids2]
    check(all(x["error"]["code"] == "PROVIDER_TIMEOUT" and x["completedAt"] - x["dispatchedAt"] >= 2000 for x in js),
          "kill -9 of the whole server: every deadline fired after the restart, none early")
    s.stop()
    rc, out = s.check_store()
    check(rc == 0, "jobring check passes (one terminal event per job): " + out.strip())
prov.close()
print("timer: all checks passed")
