"""The chaos faults: a schedule made from the seed, and the thread that
injects them in order while the load runs.

  kill_actor      kill -9 one actor (PID from the run file); the supervisor
                  must bring up a new one
  kill_server     kill -9 the supervisor (its actors die with it),
                  `jobring check` on the crashed store, restart on the same dir
  pause_actor     SIGSTOP one actor for a while, then SIGCONT (the others'
                  rings to it fill up: backpressure, never a dropped fact)
  pause_provider  SIGSTOP the fake provider for a while, then SIGCONT
  pause_worker    the same for the reference worker
  kill_worker     kill -9 the reference worker (its runs die with it) and
                  start a new one on the same port
  storage_full    restart with mapSizeMB just above the data's size, keep
                  writing until 507 STORAGE_FULL comes back, then restart with
                  the normal map (check on the store at each stop)
  rt_drop         drop one realtime client; it resumes with its last id
"""
import os
import signal
import threading
import time

from rt import rng_for

ACTORS = ["intake", "dispatcher", "timer", "reporter", "notifier"]
MANDATORY = ["kill_actor", "kill_actor", "kill_server", "pause_provider", "storage_full", "rt_drop",
             "pause_worker", "kill_worker", "pause_actor"]
WEIGHTS = [("kill_actor", 30), ("kill_server", 10), ("pause_provider", 13), ("pause_worker", 6),
           ("kill_worker", 5), ("storage_full", 4), ("rt_drop", 16), ("pause_actor", 10)]


def schedule(seed, duration):
    """[(t, kind, args)] sorted by t (seconds after the load starts)."""
    rng = rng_for(seed, "faults")
    kinds = list(MANDATORY)
    extra = max(0, int(duration / 6) - len(kinds))
    total = sum(w for _, w in WEIGHTS)
    for _ in range(extra):
        x = rng.uniform(0, total)
        for k, w in WEIGHTS:
            x -= w
            if x <= 0:
                break
        if k == "storage_full" and kinds.count(k) >= 1 + duration // 240:
            k = "kill_actor"
        kinds.append(k)
    rng.shuffle(kinds)
    times = sorted(rng.uniform(0.06 * duration, 0.8 * duration) for _ in kinds)
    out = []
    for t, k in zip(times, kinds):
        a = {}
        if k == "kill_actor":
            a["actor"] = rng.choice(ACTORS)
        elif k == "kill_server":
            a["down"] = round(rng.uniform(0.0, 1.5), 2)
        elif k == "pause_actor":
            a["actor"] = rng.choice(ACTORS)
            a["seconds"] = round(rng.uniform(1.0, 4.0), 2)
        elif k == "pause_provider":
            a["seconds"] = round(rng.uniform(1.5, 5.0), 2)
        elif k == "pause_worker":
            a["seconds"] = round(rng.uniform(1.0, 3.0), 2)
        elif k == "storage_full":
            a["seconds"] = round(rng.uniform(5.0, 8.0), 2)
            a["stop"] = rng.choice(["KILL", "TERM"])
        elif k == "rt_drop":
            a["client"] = rng.randrange(1 << 16)
        out.append((round(t, 2), k, a))
    return out


class Faults(threading.Thread):
    def __init__(self, run, plan):
        super().__init__(daemon=True, name="faults")
        self.r = run
        self.plan = plan
        self.done = []
        self.stop_ev = threading.Event()

    def run(self):
        for t, kind, args in self.plan:
            while self.r.lclock() < t and not self.stop_ev.is_set():
                time.sleep(0.05)
            if self.stop_ev.is_set():
                break
            rec = {"t": self.r.lclock(), "planned": t, "kind": kind, "args": args}
            self.r.say(f"fault at {rec['t']:.1f}s: {kind} {args}")
            try:
                getattr(self, kind)(args, rec)
                rec.setdefault("ok", True)
            except Exception as e:  # recorded; the checker reports it
                rec["ok"] = False
                rec["error"] = f"{type(e).__name__}: {e}"
                self.r.say(f"  fault {kind} failed: {rec['error']}")
            rec["took"] = round(self.r.lclock() - rec["t"], 2)
            self.done.append(rec)

    def kill_actor(self, a, rec):
        name = a["actor"]
        pids = self.r.actor_pids()
        pid = pids.get(name)
        if not pid:
            raise RuntimeError(f"no {name} in the run file: {pids}")
        os.kill(pid, signal.SIGKILL)
        end = time.time() + 30
        while time.time() < end:
            new = self.r.actor_pids().get(name)
            if new and new != pid and self.r.alive(new):
                rec["new_pid"] = new
                return
            time.sleep(0.1)
        raise RuntimeError(f"the supervisor did not restart {name} (pid {pid}) within 30 s")

    def kill_server(self, a, rec):
        self.r.crash_server("after kill -9 of the whole server")
        time.sleep(a["down"])
        self.r.start_server()

    def pause_actor(self, a, rec):
        pid = self.r.actor_pids().get(a["actor"])
        if not pid:
            raise RuntimeError(f"no {a['actor']} in the run file")
        self.r.pause(pid, a["seconds"])

    def pause_provider(self, a, rec):
        self.r.pause(self.r.prov.pid, a["seconds"])

    def pause_worker(self, a, rec):
        self.r.pause(self.r.worker.pid, a["seconds"])

    def kill_worker(self, a, rec):
        self.r.restart_worker()

    def storage_full(self, a, rec):
        rec["full_answers"] = self.r.storage_full(a["seconds"], a["stop"])

    def rt_drop(self, a, rec):
        cs = self.r.rt_clients()
        c = cs[a["client"] % len(cs)]
        rec["client"] = c.cname
        c.drop()
