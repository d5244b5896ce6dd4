"""Intake: every client endpoint over real sockets, the gate and its order,
idempotency, org isolation, pagination and filters, bad input."""
import json
import os
import re
import socket
import subprocess
import time

from jr import ADMIN, Server, check

CFG = {
    # no provider answers here: jobs stay waiting unless cancelled
    "providers": [{"id": "nowhere", "url": "http://127.0.0.1:9/dispatch", "types": ["*"]}],
    "plans": {
        "tiny": {"concurrentJobs": 1, "requestsPerMinute": 5, "maxJobTimeout": 60,
                 "queueLimit": 3, "jobTypes": ["sleep", "fail"]},
        "big": {"concurrentJobs": 10, "requestsPerMinute": 100000, "maxJobTimeout": 900,
                "queueLimit": 100000},
        "narrow": {"concurrentJobs": 1, "requestsPerMinute": 100000, "maxJobTimeout": 60,
                   "queueLimit": 3, "jobTypes": ["sleep"]},
    },
    "http": {"maxBodyBytes": 65536 * 4},
}


def pipelined_posts(port, key, bodies):
    """POST /jobs for each body in one send (so they share a server turn);
    returns [(status, json)] in order."""
    data = b""
    for i, b in enumerate(bodies):
        body = json.dumps(b).encode()
        last = b"Connection: close\r\n" if i == len(bodies) - 1 else b""
        data += (b"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() +
                 b"\r\nContent-Type: application/json\r\n" + last +
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    out, res = raw(port, data), []
    while out:
        head, _, rest = out.partition(b"\r\n\r\n")
        n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        res.append((int(head.split(b" ")[1]), json.loads(rest[:n])))
        out = rest[n:]
    return res


def raw(port, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        pass
    s.close()
    return out


with Server(CFG) as s:
    st, h = s.request("GET", "/health")
    check(st == 200 and h["data"]["status"] == "ok", "GET /health")
    st, t = s.request("GET", "/jobs/types")
    names = {x["type"] for x in t["data"]}
    check(st == 200 and {"ffmpeg", "ffprobe", "sleep", "checksum", "fail"} <= names,
          "GET /jobs/types is public and lists the built-in types")
    st, sc = s.request("GET", "/jobs/types/ffmpeg/schema")
    fields = {f["key"]: f for f in sc["data"]["fields"]}
    check(st == 200 and fields["command"]["required"] and fields["outputFormat"]["type"] == "options"
          and fields["timeout"]["default"] == 120 and fields["timeout"]["max"] == 900,
          "GET /jobs/types/ffmpeg/schema derives fields from the JSON Schema")
    check(s.request("GET", "/jobs/types/nope/schema")[0] == 404, "unknown type schema → 404")

    org, key = s.make_org(plan="big", credits=10_000_000_000)
    org2, key2 = s.make_org(plan="big", credits=10_000_000_000, name="other")
    st, me = s.request("GET", "/orgs/current", token=key)
    check(st == 200 and me["data"]["org"]["id"] == org and me["data"]["plan"]["name"] == "big"
          and me["data"]["balance"]["amount"] == 10_000_000_000, "GET /orgs/current")
    st, bal = s.request("GET", "/billing/balance", token=key)
    check(st == 200 and bal["data"]["balance"] == 10_000_000_000, "GET /billing/balance")
    st, bs = s.request("GET", "/billing/state", token=key)
    check(st == 200 and bs["data"]["balance"]["amount"] == 10.0
          and bs["data"]["plan"]["limits"]["concurrentJobs"] == 10, "GET /billing/state")

    # submit
    st, j = s.request("POST", "/jobs", {"type": "sleep", "params": {"seconds": 1}}, token=key)
    check(st == 201 and j["data"]["status"] == "waiting" and j["data"]["id"].startswith("job_")
          and len(j["data"]["id"]) == 24, "POST /jobs → 201 waiting")
    jid = j["data"]["id"]
    st, g = s.request("GET", f"/jobs/{jid}", token=key)
    check(st == 200 and g["data"]["id"] == jid and g["data"]["params"] == {"seconds": 1}
          and g["data"]["orgId"] == org and g["data"]["output"] is None
          and g["data"]["error"] is None and g["data"]["createdAt"] > 0, "GET /jobs/{id}")
    st, bal = s.request("GET", "/billing/balance", token=key)
    check(bal["data"]["held"] == 1_000_000 and bal["data"]["balance"] == 10_000_000_000,
          "the estimated price is held, not charged")
    check(s.request("GET", f"/jobs/{jid}", token=key2)[0] == 404, "another org's job → 404")
    st, l2 = s.request("GET", "/jobs", token=key2)
    check(st == 200 and l2["meta"]["total"] == 0 and l2["data"] == [], "…and absent from its list")

    # defaults applied, inputs normalised
    st, j2 = s.request("POST", "/jobs", {"type": "ffmpeg", "inputs": {"in.mp4": "https://example.com/a.mp4",
                       "sub.srt": {"content": "1\n00:00:00,000 --> 00:00:01,000\nhi\n"}},
                       "params": {"command": "ffmpeg -i in.mp4 out.mp4"}}, token=key)
    check(st == 201 and j2["data"]["params"]["timeout"] == 120
          and j2["data"]["inputs"]["in.mp4"] == {"url": "https://example.com/a.mp4"}
          and "content" in j2["data"]["inputs"]["sub.srt"], "defaults applied and inputs normalised")

    # idempotency
    body = {"type": "sleep", "params": {"seconds": 2}, "idempotencyKey": "abc-1"}
    st, a1 = s.request("POST", "/jobs", body, token=key)
    st2, a2 = s.request("POST", "/jobs", dict(body, params={"seconds": 9}), token=key)
    check(st == 201 and st2 == 200 and a2["data"]["id"] == a1["data"]["id"]
          and a2["data"].get("idempotent") is True and a2["data"]["params"] == {"seconds": 2},
          "idempotent replay returns the first job with idempotent:true")
    st3, a3 = s.request("POST", "/jobs", body, token=key2)
    check(st3 == 201 and a3["data"]["id"] != a1["data"]["id"], "idempotency keys are per org")
    # the same key three times in one turn: one job, two replays of it
    res = pipelined_posts(s.port, key, [{"type": "sleep", "idempotencyKey": "pipe-1"}] * 3 +
                          [{"type": "sleep", "idempotencyKey": "pipe-2"}])
    ids = [r[1]["data"]["id"] for r in res]
    check([r[0] for r in res] == [201, 200, 200, 201] and ids[0] == ids[1] == ids[2] != ids[3]
          and res[1][1]["data"].get("idempotent") is True,
          f"one key, three pipelined submits → one job and two replays: {[r[0] for r in res]}")

    # gate errors
    e = s.request("POST", "/jobs", {"type": "sleep"})
    check(e[0] == 401 and e[1]["error"]["code"] == "UNAUTHORIZED", "no key → 401 UNAUTHORIZED")
    e = s.request("POST", "/jobs", {"type": "sleep"}, token="rb_live_org_x_nope")
    check(e[0] == 401, "a wrong key → 401")
    e = s.request("POST", "/jobs", {"type": "nope"}, token=key)
    check(e[0] == 400 and e[1]["error"]["code"] == "INVALID_JOB_TYPE", "unknown type → 400 INVALID_JOB_TYPE")
    e = s.request("POST", "/jobs", {"type": "sleep", "params": {"seconds": "x"}}, token=key)
    d = e[1]["error"].get("details") or [{}]
    check(e[0] == 400 and e[1]["error"]["code"] == "VALIDATION_ERROR" and d[0].get("path") == ["seconds"]
          and d[0].get("message"), "schema-invalid params → 400 VALIDATION_ERROR with details[{path,message}]")
    e = s.request("POST", "/jobs", {"type": "sleep", "params": {"colour": 1}}, token=key)
    check(e[0] == 400 and e[1]["error"]["code"] == "VALIDATION_ERROR", "unknown param where the schema forbids it → 400")
    e = s.request("POST", "/jobs", {"type": "sleep", "bogus": 1}, token=key)
    check(e[0] == 400 and e[1]["error"]["code"] == "VALIDATION_ERROR", "unknown body field → 400")

    poor, poorkey = s.make_org(plan="big", credits=500_000, name="poor")
    e = s.request("POST", "/jobs", {"type": "sleep", "params": {"seconds": "x"}}, token=poorkey)
    check(e[0] == 402 and e[1]["error"]["code"] == "INSUFFICIENT_CREDITS",
          "unaffordable and schema-invalid → 402 (credits are checked before the schema)")
    st, tk = s.admin("POST", f"/admin/orgs/{poor}/keys", {"name": "t", "test": True})
    e = s.request("POST", "/jobs", {"type": "sleep"}, token=tk["data"]["key"])
    check(e[0] == 201 and e[1]["data"]["test"] is True, "an rb_test_ key runs without money")
    st, bal = s.request("GET", "/billing/balance", token=poorkey)
    check(bal["data"]["held"] == 0 and bal["data"]["balance"] == 500_000, "…and moves none")

    tiny, tinykey = s.make_org(plan="tiny", credits=10_000_000_000, name="tiny")
    e = s.request("POST", "/jobs", {"type": "ffmpeg", "params": {"command": "ffmpeg -i a b"}}, token=tinykey)
    check(e[0] == 403 and e[1]["error"]["code"] == "PLAN_LIMIT", "type not on the plan → 403 PLAN_LIMIT")
    codes = []
    for i in range(4):
        codes.append(s.request("POST", "/jobs", {"type": "sleep"}, token=tinykey)[1]["error"]["code"]
                     if i == 3 else s.request("POST", "/jobs", {"type": "sleep"}, token=tinykey)[0])
    check(codes[:3] == [201, 201, 201] and codes[3] == "RATE_LIMITED" or codes[3] == "QUEUE_FULL",
          f"queue limit / rate limit reached: {codes}")
    # the 5/min bucket is empty now
    st, body_, resp = s.request("GET", "/orgs/current", token=tinykey, raw=True)
    check(st == 429 and json.loads(body_)["error"]["code"] == "RATE_LIMITED"
          and int(resp.getheader("Retry-After")) >= 1, "over the rate → 429 RATE_LIMITED with Retry-After")
    e = s.request("POST", "/jobs", {"type": "nope"})
    check(e[0] == 401, "unauthenticated and over the rate → 401 (auth first)")

    # queue full on a fresh tiny org (rate limit 5/min leaves room for 4 submits)
    tiny2, tiny2key = s.make_org(plan="tiny", credits=10_000_000_000, name="tiny2")
    res = [s.request("POST", "/jobs", {"type": "sleep"}, token=tiny2key) for _ in range(4)]
    check([r[0] for r in res[:3]] == [201] * 3 and res[3][0] == 429
          and res[3][1]["error"]["code"] == "QUEUE_FULL", "queueLimit → 429 QUEUE_FULL")
    # 24 submits at once on 24 connections (many share a server turn, so
    # the limit must count the jobs of the same batch): exactly 3 get in
    narrow, narrowkey = s.make_org(plan="narrow", credits=10_000_000_000, name="narrow")
    body = json.dumps({"type": "sleep"}).encode()
    req = (b"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + narrowkey.encode() +
           b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    socks = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(24)]
    for c in socks:
        c.sendall(req)
    codes = []
    for c in socks:
        out = b""
        while (b := c.recv(65536)):
            out += b
        c.close()
        codes.append(int(out.split(b" ")[1]))
    check(sorted(codes) == [201] * 3 + [429] * 21,
          f"24 simultaneous submits, queueLimit 3 → 3 × 201, 21 × 429: {sorted(codes)}")

    # cancel / retry
    st, c = s.request("POST", f"/jobs/{jid}/cancel", token=key)
    check(st == 200 and c["data"]["status"] == "cancelled", "cancel a waiting job → cancelled")
    st, c2 = s.request("POST", f"/jobs/{jid}/cancel", token=key)
    check(st == 200 and c2["data"]["status"] == "cancelled", "cancel again → 200 with the job")
    st, bal = s.request("GET", "/billing/balance", token=key)
    check(bal["data"]["balance"] == 10_000_000_000, "a cancelled job costs nothing")
    e = s.request("POST", f"/jobs/{jid}/retry", token=key)
    check(e[0] == 409 and e[1]["error"]["code"] == "CONFLICT", "retry of a non-failed job → 409")
    check(s.request("POST", f"/jobs/{jid}/cancel", token=key2)[0] == 404, "cancel another org's job → 404")
    check(s.request("GET", f"/jobs/{jid}/logs", token=key)[0] == 404, "logs of a job without logs → 404")

    # list: pagination, filters, order
    ids = []
    for i in range(7):
        st, x = s.request("POST", "/jobs", {"type": "fail" if i % 2 else "sleep"}, token=key2)
        ids.append(x["data"]["id"])
        time.sleep(0.002)
    st, l = s.request("GET", "/jobs?limit=3", token=key2)
    check(st == 200 and l["meta"]["total"] == 8 and l["meta"]["limit"] == 3 and len(l["data"]) == 3
          and l["data"][0]["id"] == ids[-1], "GET /jobs newest first with meta.total/limit")
    st, l = s.request("GET", "/jobs?limit=3&offset=3", token=key2)
    check(l["meta"]["page"] == 2 and [x["id"] for x in l["data"]] == ids[::-1][3:6], "offset pages through")
    st, l = s.request("GET", "/jobs?type=fail", token=key2)
    check(l["meta"]["total"] == 3 and all(x["type"] == "fail" for x in l["data"]), "filter by type")
    st, l = s.request("GET", "/jobs?status=cancelled", token=key)
    check(l["meta"]["total"] == 1 and l["data"][0]["id"] == jid, "filter by status")
    st, l = s.request("GET", "/jobs?order=asc&limit=100", token=key2)
    check(l["data"][0]["id"] == a3["data"]["id"], "order=asc")
    st, g = s.request("GET", f"/jobs/{ids[3]}", token=key2)
    created = g["data"]["createdAt"]
    st, l = s.request("GET", f"/jobs?from={created}&to={created}", token=key2)
    check(any(x["id"] == ids[3] for x in l["data"]) and l["meta"]["total"] >= 1, "from/to bounds")
    for q in ["limit=0", "limit=101", "limit=abc", "offset=-1", "status=bogus", "sort=x", "order=up",
              "limit=99999999999999999999"]:
        e = s.request("GET", "/jobs?" + q, token=key2)
        check(e[0] == 400 and e[1]["error"]["code"] == "VALIDATION_ERROR", f"absurd query {q} → 400")

    # bad input: nothing written, the connection and server unharmed
    before = s.request("GET", "/jobs", token=key2)[1]["meta"]["total"]
    for what, data in [("malformed JSON", b"{\"type\": "), ("non-JSON", b"hello"),
                       ("an array", b"[1,2]"), ("non-UTF-8", b"{\"type\":\"sleep\",\"x\":\"\xff\xfe\"}"),
                       ("deep nesting", b"{\"type\":\"sleep\",\"params\":" + b"[" * 500 + b"]" * 500 + b"}"),
                       ("wrong type", b"{\"type\": 5}")]:
        e = s.request("POST", "/jobs", data, token=key2)
        check(e[0] == 400 and e[1]["error"]["code"] == "VALIDATION_ERROR", f"{what} → 400 VALIDATION_ERROR")
    big = b"{\"type\":\"sleep\",\"params\":{\"x\":\"" + b"a" * 300000 + b"\"}}"
    e = s.request("POST", "/jobs", big, token=key2)
    check(e[0] == 413, "a huge body → 413")
    after = s.request("GET", "/jobs", token=key2)[1]["meta"]["total"]
    check(before == after, "bad input wrote nothing")

    # routing
    e = s.request("GET", "/nope", token=key)
    check(e[0] == 404 and e[1]["error"]["code"] == "NOT_FOUND" and e[1]["error"]["message"] == "Route not found",
          "unknown route → 404 NOT_FOUND")
    check(s.request("DELETE", "/jobs", token=key)[0] == 405, "wrong method → 405")
    st, _, resp = s.request("HEAD", "/health", raw=True)
    check(st == 200 and int(resp.getheader("Content-Length")) > 0, "HEAD answers headers only")

    # HTTP edge cases on raw sockets
    out = raw(s.port, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400"), "Content-Length + Transfer-Encoding → 400 (no smuggling)")
    out = raw(s.port, b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 505"), "HTTP/2.0 request line → 505")
    out = raw(s.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 414"), "a long request line → 414")
    out = raw(s.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200 + b"\r\n")
    check(out.startswith(b"HTTP/1.1 431"), "too many headers → 431")
    out = raw(s.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check(out.count(b"HTTP/1.1 200") == 3, "three pipelined requests → three answers")
    body = json.dumps({"type": "sleep"}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    out = raw(s.port, b"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() +
              b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked)
    check(out.startswith(b"HTTP/1.1 201"), "a chunked POST /jobs works")
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    c.sendall(b"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() +
              b"\r\nExpect: 100-continue\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
    interim = c.recv(100)
    c.sendall(body)
    rest = b""
    while True:
        b_ = c.recv(65536)
        if not b_:
            break
        rest += b_
    c.close()
    check(interim == b"HTTP/1.1 100 Continue\r\n\r\n" and rest.startswith(b"HTTP/1.1 201"),
          "Expect: 100-continue → 100, then the answer")
    check(s.request("GET", "/health")[0] == 200, "the server is unharmed")

    # curl works
    r = subprocess.run(["curl", "-sS", "-X", "POST", f"http://127.0.0.1:{s.port}/jobs", "-H",
                        f"Authorization: Bearer {key}", "-H", "Content-Type: application/json",
                        "-d", '{"type":"sleep","params":{"seconds":0.1}}'], capture_output=True, text=True)
    check(r.returncode == 0 and json.loads(r.stdout)["data"]["status"] == "waiting", "curl can submit a job")

    # wrk works (a short keep-alive run; numbers belong to scripts/bench-wrk)
    import shutil
    import tempfile
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write('wrk.method = "POST"\nwrk.body = \'{"type":"sleep","params":{"seconds":0}}\'\n'
                      'wrk.headers["Content-Type"] = "application/json"\n'
                      f'wrk.headers["Authorization"] = "Bearer {key2}"\n')
        r = subprocess.run(["wrk", "-t1", "-c4", "-d1s", "-s", lua.name, f"http://127.0.0.1:{s.port}/jobs"],
                           capture_output=True, text=True, timeout=30)
        os.unlink(lua.name)
        reqs = re.search(r"(\d+) requests in", r.stdout)
        check(r.returncode == 0 and reqs and int(reqs.group(1)) > 0 and "Non-2xx" not in r.stdout
              and "Socket errors" not in r.stdout, f"wrk works: {reqs.group(1) if reqs else '?'} submits in 1s, all 2xx")
    else:
        print("skip: wrk is not installed")

    # admin API
    check(s.request("POST", "/admin/orgs", {"name": "x"}, token="wrong")[0] == 401, "admin with a bad token → 401")
    e = s.admin("POST", "/admin/orgs", {"name": "x", "plan": "nope"})
    check(e[0] == 400, "admin: unknown plan → 400")
    e = s.admin("PATCH", f"/admin/orgs/{org}", {"plan": "tiny"})
    check(e[0] == 200 and e[1]["data"]["plan"] == "tiny", "PATCH /admin/orgs/{id} changes the plan")
    e = s.admin("POST", f"/admin/orgs/{org}/credits", {"amount": -1_000_000})
    check(e[0] == 200 and e[1]["data"]["balance"] == 10_000_000_000 - 1_000_000, "negative credits")
    st, k = s.admin("POST", f"/admin/orgs/{org}/keys", {"name": "second"})
    kid, newkey = k["data"]["id"], k["data"]["key"]
    check(newkey.startswith(f"rb_live_{org}_"), "API keys carry their org: rb_live_<org>_<secret>")
    check(s.request("GET", "/orgs/current", token=newkey)[0] == 200, "the new key works")
    check(s.admin("DELETE", f"/admin/keys/{kid}")[0] == 200, "DELETE /admin/keys/{id}")
    check(s.request("GET", "/orgs/current", token=newkey)[0] == 401, "a deleted key → 401")
    st, dlq = s.admin("GET", "/admin/dlq")
    check(st == 200 and dlq["data"] == [], "GET /admin/dlq")
    check(s.admin("POST", f"/admin/dlq/{jid}/requeue")[0] == 404, "requeue of a job not in the DLQ → 404")

    rc = s.stop()
    check(rc == 0, "SIGTERM → exit 0")
    rc, out = s.check_store()
    check(rc == 0, "jobring check passes: " + out.strip())
print("api: all checks passed")
