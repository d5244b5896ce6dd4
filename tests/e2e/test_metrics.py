"""GET /metrics: the Prometheus text format, parsed strictly, and its
counters checked against what this test did."""
import re

from fakeprov import FakeProvider
from jr import Server, check, wait_for

prov = FakeProvider()
CFG = {
    "providers": [{"id": "fake", "url": prov.url, "secret": prov.secret, "types": ["fake"], "capacity": 4}],
    "jobTypes": {"fake": {"schema": {"type": "object"}, "price": {"base": 1000}}},
}
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? '
                  r'(-?[0-9.]+(e[+-]?[0-9]+)?|\+Inf|NaN)$')


def parse(text):
    samples, types, helps = {}, {}, {}
    for ln in text.splitlines():
        if ln.startswith("# HELP "):
            name = ln.split()[2]
            helps[name] = True
            continue
        if ln.startswith("# TYPE "):
            _, _, name, kind = ln.split(maxsplit=3)
            assert kind in ("counter", "gauge", "histogram"), ln
            types[name] = kind
            continue
        m = LINE.match(ln)
        assert m, f"not a valid sample line: {ln!r}"
        name, labels = m.group(1), m.group(3) or ""
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, f"sample without TYPE: {name}"
        assert name in helps or base in helps, f"sample without HELP: {name}"
        key = (name, tuple(sorted(re.findall(r'(\w+)="([^"]*)"', labels))))
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(m.group(5))
    return samples, types


def get(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

got = []


class Recv(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        got.append(self.headers.get("X-Rendobar-Event"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


recv = ThreadingHTTPServer(("127.0.0.1", 0), Recv)
threading.Thread(target=recv.serve_forever, daemon=True).start()

with Server(CFG) as s:
    org, key = s.make_org()
    st, ep = s.request("POST", "/webhooks/endpoints", {"name": "m", "url": f"http://127.0.0.1:{recv.server_address[1]}/h",
                       "subscribedEvents": ["job.completed"]}, token=key)
    check(st == 201, "a webhook endpoint for the completed jobs")
    ids = []
    for params in [{"mode": "ok"}, {"mode": "ok"}, {"mode": "ok"}, {"mode": "fail", "code": "MY_CODE"}]:
        st, j = s.request("POST", "/jobs", {"type": "fake", "params": params}, token=key)
        ids.append(j["data"]["id"])
    st, j = s.request("POST", "/jobs", {"type": "fake", "params": {"mode": "never"}}, token=key)
    never = j["data"]["id"]
    wait_for(lambda: all(s.request("GET", f"/jobs/{i}", token=key)[1]["data"]["status"] in ("complete", "failed")
                         for i in ids), what="jobs to finish")
    wait_for(lambda: s.request("GET", f"/jobs/{never}", token=key)[1]["data"]["status"] == "running"
             or s.request("GET", f"/jobs/{never}", token=key)[1]["data"]["status"] == "dispatched",
             what="the silent job to be dispatched")
    st, _ = s.request("POST", f"/jobs/{never}/cancel", token=key)
    check(st == 200, "cancelled one job")
    for _ in range(3):
        s.request("GET", "/jobs", token="rb_live_x_nope")

    def inflight():
        t = s.request("GET", "/metrics", raw=True)[1].decode()
        m = re.search(r'jobring_provider_in_flight\{provider="fake"\} (\d+)', t)
        return m and m.group(1) == "0"
    try:
        wait_for(inflight, timeout=5, what="in-flight to drain")
    except AssertionError:
        pass
    st, body, resp = s.request("GET", "/metrics", raw=True)
    check(st == 200 and resp.getheader("Content-Type").startswith("text/plain"), "GET /metrics is public text")
    text = body.decode()
    samples, types = parse(text)
    check(True, f"every one of {len(samples)} lines parses strictly, each with HELP and TYPE")
    check(get(samples, "jobring_jobs_created_total", type="fake") == 5, "jobs created by type = 5")
    check(get(samples, "jobring_jobs_finished_total", type="fake", status="complete") == 3, "3 complete")
    check(get(samples, "jobring_jobs_finished_total", type="fake", status="failed") == 1, "1 failed")
    check(get(samples, "jobring_jobs_finished_total", type="fake", status="cancelled") == 1, "1 cancelled")
    check(get(samples, "jobring_job_errors_total", code="MY_CODE") == 1, "the failed job's code is counted")
    check((get(samples, "jobring_api_errors_total", code="UNAUTHORIZED") or 0) >= 3, "API 401s are counted")
    check(get(samples, "jobring_jobs", status="waiting") == 0 and get(samples, "jobring_jobs", status="running") == 0,
          "gauges: nothing left waiting or running")
    check(get(samples, "jobring_provider_in_flight", provider="fake") == 0,
          f"provider in flight back to 0 (is {get(samples, 'jobring_provider_in_flight', provider='fake')})")
    check(get(samples, "jobring_ring_messages", **{"from": "intake", "to": "dispatcher"}) is not None,
          "ring occupancy per ring")
    check(get(samples, "jobring_lmdb_used_bytes") > 0 and get(samples, "jobring_lmdb_map_bytes") > 0,
          "LMDB size and map")
    for h in ["jobring_submit_seconds", "jobring_wait_to_dispatch_seconds", "jobring_dispatch_to_complete_seconds",
              "jobring_webhook_delivery_seconds"]:
        check(types.get(h) == "histogram", f"{h} is a histogram")
        buckets = sorted(((float(dict(k[1])["le"]) if dict(k[1])["le"] != "+Inf" else float("inf")), v)
                         for k, v in samples.items() if k[0] == h + "_bucket")
        counts = [v for _, v in buckets]
        check(counts == sorted(counts) and buckets[-1][0] == float("inf")
              and buckets[-1][1] == get(samples, h + "_count"), f"{h}: cumulative buckets end at _count")
    check(get(samples, "jobring_submit_seconds_count") == 5, "5 submits timed")
    wait_for(lambda: got.count("job.completed") >= 3, what="3 webhooks")
    t2 = s.request("GET", "/metrics", raw=True)[1].decode()
    samples2, _ = parse(t2)
    check(get(samples2, "jobring_webhook_delivery_seconds_count") >= 3
          and get(samples2, "jobring_events_total", event="webhook_delivered") >= 3,
          "webhook deliveries are counted and timed")
    check(get(samples, "jobring_dispatch_to_complete_seconds_count") == 3, "3 completions timed")
prov.close()
print("metrics: all checks passed")
