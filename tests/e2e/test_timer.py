"""Timer wheel end to end: an execution timeout fails the job and the provider
is told to stop; a job that finished in time is left alone; the stuck-job
sweep fails a silent job and spares one that keeps reporting; kill -9 of the
timer actor with 1,000 deadlines pending: after the restart each fires
exactly once and none early, and `jobring check` passes."""
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fakeprov import FakeProvider
from jr import Server, check, wait_for

prov = FakeProvider()
PRICE = {"base": 1000000, "perSecond": 1000000, "estimateSeconds": 10}
HOLD = 1000000 + 1000000 * 10


def config(sweep):
    return {
        "providers": [{"id": "fake", "url": prov.url, "secret": prov.secret, "types": ["fake"],
                       "capacity": 5000}],
        "jobTypes": {"fake": {"schema": {"type": "object"}, "maxExecutionSeconds": 600,
                              "price": PRICE}},
        "dispatch": {"timeoutMs": 5000, "unhealthyAfter": 1000},
        "sweep": sweep,
        "plans": {"big": {"concurrentJobs": 100000, "requestsPerMinute": 100000000,
                          "queueLimit": 1000000, "maxJobTimeout": 900}},
    }


def job(s, key, jid):
    return s.request("GET", f"/jobs/{jid}", token=key)[1]["data"]


def submit(s, key, params):
    st, j = s.request("POST", "/jobs", {"type": "fake", "params": params}, token=key)
    assert st == 201, (st, j)
    return j["data"]["id"]


def until(s, key, jid, statuses, timeout=30):
    return wait_for(lambda: (lambda j: j if j["status"] in statuses else None)(job(s, key, jid)),
                    timeout=timeout, what=f"{jid} to reach {statuses}")


def cancels_of(jid):
    with prov.lock:
        return [p for _, p, _ in prov.cancels if p == f"/dispatch/{jid}/cancel"]


def balance(s, key):
    return s.request("GET", "/billing/balance", token=key)[1]["data"]


# ---- timeouts and the sweep: a sweep every second, stuck after 5 s -----------------
with Server(config({"intervalSeconds": 1, "stuckSeconds": 5})) as s:
    org, key = s.make_org(plan="big", credits=1_000_000_000)
    bal0 = balance(s, key)["balance"]

    a = submit(s, key, {"mode": "never", "timeout": 2})
    b = submit(s, key, {"mode": "ok", "delay": 0.2, "computeMs": 100, "timeout": 2})
    j = until(s, key, a, ["failed"], timeout=20)
    check(j["error"]["code"] == "PROVIDER_TIMEOUT", "an execution timeout fails the job PROVIDER_TIMEOUT")
    check(j["completedAt"] - j["dispatchedAt"] >= 2000,
          f"…not before its limit ({j['completedAt'] - j['dispatchedAt']} ms after dispatch)")
    wait_for(lambda: cancels_of(a), what="the provider cancel")
    check(len(cancels_of(a)) == 1, "the provider is told to stop, once")
    check(until(s, key, b, ["complete"])["status"] == "complete", "a job that finishes in time completes")
    time.sleep(3)
    check(job(s, key, b)["status"] == "complete" and not cancels_of(b),
          "…and its deadline passing later changes nothing")

    # The sweep: c never reports; d reports progress every second for 8 s.
    c = submit(s, key, {"mode": "never"})
    d = submit(s, key, {"mode": "never"})
    body = wait_for(lambda: prov.dispatch_of(d), what="d's dispatch")[0]
    stop = threading.Event()

    def keep_reporting():
        while not stop.is_set():
            prov.report(body, "progress", progress=0.1, step="working")
            stop.wait(1.0)

    t = threading.Thread(target=keep_reporting, daemon=True)
    t.start()
    j = until(s, key, c, ["failed"], timeout=20)
    check(j["error"]["code"] == "PROVIDER_TIMEOUT" and "sweep" in j["error"]["message"],
          "the stuck sweep fails a job with no report: " + j["error"]["message"])
    check(j["completedAt"] - j["dispatchedAt"] >= 5000, "…only after stuckSeconds without a report")
    wait_for(lambda: cancels_of(c), what="c's provider cancel")
    time.sleep(max(0.0, 8 - (time.time() - prov.times_of(d)[0])))
    check(job(s, key, d)["status"] == "running", "a job that keeps reporting is not stuck")
    stop.set()
    t.join()
    st, ans = prov.report(body, "complete", output={"files": [], "data": {}}, computeMs=100)
    check(st == 200 and until(s, key, d, ["complete"])["status"] == "complete", "…and completes")
    bal = balance(s, key)
    check(bal["held"] == 0 and bal["balance"] == bal0 - 2 * (1000000 + 100000),
          "timed-out jobs cost nothing; their holds are released")
    check(s.stop() == 0, "SIGTERM → 0")
    rc, out = s.check_store()
    check(rc == 0, "jobring check passes: " + out.strip())

# ---- kill -9 of the timer with 1,000 deadlines pending -----------------------------
N = 1000
with Server(config({"intervalSeconds": 120, "stuckSeconds": 300})) as s:
    org, key = s.make_org(plan="big", credits=100_000_000_000)
    bal0 = balance(s, key)
    t0 = time.time()
    with ThreadPoolExecutor(8) as ex:
        ids = list(ex.map(lambda i: submit(s, key, {"mode": "never", "timeout": 12 + i % 5}), range(N)))
    wait_for(lambda: len({b["jobId"] for _, b in list(prov.dispatches)} & set(ids)) == N, timeout=30,
             what="all dispatched")
    pending = time.time() - t0 < 12 and not any(cancels_of(x) for x in ids)
    check(pending, f"all {N} dispatched with their deadlines pending ({time.time() - t0:.1f} s)")
    old = s.actor_pids()["timer"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: s.actor_pids()["timer"] != old, timeout=20, what="the timer's restart")
    check(True, "kill -9 of the timer actor; the supervisor restarted it")
    # Once the first deadlines fire, kill it again mid-stream.
    wait_for(lambda: any(cancels_of(x) for x in ids), timeout=30, what="the first timeouts")
    old = s.actor_pids()["timer"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: s.actor_pids()["timer"] != old, timeout=20, what="the second restart")
    check(True, "kill -9 again while deadlines fire")

    def done():
        return all(job(s, key, x)["status"] == "failed" for x in ids[-20:])

    wait_for(done, timeout=90, what="the last deadlines")
    states = [job(s, key, x) for x in ids]
    check(all(j["status"] == "failed" and j["error"]["code"] == "PROVIDER_TIMEOUT" for j in states),
          f"all {N} jobs timed out")
    early = [j["id"] for j in states if j["completedAt"] - j["dispatchedAt"] < j["timeoutMs"]]
    check(not early, f"none before its deadline ({len(early)} early)")
    bal = balance(s, key)
    check(bal["held"] == 0 and bal["balance"] == bal0["balance"],
          "each hold released exactly once, nothing charged")
    time.sleep(1)
    with prov.lock:
        per = {}
        for _, p, _ in prov.cancels:
            per[p] = per.get(p, 0) + 1
    twice = [p for p, n in per.items() if n > 1]
    got = sum(1 for x in ids if f"/dispatch/{x}/cancel" in per)
    check(not twice, "no provider cancel was sent twice")
    # A kill between a turn's commit and its ring flush loses that turn's
    # cancels (the jobs are failed and settled; only the provider call is
    # missing), so allow at most one turn of them.
    check(got >= N - 512, f"the provider heard {got} of {N} cancels")
    check(s.stop() == 0, "SIGTERM → 0")
    rc, out = s.check_store()
    check(rc == 0, "jobring check passes (one terminal event per job): " + out.strip())
prov.close()
print("timer: all checks passed")
