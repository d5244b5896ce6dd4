"""LMDB map full: clear 507 STORAGE_FULL answers, nothing half-written, the
server keeps serving reads, and it recovers once space is given (a restart
with a larger map on the same data dir)."""
import json

from jr import Server, check

CFG = {"storage": {"mapSizeMB": 2}, "providers": [],
       "plans": {"big": {"concurrentJobs": 10, "requestsPerMinute": 10000000, "queueLimit": 10000000}}}

with Server(CFG) as s:
    org, key = s.make_org(plan="big", credits=10**15)
    pad = "x" * 8000
    accepted, full, other = [], 0, []
    for i in range(2000):
        st, j = s.request("POST", "/jobs", {"type": "sleep", "params": {}, "idempotencyKey": f"k{i}" + pad[:200]},
                          token=key)
        if st == 201:
            accepted.append(j["data"]["id"])
        elif st == 507:
            full += 1
            check(j["error"]["code"] == "STORAGE_FULL", "a full map answers 507 STORAGE_FULL")
            if full >= 20:
                break
        else:
            other.append((st, j))
    check(full >= 20 and not other, f"{len(accepted)} accepted, then 507s ({full}), nothing else: {other[:2]}")
    st, g = s.request("GET", f"/jobs/{accepted[-1]}", token=key)
    check(st == 200, "reads still work while the map is full")
    check(s.request("GET", "/health")[0] == 200, "the server is alive")
    s.stop()
    rc, out = s.check_store()
    check(rc == 0, "jobring check passes on the full store: " + out.strip())

    # give it space: same data dir, larger map
    s.config["storage"]["mapSizeMB"] = 64
    with open(s.cfgpath, "w") as f:
        json.dump(s.config, f)
    s.start()
    st, j = s.request("POST", "/jobs", {"type": "sleep"}, token=key)
    check(st == 201, "after a restart with a larger map, submits work again")
    st, l = s.request("GET", "/jobs?limit=1", token=key)
    check(l["meta"]["total"] == len(accepted) + 1, "every acknowledged job is still there")
    s.stop()
    rc, out = s.check_store()
    check(rc == 0, "jobring check passes: " + out.strip())
print("storage_full: all checks passed")
