"""Supervisor: five live actors; kill -9 of each is restarted while the others
keep their PIDs; SIGTERM drains and exits 0; SIGKILL of the supervisor leaves
no orphans; a bad config exits 2 naming the key."""
import json
import os
import signal
import subprocess
import tempfile
import time

from jr import ACTORS, JOBRING, Server, check, pid_alive, wait_for


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


with Server(health=False) as s:
    pids = s.actor_pids()
    check(sorted(pids) == sorted(ACTORS), "the run file names the five actors")
    check(all(pid_alive(p) for p in pids.values()), "all five actors are alive")
    check(len(set(pids.values())) == 5, "each actor is its own process")
    # each child names itself right after fork; give it a moment to run
    wait_for(lambda: all(comm(pids[a]) == "jr-" + a[:12] for a in ACTORS), timeout=5,
             what="the actors to name themselves")
    check(True, "each process is named after its actor")

    for victim in ACTORS:
        before = s.actor_pids()
        os.kill(before[victim], signal.SIGKILL)
        after = wait_for(lambda: (lambda p: p if p[victim] != before[victim] and p[victim] and
                                  pid_alive(p[victim]) else None)(s.actor_pids()),
                         what=f"{victim} to be restarted")
        others_same = all(after[a] == before[a] for a in ACTORS if a != victim)
        check(others_same, f"kill -9 {victim}: restarted as {after[victim]}, the others keep their PIDs")
    check("restarted" in s.logtext(), "the supervisor logs restarts naming the actor")

    pids = s.actor_pids()
    t0 = time.time()
    rc = s.stop(signal.SIGTERM)
    took = time.time() - t0
    check(rc == 0, f"SIGTERM: exit code 0 (took {took:.2f}s)")
    check(took < 10, "SIGTERM: drained within a few seconds")
    check(not any(pid_alive(p) for p in pids.values()), "SIGTERM: no actor left running")

with Server(health=False) as s:
    pids = s.actor_pids()
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait()
    wait_for(lambda: not any(pid_alive(p) for p in pids.values()), timeout=5,
             what="actors to die with the supervisor")
    check(True, "SIGKILL of the supervisor: no orphans left")

    rc, out = s.check_store()
    check(rc == 0, "jobring check passes on the data dir: " + out.strip())

with Server(health=False, args=["--log-format", "json"]) as s:
    time.sleep(0.3)
    s.stop()
    lines = [l for l in s.logtext().splitlines() if l.strip()]
    recs = [json.loads(l) for l in lines]
    check(len(recs) > 5 and {r["actor"] for r in recs} >= set(ACTORS) | {"supervisor"}
          and all({"ts", "actor", "pid", "level", "msg"} <= set(r) for r in recs),
          "--log-format json: every line is a JSON object naming its actor")

# Bad configs: one line naming the key, exit 2.
cases = [
    ({"dispatch": {"maxAttempts": "three"}}, "dispatch.maxAttempts"),
    ({"nosuchkey": 1}, "nosuchkey"),
    ({"storage": {"sync": "sometimes"}}, "storage.sync"),
    ({"plans": {"free": {"concurrentJobs": 0}}}, "plans.free.concurrentJobs"),
]
with tempfile.TemporaryDirectory() as d:
    for cfg, key in cases:
        path = os.path.join(d, "c.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([JOBRING, "serve", "--config", path], capture_output=True, text=True,
                           timeout=10)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(r.returncode == 2 and len(lines) == 1 and key in lines[0],
              f"bad config {key}: exit {r.returncode}, '{lines[0] if lines else ''}'")
    with open(os.path.join(d, "c.json"), "w") as f:
        f.write("{ not json")
    r = subprocess.run([JOBRING, "serve", "--config", os.path.join(d, "c.json")],
                       capture_output=True, text=True, timeout=10)
    check(r.returncode == 2, "a config that is not JSON: exit 2")
print("supervisor: all checks passed")
