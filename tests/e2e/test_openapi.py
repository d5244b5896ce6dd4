"""GET /openapi.json against the real server: every route the document names
is called, and every answer is checked against what the document says for
its status code (status documented, media type, body valid against the
schema). Requests that succeed must match the documented request body and
query parameters too; webhook deliveries a real receiver gets are checked
against the document's `webhooks` section and realtime messages against
RealtimeEvent.

The JSON Schema validator below is our own: the subset of draft 2020-12
that the document uses. It refuses keywords it does not know, so the
document cannot quietly outgrow it."""
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakeprov import FakeProvider, post
from jr import ADMIN, Server, check, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "docs", "openapi.json"), "rb") as f:
    DOC_BYTES = f.read()
DOC = json.loads(DOC_BYTES)

# Routes that cannot be called yet, with the reason. Empty: everything lands.
PENDING = {}

# ---- the validator ------------------------------------------------------------

ANNOTATIONS = {"description", "examples", "default", "format", "title", "deprecated", "readOnly",
               "writeOnly", "contentMediaType", "$comment"}
KNOWN = ANNOTATIONS | {"$ref", "type", "enum", "const", "properties", "required",
                       "additionalProperties", "items", "oneOf", "anyOf", "allOf", "minimum",
                       "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems",
                       "minProperties", "maxProperties"}


def resolve(ref):
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported: {ref}")
    node = DOC
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def jeq(a, b):
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(jeq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(jeq(a[k], b[k]) for k in a)
    return a == b


def is_type(v, t):
    if t == "null":
        return v is None
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "string":
        return isinstance(v, str)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    raise ValueError(f"unknown type {t}")


def validate(v, schema, at="$"):
    """A list of "where: what" problems; empty when v is valid."""
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{at}: nothing is allowed here"]
    unknown = set(schema) - KNOWN
    if unknown:
        raise ValueError(f"the validator does not know {sorted(unknown)} (at {at})")
    errs = []
    if "$ref" in schema:
        errs += validate(v, resolve(schema["$ref"]), at)
    if "type" in schema:
        ts = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(is_type(v, t) for t in ts):
            return errs + [f"{at}: {json.dumps(v)[:80]} is not of type {'/'.join(ts)}"]
    if "enum" in schema and not any(jeq(v, e) for e in schema["enum"]):
        errs.append(f"{at}: {json.dumps(v)[:80]} is not one of {schema['enum']}")
    if "const" in schema and not jeq(v, schema["const"]):
        errs.append(f"{at}: {json.dumps(v)[:80]} is not {json.dumps(schema['const'])}")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in schema and v < schema["minimum"]:
            errs.append(f"{at}: {v} < minimum {schema['minimum']}")
        if "maximum" in schema and v > schema["maximum"]:
            errs.append(f"{at}: {v} > maximum {schema['maximum']}")
    if isinstance(v, str):
        if "minLength" in schema and len(v) < schema["minLength"]:
            errs.append(f"{at}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(v) > schema["maxLength"]:
            errs.append(f"{at}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], v):
            errs.append(f"{at}: {v[:80]!r} does not match {schema['pattern']}")
    if isinstance(v, list):
        if "minItems" in schema and len(v) < schema["minItems"]:
            errs.append(f"{at}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(v) > schema["maxItems"]:
            errs.append(f"{at}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, x in enumerate(v):
                errs += validate(x, schema["items"], f"{at}[{i}]")
    if isinstance(v, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in v:
                errs.append(f"{at}: {k} is required")
        for k, x in v.items():
            if k in props:
                errs += validate(x, props[k], f"{at}.{k}")
            elif "additionalProperties" in schema:
                errs += validate(x, schema["additionalProperties"], f"{at}.{k}")
        if "minProperties" in schema and len(v) < schema["minProperties"]:
            errs.append(f"{at}: fewer than {schema['minProperties']} properties")
        if "maxProperties" in schema and len(v) > schema["maxProperties"]:
            errs.append(f"{at}: more than {schema['maxProperties']} properties")
    for s in schema.get("allOf", []):
        errs += validate(v, s, at)
    if "anyOf" in schema:
        if not any(not validate(v, s, at) for s in schema["anyOf"]):
            errs.append(f"{at}: matches none of anyOf")
    if "oneOf" in schema:
        results = [validate(v, s, at) for s in schema["oneOf"]]
        n = sum(1 for r in results if not r)
        if n != 1:
            detail = "; ".join(r[0] for r in results if r)[:400]
            errs.append(f"{at}: matches {n} of oneOf (need exactly 1){': ' + detail if n == 0 else ''}")
    return errs


def schema_of(name):
    return {"$ref": "#/components/schemas/" + name}


def validator_selftest():
    """The validator must be able to fail, or the checks below mean nothing."""
    job = {"id": "job_x", "type": "t", "status": "waiting", "orgId": "o", "client": None, "inputs": {},
           "params": {}, "idempotencyKey": None, "progress": 0, "steps": [], "retryCount": 0,
           "attempt": 0, "timeoutMs": 1, "logsAvailable": False, "test": False, "createdAt": 1,
           "dispatchedAt": None, "startedAt": None, "completedAt": None, "cost": None, "output": None,
           "error": None, "outputUrl": None, "errorMessage": None, "errorCode": None}
    J = schema_of("Job")
    cases = [
        (job, J, True),
        (dict(job, status="done"), J, False),                    # enum
        ({k: v for k, v in job.items() if k != "orgId"}, J, False),  # required
        (dict(job, extra=1), J, False),                          # additionalProperties: false
        (dict(job, progress=1.5), J, False),                     # maximum
        (dict(job, createdAt=True), J, False),                   # a bool is not an integer
        (dict(job, completedAt=5.0), J, True),                   # 5.0 is an integer
        (dict(job, client=7), J, False),                         # ["string", "null"]
        (dict(job, idempotent=True), J, True),
        (dict(job, idempotent=False), J, False),                 # const
        (dict(job, id="nope"), J, False),                        # pattern
        (dict(job, inputs={"a": {"url": "u", "job": "j"}}), J, False),  # oneOf matches none
        (dict(job, cost={"amount": 1, "currency": "USD", "formatted": "$0.00"}), J, True),
        (dict(job, cost={"amount": 1, "currency": "EUR", "formatted": "$0.00"}), J, False),
        ({"error": {"code": "X_Y", "message": "m"}}, schema_of("Error"), True),
        ({"error": {"code": "lower", "message": "m"}}, schema_of("Error"), False),
        ({"error": {"code": "VALIDATION_ERROR", "message": "m", "details": [{"path": ["a", 0], "message": "x"}]}},
         schema_of("ValidationError"), True),
        ({"error": {"code": "VALIDATION_ERROR", "message": "m", "details": [{"path": "a", "message": "x"}]}},
         schema_of("ValidationError"), False),
        ({"type": "job.status", "id": 1, "jobId": "j", "status": "running", "progress": 0, "attempt": 1, "at": 1},
         schema_of("RealtimeEvent"), True),
        ({"type": "job.status", "id": 1}, schema_of("RealtimeEvent"), False),
    ]
    for i, (v, s, ok) in enumerate(cases):
        errs = validate(v, s)
        if (not errs) != ok:
            check(False, f"validator self-test {i}: expected {'valid' if ok else 'invalid'}, got {errs}")
    try:
        validate(1, {"propertyNames": {}})
        check(False, "the validator refuses unknown keywords")
    except ValueError:
        pass
    check(True, f"the validator passes its {len(cases) + 1} self-tests")


# ---- routes and calls -----------------------------------------------------------

METHODS = ("get", "put", "post", "delete", "patch")
OPS = {(m.upper(), p) for p, item in DOC["paths"].items() for m in item if m in METHODS}
EXERCISED = {}   # (METHOD, template) -> set of statuses seen


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    raise SystemExit(1)


def segments(path):
    return [s for s in path.split("?")[0].split("/") if s]


def match(path):
    """The document's template for a concrete path: the one with the most
    literal segments among those that fit."""
    segs = segments(path)
    best = None
    for tmpl in DOC["paths"]:
        ts = segments(tmpl)
        if len(ts) != len(segs):
            continue
        if all(t.startswith("{") or t == s for t, s in zip(ts, segs)):
            lit = sum(1 for t in ts if not t.startswith("{"))
            if best is None or lit > best[0]:
                best = (lit, tmpl)
    return best[1] if best else None


def operation(method, tmpl):
    item = DOC["paths"][tmpl]
    op = item.get(method.lower())
    if op is None:
        fail(f"{method} {tmpl} is not in the document")
    params = list(item.get("parameters", [])) + list(op.get("parameters", []))
    params = [resolve(p["$ref"]) if "$ref" in p else p for p in params]
    return op, params


def response_for(op, status):
    r = op["responses"]
    key = str(status) if str(status) in r else f"{status // 100}XX" if f"{status // 100}XX" in r else "default"
    if key not in r:
        return None
    return resolve(r[key]["$ref"]) if "$ref" in r[key] else r[key]


def media_match(ctype, documented):
    mt = (ctype or "").split(";")[0].strip().lower()
    for k in documented:
        if k == "*/*" or k == mt or (k.endswith("/*") and mt.startswith(k[:-1])):
            return k
    return None


def record(method, tmpl, status):
    EXERCISED.setdefault((method, tmpl), set()).add(status)


def check_answer(method, path, status, ctype, payload, req_body=None):
    """Check one answer against the document; returns the parsed body."""
    tmpl = match(path)
    if tmpl is None:
        fail(f"{method} {path}: no path of the document fits")
    op, params = operation(method if method != "HEAD" else "GET", tmpl)
    res = response_for(op, status)
    if res is None:
        fail(f"{method} {tmpl} answered {status}, which the document does not list "
             f"({sorted(op['responses'])}): {payload[:300]!r}")
    parsed = None
    # a 101's content describes the WebSocket messages: checked where they are read
    content = res.get("content") if status != 101 else None
    if content:
        key = media_match(ctype, content)
        if key is None:
            fail(f"{method} {tmpl} {status}: Content-Type {ctype!r} is not one of {sorted(content)}")
        schema = content[key].get("schema")
        if key == "application/json":
            try:
                parsed = json.loads(payload)
            except ValueError:
                fail(f"{method} {tmpl} {status}: the body is not JSON: {payload[:200]!r}")
        elif key.startswith("text/"):
            try:
                parsed = payload.decode("utf-8")
            except UnicodeDecodeError:
                fail(f"{method} {tmpl} {status}: the {key} body is not UTF-8")
        else:
            parsed = payload
        if schema is not None and not isinstance(parsed, bytes):
            errs = validate(parsed, schema)
            if errs:
                fail(f"{method} {tmpl} {status}: the body does not match the document:\n  " +
                     "\n  ".join(errs[:12]) + f"\n  body: {payload[:600]!r}")
    elif payload and status not in (101, 304):
        fail(f"{method} {tmpl} {status}: a body where the document says none: {payload[:200]!r}")
    if 200 <= status < 300:
        # what we sent must be what the document describes
        q = path.split("?", 1)[1] if "?" in path else ""
        names = {p["name"] for p in params if p["in"] == "query"}
        for pair in filter(None, q.split("&")):
            if pair.split("=")[0] not in names:
                fail(f"{method} {tmpl}: query parameter {pair.split('=')[0]!r} is not documented")
        rb = op.get("requestBody")
        if rb and req_body is not None and "application/json" in rb["content"]:
            errs = validate(req_body, rb["content"]["application/json"]["schema"])
            if errs:
                fail(f"{method} {tmpl}: the request that worked does not match the documented body: {errs}")
        if rb and rb.get("required") and req_body is None and method != "PUT":
            fail(f"{method} {tmpl}: worked without the body the document requires")
    record(method, tmpl, status)
    return parsed


class Api:
    def __init__(self, server):
        self.s = server

    def call(self, method, path, body=None, token=None, expect=None, headers=None, raw=None):
        payload_in = raw if raw is not None else body
        st, payload, resp = self.s.request(method, path, payload_in, token=token, headers=headers, raw=True)
        parsed = check_answer(method, path, st, resp.getheader("Content-Type"), payload,
                              body if raw is None else None)
        if expect is not None and st != expect:
            fail(f"{method} {path}: expected {expect}, got {st}: {payload[:300]!r}")
        print(f"ok: {method} {path.split('?')[0]} → {st}", flush=True)
        return st, parsed, resp


# ---- a WebSocket client and an SSE reader, small and strict --------------------------

class WS:
    """RFC 6455 client: handshake, then text frames (unmasked from the server)."""

    def __init__(self, port, path, token=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n{auth}\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = self.sock.recv(1)
            if not b:
                break
            head += b
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ")[1]) if self.head.startswith("HTTP/1.1 ") else 0
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()
                                             ).digest()).decode()
        self.accept_ok = any(ln.lower().startswith("sec-websocket-accept:") and ln.split(":", 1)[1].strip() == want
                             for ln in self.head.split("\r\n"))
        self.messages = []
        self.lock = threading.Lock()
        if self.status == 101:
            threading.Thread(target=self._read, daemon=True).start()

    def _exact(self, n):
        out = b""
        while len(out) < n:
            b = self.sock.recv(n - len(out))
            if not b:
                raise EOFError
            out += b
        return out

    def _send(self, opcode, data):
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        self.sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self):
        self.sock.settimeout(None)
        try:
            while True:
                b0, b1 = self._exact(2)
                n = b1 & 0x7F
                if n == 126:
                    n = int.from_bytes(self._exact(2), "big")
                elif n == 127:
                    n = int.from_bytes(self._exact(8), "big")
                data = self._exact(n)
                op = b0 & 0x0F
                if op == 1:
                    with self.lock:
                        self.messages.append(data.decode())
                elif op == 9:
                    self._send(10, data)
                elif op == 8:
                    return
        except (OSError, EOFError):
            return

    def texts(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        try:
            self._send(8, b"\x03\xe8")
        except OSError:
            pass
        self.sock.close()


class SSE:
    def __init__(self, port, path, token):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                           "Accept: text/event-stream\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            b = self.sock.recv(4096)
            if not b:
                break
            self.buf += b
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ")[1])
        self.ctype = next((ln.split(":", 1)[1].strip() for ln in self.head.split("\r\n")
                           if ln.lower().startswith("content-type:")), "")
        self.events = []   # (id, data)
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        self.sock.settimeout(None)
        try:
            while True:
                while b"\n\n" in self.buf:
                    block, _, self.buf = self.buf.partition(b"\n\n")
                    ev = {"id": None, "data": []}
                    for ln in block.decode().split("\n"):
                        if ln.startswith("id:"):
                            ev["id"] = ln[3:].strip()
                        elif ln.startswith("data:"):
                            ev["data"].append(ln[5:].lstrip())
                    if ev["data"]:
                        with self.lock:
                            self.events.append((ev["id"], "\n".join(ev["data"])))
                b = self.sock.recv(4096)
                if not b:
                    return
                self.buf += b.replace(b"\r\n", b"\n")
        except OSError:
            return

    def close(self):
        self.sock.close()


# ---- a webhook receiver -----------------------------------------------------------------

class Receiver:
    def __init__(self):
        self.got = []   # (headers dict lower-case, raw body)
        self.lock = threading.Lock()
        rec = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with rec.lock:
                    rec.got.append(({k.lower(): v for k, v in self.headers.items()}, raw))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self):
        with self.lock:
            return list(self.got)

    def close(self):
        self.httpd.shutdown()


# ---- the run ------------------------------------------------------------------------------

validator_selftest()
prov = FakeProvider()
rcv = Receiver()
CFG = {
    "providers": [{"id": "fake", "url": prov.url, "secret": prov.secret, "types": ["fake"], "capacity": 8}],
    "jobTypes": {"fake": {"schema": {"type": "object"}, "maxExecutionSeconds": 60,
                          "price": {"base": 1000000, "perSecond": 1000000, "estimateSeconds": 10}}},
    "dispatch": {"maxAttempts": 2, "backoffMs": 100, "backoffMaxMs": 400, "timeoutMs": 2000},
    "plans": {"big": {"concurrentJobs": 100, "requestsPerMinute": 1000000, "maxJobTimeout": 900,
                      "queueLimit": 100000},
              "tiny": {"concurrentJobs": 1, "requestsPerMinute": 3, "maxJobTimeout": 60,
                       "queueLimit": 1, "jobTypes": ["sleep"]}},
    "webhooks": {"allowPrivateTargets": True, "backoffMs": 200, "backoffMaxMs": 1000},
    "http": {"maxBodyBytes": 65536},
}


def wait_job(api, key, jid, statuses, timeout=20):
    def get():
        st, b = api.s.request("GET", f"/jobs/{jid}", token=key)
        return b["data"] if st == 200 and b["data"]["status"] in statuses else None
    return wait_for(get, timeout=timeout, what=f"{jid} to reach {statuses}")


def sign(method, path, exp, key=b"sk_test_signing_key_0123456789"):
    return hmac.new(key, f"{method}\n{path}\n{exp}".encode(), hashlib.sha256).hexdigest()


with Server(CFG) as s:
    A = Api(s)
    port = s.port

    # ---- public -----------------------------------------------------------------------
    A.call("GET", "/health", expect=200)
    A.call("GET", "/metrics", expect=200)
    st, doc, resp = A.call("GET", "/openapi.json", expect=200)
    _, served, _ = s.request("GET", "/openapi.json", raw=True)
    check(served == DOC_BYTES, "the served document is docs/openapi.json byte for byte")
    etag = resp.getheader("ETag")
    A.call("GET", "/openapi.json", headers={"If-None-Match": etag}, expect=304)
    st, page, resp = A.call("GET", "/dashboard", expect=200)
    csp = resp.getheader("Content-Security-Policy") or ""
    check("<title>" in page and "default-src 'none'" in csp and "'sha256-" in csp
          and resp.getheader("Cache-Control") == "no-cache", "the dashboard: HTML, hashed CSP, no-cache")
    A.call("GET", "/dashboard", headers={"If-None-Match": 'W/"x", ' + resp.getheader("ETag")}, expect=304)
    check(s.request("POST", "/dashboard")[0] == 405, "POST /dashboard → 405")
    A.call("GET", "/jobs/types", expect=200)
    A.call("GET", "/jobs/types/fake/schema", expect=200)
    A.call("GET", "/jobs/types/ffmpeg/schema", expect=200)
    A.call("GET", "/jobs/types/nope/schema", expect=404)

    # ---- admin ------------------------------------------------------------------------
    _, o, _ = A.call("POST", "/admin/orgs", {"name": "acme", "plan": "big"}, token=ADMIN, expect=201)
    org = o["data"]["id"]
    A.call("POST", "/admin/orgs", {"name": "x", "plan": "nope"}, token=ADMIN, expect=400)
    A.call("POST", "/admin/orgs", {"name": "x"}, token="wrong", expect=401)
    A.call("GET", f"/admin/orgs/{org}", token=ADMIN, expect=200)
    A.call("GET", "/admin/orgs/org_nope", token=ADMIN, expect=404)
    A.call("PATCH", f"/admin/orgs/{org}", {"name": "Acme Inc"}, token=ADMIN, expect=200)
    A.call("PATCH", f"/admin/orgs/{org}", {"plan": "nope"}, token=ADMIN, expect=400)
    A.call("POST", f"/admin/orgs/{org}/credits", {"amount": 100_000_000_000}, token=ADMIN, expect=200)
    A.call("POST", f"/admin/orgs/{org}/credits", {"amount": 0}, token=ADMIN, expect=400)
    A.call("POST", "/admin/orgs/org_nope/credits", {"amount": 5}, token=ADMIN, expect=404)
    _, k, _ = A.call("POST", f"/admin/orgs/{org}/keys", {"name": "main"}, token=ADMIN, expect=201)
    key = k["data"]["key"]
    A.call("POST", f"/admin/orgs/{org}/keys", {"name": "x", "test": "yes"}, token=ADMIN, expect=400)
    _, k2, _ = A.call("POST", f"/admin/orgs/{org}/keys", {"name": "spare", "test": True}, token=ADMIN, expect=201)
    A.call("DELETE", f"/admin/keys/{k2['data']['id']}", token=ADMIN, expect=200)
    A.call("DELETE", f"/admin/keys/{k2['data']['id']}", token=ADMIN, expect=404)
    A.call("GET", "/orgs/current", token=k2["data"]["key"], expect=401)

    # ---- account ------------------------------------------------------------------------
    A.call("GET", "/orgs/current", token=key, expect=200)
    A.call("GET", "/billing/state", token=key, expect=200)
    A.call("GET", "/billing/balance", token=key, expect=200)
    A.call("GET", "/billing/state", expect=401)
    A.call("GET", "/billing/balance", token="rb_live_nope", expect=401)
    _, so, _ = A.call("POST", "/admin/orgs", {"name": "sleepy"}, token=ADMIN, expect=201)
    _, sk, _ = A.call("POST", f"/admin/orgs/{so['data']['id']}/keys", {}, token=ADMIN, expect=201)
    A.call("PATCH", f"/admin/orgs/{so['data']['id']}", {"suspended": True}, token=ADMIN, expect=200)
    A.call("GET", "/orgs/current", token=sk["data"]["key"], expect=403)

    # a tiny plan: 3 requests a minute, sleep jobs only
    _, to, _ = A.call("POST", "/admin/orgs", {"name": "tiny", "plan": "tiny"}, token=ADMIN, expect=201)
    _, tk, _ = A.call("POST", f"/admin/orgs/{to['data']['id']}/keys", {"name": "t"}, token=ADMIN, expect=201)
    tkey = tk["data"]["key"]
    A.call("POST", f"/admin/orgs/{to['data']['id']}/credits", {"amount": 1_000_000_000}, token=ADMIN, expect=200)
    A.call("POST", "/jobs", {"type": "fake"}, token=tkey, expect=403)
    A.call("GET", "/jobs", token=tkey, expect=200)
    A.call("GET", "/orgs/current", token=tkey, expect=200)
    st, _, resp = A.call("GET", "/billing/balance", token=tkey, expect=429)
    check(int(resp.getheader("Retry-After")) >= 1, "429 RATE_LIMITED carries Retry-After")
    A.call("GET", "/billing/state", token=tkey, expect=429)
    A.call("GET", "/orgs/current", token=tkey, expect=429)
    A.call("POST", "/jobs", {"type": "sleep"}, token=tkey, expect=429)

    # a poor org
    _, po, _ = A.call("POST", "/admin/orgs", {"name": "poor", "plan": "big"}, token=ADMIN, expect=201)
    _, pk, _ = A.call("POST", f"/admin/orgs/{po['data']['id']}/keys", {"name": "p"}, token=ADMIN, expect=201)
    A.call("POST", "/jobs", {"type": "fake"}, token=pk["data"]["key"], expect=402)

    # ---- webhooks: an endpoint for every event, before the jobs ---------------------------
    everything = ["job.created", "job.started", "job.completed", "job.failed", "job.cancelled", "balance.low"]
    _, ep, _ = A.call("POST", "/webhooks/endpoints", {"name": "all", "url": rcv.url,
                      "subscribedEvents": everything}, token=key, expect=201)
    epid = ep["data"]["id"]
    A.call("POST", "/webhooks/endpoints", {"name": "x", "url": rcv.url, "bogus": 1}, token=key, expect=400)
    A.call("POST", "/webhooks/endpoints", {"name": "x", "url": rcv.url}, expect=401)
    A.call("GET", "/webhooks/endpoints", token=key, expect=200)
    A.call("GET", f"/webhooks/endpoints/{epid}", token=key, expect=200)
    A.call("GET", "/webhooks/endpoints/we_nope", token=key, expect=404)
    A.call("PATCH", f"/webhooks/endpoints/{epid}", {"name": "all events"}, token=key, expect=200)
    A.call("PATCH", f"/webhooks/endpoints/{epid}", {"subscribedEvents": ["job.nope"]}, token=key, expect=400)
    A.call("GET", "/webhooks/callback-secret", token=key, expect=200)
    # the old spelling, on an endpoint of its own
    _, ep2, _ = A.call("POST", "/webhook-endpoints", {"name": "old", "url": rcv.url}, token=key, expect=201)
    ep2id = ep2["data"]["id"]
    A.call("GET", "/webhook-endpoints", token=key, expect=200)
    A.call("GET", f"/webhook-endpoints/{ep2id}", token=key, expect=200)
    A.call("PATCH", f"/webhook-endpoints/{ep2id}", {"active": True}, token=key, expect=200)
    A.call("POST", f"/webhook-endpoints/{ep2id}/rotate-secret", token=key, expect=200)
    A.call("POST", f"/webhooks/endpoints/{epid}/rotate-secret", token=key, expect=200)
    A.call("POST", "/webhooks/endpoints/we_nope/rotate-secret", token=key, expect=404)
    # ten is the limit
    _, fo, _ = A.call("POST", "/admin/orgs", {"name": "full"}, token=ADMIN, expect=201)
    _, fk, _ = A.call("POST", f"/admin/orgs/{fo['data']['id']}/keys", {}, token=ADMIN, expect=201)
    for i in range(10):
        s.request("POST", "/webhooks/endpoints", {"name": f"e{i}", "url": rcv.url}, token=fk["data"]["key"])
    A.call("POST", "/webhooks/endpoints", {"name": "e10", "url": rcv.url}, token=fk["data"]["key"], expect=409)

    # ---- realtime: connected before the jobs ------------------------------------------------
    ws = WS(port, f"/realtime?token={key}")
    check(ws.status == 101 and ws.accept_ok, "GET /realtime?token= → 101 with the right Sec-WebSocket-Accept")
    check_answer("GET", "/realtime", 101, None, b"")
    sse = SSE(port, "/events", key)
    check_answer("GET", "/events", sse.status, sse.ctype, b"")
    check(sse.status == 200, "GET /events → 200 text/event-stream")
    UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    A.call("GET", "/realtime?token=rb_live_nope", headers=UPGRADE, expect=401)
    A.call("GET", "/realtime", token=key, expect=426)
    A.call("GET", "/realtime?lastEventId=x", token=key, headers=UPGRADE, expect=400)
    A.call("GET", "/events", token="rb_live_nope", expect=401)
    A.call("GET", "/events/ws/job/job_nope", token=key, headers=UPGRADE, expect=404)

    # ---- jobs -------------------------------------------------------------------------------
    ok_body = {"type": "fake", "inputs": {"a.txt": "https://example.com/a.txt", "b.txt": {"content": "hi"}},
               "params": {"mode": "ok", "delay": 0.3, "computeMs": 1500, "echo": "hi"}}
    _, j, _ = A.call("POST", "/jobs", ok_body, token=key, headers={"X-Rendobar-Client": "openapi-test/1"}, expect=201)
    a = j["data"]["id"]
    wsj = WS(port, f"/events/ws/job/{a}", token=key)
    check(wsj.status == 101, "GET /events/ws/job/{id} → 101")
    check_answer("GET", f"/events/ws/job/{a}", 101, None, b"")
    wait_job(A, key, a, ["complete"])
    A.call("GET", f"/jobs/{a}", token=key, expect=200)
    A.call("GET", "/jobs/job_nope", token=key, expect=404)
    A.call("GET", f"/jobs/{a}", expect=401)
    idem = dict(ok_body, idempotencyKey="oa-1")
    A.call("POST", "/jobs", idem, token=key, expect=201)
    _, rep, _ = A.call("POST", "/jobs", idem, token=key, expect=200)
    check(rep["data"].get("idempotent") is True, "a replay says idempotent: true")
    A.call("POST", "/jobs", {"type": "fake", "bogus": 1}, token=key, expect=400)
    A.call("POST", "/jobs", {"type": "nope"}, token=key, expect=400)
    A.call("POST", "/jobs", {"type": "fake"}, expect=401)
    A.call("POST", "/jobs", raw=b"{\"type\":\"fake\",\"params\":{\"x\":\"" + b"a" * 100_000 + b"\"}}",
           token=key, expect=413)

    f = A.call("POST", "/jobs", {"type": "fake", "params": {"mode": "fail", "code": "INPUT_FETCH_FAILED"}},
               token=key, expect=201)[1]["data"]["id"]
    wait_job(A, key, f, ["failed"])
    A.call("GET", f"/jobs/{f}", token=key, expect=200)
    A.call("POST", f"/jobs/{f}/retry", token=key, expect=200)
    A.call("POST", f"/jobs/{a}/retry", token=key, expect=409)
    A.call("POST", "/jobs/job_nope/retry", token=key, expect=404)

    r = A.call("POST", "/jobs", {"type": "fake", "params": {"mode": "ok", "delay": 3}}, token=key,
               expect=201)[1]["data"]["id"]
    wait_job(A, key, r, ["running"])
    A.call("GET", f"/jobs/{r}", token=key, expect=200)
    A.call("POST", f"/jobs/{r}/cancel", token=key, expect=200)
    A.call("POST", f"/jobs/{r}/cancel", token=key, expect=200)
    A.call("POST", f"/jobs/{a}/cancel", token=key, expect=409)
    A.call("POST", "/jobs/job_nope/cancel", token=key, expect=404)

    # dead letters: two failed deliveries exhaust the dispatch
    d = A.call("POST", "/jobs", {"type": "fake", "params": {"mode": "flaky", "bad": 9, "how": "500"},
               "idempotencyKey": "dlq-1"}, token=key, expect=201)[1]["data"]["id"]
    wait_job(A, key, d, ["failed"])
    A.call("POST", "/jobs", {"type": "fake", "idempotencyKey": "dlq-1"}, token=key, expect=409)
    _, dl, _ = A.call("GET", "/admin/dlq", token=ADMIN, expect=200)
    check(any(x["id"] == d for x in dl["data"]), "the exhausted job is in the DLQ")
    A.call("GET", "/admin/dlq", token="wrong", expect=401)
    A.call("POST", f"/admin/dlq/{d}/requeue", token=ADMIN, expect=200)
    A.call("POST", "/admin/dlq/job_nope/requeue", token=ADMIN, expect=404)
    wait_for(lambda: any(x["id"] == d for x in s.admin("GET", "/admin/dlq")[1]["data"]), timeout=20,
             what="the job back in the DLQ")
    A.call("DELETE", f"/admin/dlq/{d}", token=ADMIN, expect=200)
    A.call("DELETE", f"/admin/dlq/{d}", token=ADMIN, expect=404)

    # a job whose provider is this test: output file, logs, the /dl URLs
    m = A.call("POST", "/jobs", {"type": "fake", "params": {"mode": "never"}}, token=key, expect=201)[1]["data"]["id"]
    wait_for(lambda: prov.dispatch_of(m), what="the dispatch of the manual job")
    disp = prov.dispatch_of(m)[0]
    content = b"the output file\n"
    up = disp["output"]["uploadUrl"].replace("{path}", "out.txt")
    st, _ = s.request("PUT", up[len(f"http://127.0.0.1:{port}"):], content,
                      headers={"Content-Type": "text/plain"})
    check(st == 200, "the provider's output upload → 200")
    tok = disp["callbackToken"]
    check(post(disp["callbackUrl"], {"event": "running", "attempt": disp["attempt"]}, token=tok)[0] == 200,
          "report running")
    check(post(disp["callbackUrl"], {"event": "log", "attempt": disp["attempt"], "message": "hello",
                                      "level": "info", "step": "work"}, token=tok)[0] == 200, "report a log line")
    check(post(disp["callbackUrl"], {"event": "complete", "attempt": disp["attempt"], "computeMs": 10,
                                      "output": {"files": [{"path": "out.txt", "size": len(content)}],
                                                 "data": {"n": 1}}}, token=tok)[0] == 200, "report complete")
    wait_job(A, key, m, ["complete"])
    _, mj, _ = A.call("GET", f"/jobs/{m}", token=key, expect=200)
    url = mj["data"]["output"]["files"][0]["url"]
    dlpath = url[len(f"http://127.0.0.1:{port}"):]
    st, got, _ = A.call("GET", dlpath, expect=200)
    check(got == content, "GET /dl/{jobId}/{path} serves the file")
    A.call("GET", dlpath.replace("sig=", "sig=0"), expect=403)
    exp = int(time.time() * 1000) + 60000
    st, got, _ = A.call("GET", f"/dl/{m}/?exp={exp}&sig={sign('GET', f'/dl/{m}/', exp)}", expect=200)
    check(got == content, "GET /dl/{jobId}/ serves the first file")
    A.call("GET", f"/dl/{a}/?exp={exp}&sig={sign('GET', f'/dl/{a}/', exp)}", expect=404)
    A.call("GET", f"/dl/{a}/?exp={exp}&sig={'0' * 64}", expect=403)
    A.call("GET", f"/dl/{m}/nope.txt?exp={exp}&sig={sign('GET', f'/dl/{m}/nope.txt', exp)}", expect=404)
    _, lg, _ = A.call("GET", f"/jobs/{m}/logs", token=key, expect=200)
    check(lg["data"][0]["message"] == "hello", "GET /jobs/{id}/logs has the line")
    A.call("GET", f"/jobs/{a}/logs", token=key, expect=404)
    A.call("GET", f"/jobs/{a}/logs", expect=401)

    # lists
    now = int(time.time() * 1000) + 1000
    A.call("GET", f"/jobs?status=complete&type=fake&limit=2&offset=1&sort=created&order=desc&from=0&to={now}",
           token=key, expect=200)
    A.call("GET", "/jobs?client=openapi-test%2F1&sort=duration&order=asc", token=key, expect=200)
    A.call("GET", "/jobs?sort=cost", token=key, expect=200)
    A.call("GET", "/jobs?limit=0", token=key, expect=400)
    A.call("GET", "/jobs", expect=401)

    # ---- assets -----------------------------------------------------------------------------------
    _, asset, _ = A.call("POST", "/assets", {"name": "in.txt", "size": 5, "contentType": "text/plain"},
                         token=key, expect=201)
    aid = asset["data"]["id"]
    upath = asset["upload"]["url"][len(f"http://127.0.0.1:{port}"):]
    A.call("POST", f"/assets/{aid}/complete", token=key, expect=409)
    A.call("PUT", upath.replace("sig=", "sig=f"), raw=b"hello", headers={"Content-Type": "text/plain"},
           expect=403)
    A.call("PUT", upath, raw=b"hello", headers={"Content-Type": "text/plain"}, expect=200)
    _, done, _ = A.call("POST", f"/assets/{aid}/complete", token=key, expect=200)
    A.call("PUT", upath, raw=b"again", headers={"Content-Type": "text/plain"}, expect=409)
    A.call("GET", f"/assets/{aid}", token=key, expect=200)
    A.call("GET", "/assets/ast_nope", token=key, expect=404)
    A.call("GET", f"/assets/{aid}", expect=401)
    A.call("POST", "/assets/ast_nope/complete", token=key, expect=404)
    A.call("POST", "/assets", {"name": "../x"}, token=key, expect=400)
    A.call("POST", "/assets", {"name": "big.bin", "size": 10 ** 15}, token=key, expect=413)
    A.call("POST", "/assets", {"name": "x.txt"}, expect=401)
    st, got, _ = A.call("GET", done["data"]["url"][len(f"http://127.0.0.1:{port}"):], expect=200)
    check(got == b"hello", "the asset's url serves its bytes")
    A.call("GET", f"/blobs/assets/{aid}/in.txt?exp={exp}&sig={'0' * 64}", expect=403)
    A.call("GET", f"/blobs/assets/{aid}/other.txt?exp={exp}&sig={sign('GET', f'/blobs/assets/{aid}/other.txt', exp)}",
           expect=404)
    A.call("PUT", f"/blobs/assets/ast_nope/x.txt?exp={exp}&sig={sign('PUT', '/blobs/assets/ast_nope/x.txt', exp)}",
           raw=b"x", expect=404)

    # ---- samples --------------------------------------------------------------------------------
    os.makedirs(os.path.join(s.datadir, "samples"), exist_ok=True)
    with open(os.path.join(s.datadir, "samples", "clip.txt"), "w") as fh:
        fh.write("sample\n")
    A.call("GET", "/samples/clip.txt", expect=200)
    A.call("GET", "/samples/nope.mp4", expect=404)

    # ---- balance.low: an org that runs itself down below $0.10 ------------------------------------
    _, lo, _ = A.call("POST", "/admin/orgs", {"name": "low", "plan": "big"}, token=ADMIN, expect=201)
    _, lk, _ = A.call("POST", f"/admin/orgs/{lo['data']['id']}/keys", {}, token=ADMIN, expect=201)
    # the price is capped at the hold (1M + 10 s × 1M): 105M − 11M is under the $0.10 mark
    s.admin("POST", f"/admin/orgs/{lo['data']['id']}/credits", {"amount": 105_000_000})
    s.request("POST", "/webhooks/endpoints", {"name": "low", "url": rcv.url, "subscribedEvents": ["balance.low"]},
              token=lk["data"]["key"])
    lj = s.request("POST", "/jobs", {"type": "fake", "params": {"computeMs": 20000}}, token=lk["data"]["key"])
    check(lj[0] == 201, "the low org's job is admitted")
    wait_job(A, lk["data"]["key"], lj[1]["data"]["id"], ["complete"])

    # ---- deliveries ---------------------------------------------------------------------------------
    wait_for(lambda: {json.loads(b)["event"] for _, b in rcv.events()} >= set(everything), timeout=30,
             what="every webhook event at the receiver")
    _, dels, _ = A.call("GET", f"/webhooks/endpoints/{epid}/deliveries?limit=100&status=delivered",
                        token=key, expect=200)
    A.call("GET", f"/webhook-endpoints/{epid}/deliveries?limit=5&offset=1", token=key, expect=200)
    A.call("GET", f"/webhooks/endpoints/{epid}/deliveries?limit=0", token=key, expect=400)
    A.call("GET", "/webhooks/endpoints/we_nope/deliveries", token=key, expect=404)
    did = dels["data"][0]["id"]
    A.call("POST", f"/webhooks/endpoints/{epid}/deliveries/{did}/redeliver", token=key, expect=202)
    A.call("POST", f"/webhook-endpoints/{epid}/deliveries/{did}/redeliver", token=key, expect=202)
    A.call("POST", f"/webhooks/deliveries/{did}/redeliver", token=key, expect=202)
    A.call("POST", "/webhooks/deliveries/del_nope/redeliver", token=key, expect=404)
    A.call("POST", f"/webhooks/endpoints/{ep2id}/deliveries/{did}/redeliver", token=key, expect=404)
    wait_for(lambda: sum(1 for h, _ in rcv.events() if h.get("x-rendobar-delivery") == did) >= 2,
             what="the redelivery, with the same delivery id")
    A.call("PATCH", f"/webhooks/endpoints/{epid}", {"active": False}, token=key, expect=200)
    A.call("POST", f"/webhooks/deliveries/{did}/redeliver", token=key, expect=409)
    seen_events = set()
    for hdrs, raw in rcv.events():
        ev = json.loads(raw)
        hook = DOC["webhooks"].get(ev.get("event"))
        if hook is None:
            fail(f"a delivery of an undocumented event: {raw[:200]!r}")
        spec = hook["post"]
        errs = validate(ev, spec["requestBody"]["content"]["application/json"]["schema"])
        if errs:
            fail(f"webhook {ev.get('event')} does not match the document: {errs}\n  body: {raw[:500]!r}")
        for p in spec["parameters"]:
            if p["required"] and p["name"].lower() not in hdrs:
                fail(f"webhook {ev['event']} lacks the documented header {p['name']}")
        seen_events.add(ev["event"])
    missing = set(DOC["webhooks"]) - seen_events
    if missing:
        fail(f"documented webhook events never delivered: {sorted(missing)}")
    check(True, f"{len(rcv.events())} webhook deliveries match the document's webhooks section "
                f"({', '.join(sorted(seen_events))})")
    A.call("DELETE", f"/webhook-endpoints/{ep2id}", token=key, expect=200)
    A.call("DELETE", f"/webhooks/endpoints/{epid}", token=key, expect=200)
    A.call("DELETE", f"/webhooks/endpoints/{epid}", token=key, expect=404)

    # ---- realtime messages --------------------------------------------------------------------------
    wait_for(lambda: any('"job.status"' in t and a in t and '"complete"' in t for t in ws.texts()),
             what="job.status complete on /realtime")
    wait_for(lambda: any('"balance.updated"' in d for _, d in sse.events), what="balance.updated on /events")
    msgs = [json.loads(t) for t in ws.texts()] + [json.loads(d) for _, d in sse.events] + \
           [json.loads(t) for t in wsj.texts()]
    for msg in msgs:
        errs = validate(msg, schema_of("RealtimeEvent"))
        if errs:
            fail(f"a realtime message does not match RealtimeEvent: {errs}\n  {msg}")
    kinds = {x["type"] for x in msgs}
    check({"job.created", "job.status", "balance.updated"} <= kinds,
          f"{len(msgs)} realtime messages match RealtimeEvent ({', '.join(sorted(kinds))})")
    check(all(i == str(json.loads(d)["id"]) for i, d in sse.events if not json.loads(d).get("live")),
          "every logged SSE event has its seq as the SSE id")
    wait_for(lambda: wsj.texts(), what="the first message of /events/ws/job/{id}")
    check(json.loads(wsj.texts()[0]).get("snapshot") is True, "/events/ws/job/{id} starts with a snapshot")
    for c in (ws, wsj, sse):
        c.close()

    # ---- coverage ------------------------------------------------------------------------------------
    for op_ in PENDING:
        if op_ not in OPS:
            fail(f"PENDING names {op_}, which the document does not have")
        if op_ in EXERCISED:
            fail(f"{op_} is listed as pending but was exercised: take it off the list")
    missing = sorted(OPS - set(EXERCISED) - set(PENDING))
    if missing:
        fail("documented routes never exercised: " + ", ".join(f"{m} {p}" for m, p in missing))
    unseen = []
    for (m_, p_) in sorted(OPS):
        doc_st = {int(x) for x in DOC["paths"][p_][m_.lower()]["responses"] if x.isdigit()}
        rest = doc_st - EXERCISED.get((m_, p_), set())
        if rest:
            unseen.append(f"{m_} {p_}: {sorted(rest)}")
    print("info: documented statuses not provoked here:\n  " + "\n  ".join(unseen), flush=True)
    for op_, why in PENDING.items():
        print(f"pending: {op_[0]} {op_[1]}: {why}", flush=True)
    check(True, f"all {len(OPS) - len(PENDING)} documented operations exercised "
                f"({len(PENDING)} pending), {sum(len(v) for v in EXERCISED.values())} (route, status) pairs")
    check(s.stop() == 0, "SIGTERM → 0")
prov.close()
rcv.close()
print("openapi: all checks passed")
