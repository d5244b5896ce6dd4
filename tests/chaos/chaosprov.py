"""The chaos test's fault-injecting provider, in a process of its own so that
the chaos can SIGSTOP it (a paused listener: connections wait in the backlog,
nothing is answered, no report goes out) and SIGCONT it later.

It is tests/e2e/fakeprov.py (modes ok, 500, hang, fail, twice, never, refuse,
flaky (+bad, how), delay, old) plus two things the chaos needs:
- params.persist: a report that got no answer or a 5xx is sent again (0.3 s
  apart, for up to 20 s), as a real provider would while jobring restarts;
- a log: every dispatch, cancel and report (with jobring's answer) is
  appended as a JSON line to LOGFILE, so the checker can hold jobring to what
  it acknowledged to the provider.

usage: chaosprov.py SECRET LOGFILE   (prints "port N" once listening)"""
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from fakeprov import FakeProvider  # noqa: E402

PERSIST_S = 20.0


class ChaosProvider(FakeProvider):
    def __init__(self, secret, logpath):
        super().__init__(secret)
        self.logf = open(logpath, "a", buffering=1)
        self.done = {"d": 0, "c": 0, "r": 0}
        self.flush_lock = threading.Lock()
        threading.Thread(target=self._logger, daemon=True).start()

    def report(self, body, event, attempt=None, **extra):
        persist = bool((body.get("params") or {}).get("persist"))
        end = time.time() + PERSIST_S
        while True:
            st, ans = super().report(body, event, attempt, **extra)
            if not persist or (st and st < 500) or time.time() > end:
                return st, ans
            time.sleep(0.3)

    def flush(self):
        with self.flush_lock, self.lock:
            for t, b in self.dispatches[self.done["d"]:]:
                p = b.get("params") or {}
                self.logf.write(json.dumps({"k": "dispatch", "t": t, "job": b["jobId"],
                                            "attempt": b["attempt"], "mode": p.get("mode")}) + "\n")
            self.done["d"] = len(self.dispatches)
            for t, path, b in self.cancels[self.done["c"]:]:
                self.logf.write(json.dumps({"k": "cancel", "t": t, "path": path,
                                            "job": b.get("jobId")}) + "\n")
            self.done["c"] = len(self.cancels)
            for job, event, attempt, st, ans in self.reports[self.done["r"]:]:
                self.logf.write(json.dumps({"k": "report", "job": job, "event": event,
                                            "attempt": attempt, "status": st,
                                            "answer": ans if isinstance(ans, dict) else str(ans)})
                                + "\n")
            self.done["r"] = len(self.reports)
            self.logf.flush()

    def _logger(self):
        while True:
            time.sleep(0.2)
            self.flush()


def main():
    prov = ChaosProvider(sys.argv[1], sys.argv[2])

    def stop(signum, frame):
        prov.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, lambda s, f: prov.flush())
    print(f"port {prov.port}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
