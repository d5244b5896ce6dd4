"""The chaos workload: orgs on different plans, the seeded job specs, and the
client behaviour around them (submit with retries and idempotency keys,
poll, cancel, retry by hand, replay keys, upload assets, top up credits).

Everything the clients learn is recorded here, in their own terms: what was
acknowledged (2xx), what was refused, what has an unknown outcome (the
connection died after the request went out), and every status each poll
saw. The checker (checker.py) holds jobring to these records."""
import heapq
import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from rt import rng_for

TERMINAL = ("complete", "failed", "cancelled")
OPEN = ("waiting", "dispatched", "running")
ALL_EVENTS = ["job.created", "job.started", "job.completed", "job.failed", "job.cancelled"]
TERMINAL_EVENTS = ["job.completed", "job.failed", "job.cancelled"]

# name, plan, credits (nanodollars), share of the jobs, poll interval (s),
# webhook endpoints [(receiver, subscribedEvents or None = the default)],
# share of its jobs sent with an rb_test_ key, at most this many jobs
ORGS = [
    dict(name="big-a", plan="big", credits=10**13, share=0.34, poll=0.7,
         hooks=[("ra-all", ALL_EVENTS), ("ra-term", None)], test=0.0, cap=None),
    dict(name="big-b", plan="big", credits=10**13, share=0.30, poll=0.7,
         hooks=[("rb", ["job.started"] + TERMINAL_EVENTS)], test=0.0, cap=None),
    dict(name="pro", plan="pro", credits=10**12, share=0.18, poll=3.0,
         hooks=[("rp", None)], test=0.3, cap=None),
    dict(name="tiny", plan="tiny", credits=25_000_000, share=0.12, poll=1.5,
         hooks=[("rt", ALL_EVENTS + ["balance.low"])], test=0.0, cap=None),
    dict(name="free", plan="free", credits=10**11, share=0.06, poll=12.0,
         hooks=[("rf", None)], test=0.0, cap=6),
]
TOPUP = 50_000_000
MAX_TOPUPS = 8

FAKE_PRICE = {"base": 1_000_000, "perSecond": 1_000_000, "estimateSeconds": 6}
FAKEQ_PRICE = {"base": 500_000, "perSecond": 0, "estimateSeconds": 0}
WORKER_BASE = {"sleep": 1_000_000, "fail": 100_000, "checksum": 100_000, "ffprobe": 500_000,
               "ffmpeg": 1_000_000}


def estimate(price):
    return price["base"] + price["perSecond"] * price["estimateSeconds"]


def expected_price(job_type, compute_ms):
    """What a complete job must cost (config_price: capped at the hold)."""
    if job_type == "fake":
        p = FAKE_PRICE["base"] + (FAKE_PRICE["perSecond"] * max(0, compute_ms) + 999) // 1000
        return min(p, estimate(FAKE_PRICE))
    if job_type == "fakeq":
        return FAKEQ_PRICE["base"]
    return None  # worker types: perSecond 0, but ffmpeg's is not: checked as ≤ the hold


def server_config(prov_url, prov_secret, worker_url, worker_secret, with_media):
    types = ["sleep", "fail", "checksum"] + (["ffprobe", "ffmpeg"] if with_media else [])
    return {
        "providers": [
            {"id": "fake", "url": prov_url, "secret": prov_secret, "types": ["fake", "fakeq"],
             "capacity": 16},
            {"id": "ref", "url": worker_url, "secret": worker_secret, "types": types, "capacity": 4},
        ],
        "jobTypes": {
            "fake": {"schema": {"type": "object"}, "maxExecutionSeconds": 30, "price": FAKE_PRICE},
            "fakeq": {"schema": {"type": "object"}, "maxExecutionSeconds": 3, "price": FAKEQ_PRICE},
            "sleep": {"maxExecutionSeconds": 30},
            "fail": {"maxExecutionSeconds": 30},
            "checksum": {"maxExecutionSeconds": 30},
            "ffprobe": {"maxExecutionSeconds": 60},
            "ffmpeg": {"maxExecutionSeconds": 60},
        },
        "plans": {
            "big": {"concurrentJobs": 64, "requestsPerMinute": 10_000_000, "queueLimit": 100_000,
                    "maxJobTimeout": 900, "priority": 5},
            "tiny": {"concurrentJobs": 2, "requestsPerMinute": 600, "queueLimit": 6,
                     "maxJobTimeout": 300, "jobTypes": ["fake", "fakeq", "sleep", "fail", "checksum"]},
        },
        "dispatch": {"maxAttempts": 3, "backoffMs": 250, "backoffMaxMs": 2000, "timeoutMs": 1500,
                     "unhealthyAfter": 20, "cooldownMs": 1000},
        "sweep": {"intervalSeconds": 2, "stuckSeconds": 12},
        # small rings: bursts and paused actors fill them, so backpressure is
        # exercised (a full ring must never drop a fact)
        "ringSlots": 64,
        "webhooks": {"timeoutMs": 1500, "backoffMs": 200, "backoffMaxMs": 2000, "maxAttempts": 100,
                     "disableAfterFailures": 10000, "allowPrivateTargets": True},
    }


# ---- HTTP ----------------------------------------------------------------------

class Refused(Exception):
    """Nothing reached the server: safe to send again."""


class Lost(Exception):
    """The request may have reached the server: its outcome is unknown."""


def http_call(port, method, path, body=None, token=None, timeout=10.0, raw=None, headers=None):
    """(status, json-or-None, headers). Raises Refused or Lost."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.connect()
    except ConnectionRefusedError as e:
        raise Refused(str(e))
    except OSError as e:
        raise Refused(str(e))
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        hd = {k.lower(): v for k, v in r.getheaders()}
    except (OSError, http.client.HTTPException) as e:
        raise Lost(f"{type(e).__name__}: {e}")
    finally:
        c.close()
    try:
        js = json.loads(payload) if payload else None
    except ValueError:
        js = None
    return r.status, js, hd


# ---- specs ------------------------------------------------------------------------

def make_specs(seed, org, n, duration, with_media, nonce):
    """The org's n job specs, each with its planned submit time and what the
    client will do with it. Deterministic in (seed, org name, index)."""
    specs = []
    for i in range(n):
        rng = rng_for(seed, "spec", org["name"], i)
        sp = {"org": org["name"], "i": i, "at": rng.uniform(0.0, duration * 0.85)}
        r = rng.random()
        if r < 0.68:
            sp.update(fake_spec(rng))
        else:
            sp.update(worker_spec(rng, with_media))
        sp["key"] = f"ck-{nonce}-{org['name']}-{i}" if rng.random() < 0.8 else None
        sp["test"] = rng.random() < org["test"]
        sp["callback"] = rng.random() < 0.1
        sp["cancel_after"] = rng.uniform(0.0, 3.0) if rng.random() < 0.12 else None
        sp["replay_after"] = rng.uniform(0.3, 5.0) if sp["key"] and rng.random() < 0.15 else None
        sp["retry_budget"] = rng.choice([0, 1, 1, 2])
        sp["malformed"] = rng.random() < 0.02
        sp["plan_limit"] = org["plan"] == "tiny" and rng.random() < 0.04
        sp["dupes"] = rng.choice([2, 3]) if sp["key"] and rng.random() < 0.05 else 0
        sp["watch"] = org["plan"] != "free" and rng.random() < 0.08
        sp["requeue"] = rng.random() < 0.3   # a DISPATCH_EXHAUSTED failure goes back by /admin/dlq
        specs.append(sp)
    specs.sort(key=lambda s: s["at"])
    return specs


def fake_spec(rng):
    p = {"echo": f"e{rng.getrandbits(40):x}", "persist": rng.random() < 0.7,
         "computeMs": rng.randrange(0, 9000)}
    r = rng.random()
    typ = "fake"
    if r < 0.30:
        p["mode"] = "ok"
        if rng.random() < 0.6:
            p["delay"] = round(rng.uniform(0.1, 2.5), 2)
    elif r < 0.40:
        p["mode"] = "fail"
        p["code"] = rng.choice(["PROCESSING_FAILED", "INPUT_FETCH_FAILED", "OUT_OF_MEMORY"])
    elif r < 0.46:
        p["mode"] = "twice"
    elif r < 0.66:
        p["mode"] = "flaky"
        p["bad"] = rng.choice([1, 1, 2, 3])
        p["how"] = rng.choice(["500", "500", "refuse", "hang"])
        p["hang"] = 2.5
        p["old"] = rng.random() < 0.3
    elif r < 0.72:
        p["mode"] = rng.choice(["500", "500", "refuse", "hang"])
        p["hang"] = 2.5
    elif r < 0.77:
        p["mode"] = "never"
    elif r < 0.82:
        typ = "fakeq"     # maxExecutionSeconds 3: the delay runs past it
        p["mode"] = "ok"
        p["delay"] = 5
    else:
        p["mode"] = "ok"
    return {"type": typ, "params": p, "inputs": None, "kind": "fake:" + p["mode"]}


def worker_spec(rng, with_media):
    r = rng.random()
    if r < 0.40:
        return {"type": "sleep", "params": {"seconds": round(rng.uniform(0, 2.5), 1)}, "inputs": None,
                "kind": "sleep"}
    if r < 0.55:
        return {"type": "fail", "params": {"code": rng.choice(["CHAOS_FAIL", "BAD_INPUT_X"])},
                "inputs": None, "kind": "fail"}
    if r < 0.92 or not with_media:
        text = "".join(rng.choice("abcdefghij \n") for _ in range(rng.randrange(0, 3000)))
        how = rng.choice(["content", "asset", "both", "fresh"])
        return {"type": "checksum", "params": {}, "inputs": {"text": text, "how": how},
                "kind": "checksum:" + how}
    if rng.random() < 0.5:
        return {"type": "ffprobe", "params": {"input": "clip.mp4"}, "inputs": {"clip": True},
                "kind": "ffprobe"}
    return {"type": "ffmpeg",
            "params": {"command": "ffmpeg -i clip.mp4 -t 0.5 -c:v copy -an out.mp4",
                       "outputFormat": "mp4"},
            "inputs": {"clip": True}, "kind": "ffmpeg"}


# ---- records ------------------------------------------------------------------------

class Job:
    def __init__(self, jid, org, spec):
        self.id, self.org, self.spec = jid, org, spec
        self.polls = []          # (t, status, attempt, retryCount): the poller's own order
        self.acked = []          # (t, how, status): answers that named this job
        self.retries_ok = self.retries_unknown = 0
        self.retry_conflicts = []
        self.failed_retried = []  # the attempt of each failure we retried (from our poll)
        self.cancel = None       # "ok" | "conflict" | "unknown"
        self.replays = []        # (status, id or code)
        self.expect_sums = {}    # input name -> sha256 hex
        self.budget = spec["retry_budget"]
        self.watch = None        # rt.JobWatch on /events/ws/job/{id}
        self.requeues = 0        # retries done by POST /admin/dlq/{id}/requeue
        self.closed = False
        self.retry_pending = False
        self.last_seen = None


class Org:
    def __init__(self, d):
        self.__dict__.update(d)
        self.id = self.key = self.test_key = None
        self.credits_ok = 0
        self.credits_unknown = []
        self.topups = 0
        self.endpoints = []      # (receiver name, endpoint id, events)
        self.assets = []         # (url, sha256, name)
        self.clip_url = None
        self.rt = []
        self.jobs = {}
        self.lock = threading.Lock()
        self.submits = {"acked": 0, "unknown_keyless": 0, "unknown_keyed": set(), "rejected": {},
                        "keys_sent": set(), "gave_up": 0, "replay_created": set()}


class Scheduler:
    """Runs callables at given times on a small pool."""

    def __init__(self, workers=16):
        self.heap, self.cv, self.n = [], threading.Condition(), 0
        self.pool = ThreadPoolExecutor(workers)
        self.stopped = False
        self.active = self.errors = 0
        threading.Thread(target=self._run, daemon=True).start()

    def at(self, t, fn, *args):
        with self.cv:
            self.n += 1
            heapq.heappush(self.heap, (t, self.n, fn, args))
            self.cv.notify()

    def _run(self):
        while True:
            with self.cv:
                while not self.heap or self.heap[0][0] > time.monotonic():
                    if self.stopped and not self.heap:
                        return
                    self.cv.wait(0.05 if not self.heap else max(0.0, self.heap[0][0] - time.monotonic()))
                _, _, fn, args = heapq.heappop(self.heap)
                self.active += 1
            self.pool.submit(self._safe, fn, args)

    def _safe(self, fn, args):
        try:
            fn(*args)
        except Exception as e:  # a bug in the client, not in jobring
            import traceback
            traceback.print_exc()
            print(f"chaos: client action {fn.__name__} raised {e!r}", flush=True)
            self.errors += 1
        finally:
            with self.cv:
                self.active -= 1

    def idle(self):
        with self.cv:
            return not self.heap and self.active == 0
