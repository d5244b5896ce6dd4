"""storage.blobs.kind = "s3": jobring's own signed blob URLs answer 307 to
SigV4 presigned URLs of an S3 stand-in that checks every signature itself
(its own canonical request / string to sign / signing key, written from
AWS's documentation, not from our C code), stores and serves objects.

Covered: the stand-in's verifier against AWS's published example (and that
it refuses a changed signature); the assets flow (POST /assets → PUT → 307 →
the stand-in → /complete, which HEADs the object); curl -L -T with Expect:
100-continue; an empty PUT; a job whose provider PUTs its output through
the 307; GET /jobs/{id} → /dl → 307 → the bytes; HEAD /dl; a {job} input and
an asset input fetched by the real `jobring worker` through the 307; an
FFmpeg job uploading its output through the 307 (if FFmpeg is installed);
tampered jobring and S3 signatures refused; nothing written under
DATADIR/blobs."""
import calendar
import hashlib
import hmac
import http.client
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakeprov import FakeProvider
from jr import JOBRING, Server, check, free_port, wait_for

AK, SK, REGION, BUCKET = "AKIDJOBRINGTEST", "s3-test-secret/key+0123456789", "eu-west-3", "media"


# ---- SigV4, query-string form (AWS "Authenticating Requests: Using Query
# Parameters"), written independently of src/s3sign.c -------------------------

def enc(s, keep_slash=False):
    return urllib.parse.quote(s, safe="-_.~" + ("/" if keep_slash else ""))


def hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_check(method, target, host, secrets, now, region=None, skew=900):
    """None if the presigned request is genuine, current and for region
    (if given), else why not."""
    path, _, query = target.partition("?")
    q = urllib.parse.parse_qsl(query, keep_blank_values=True)
    d = dict(q)
    if len(d) != len(q):
        return "repeated parameter"
    need = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
            "X-Amz-SignedHeaders", "X-Amz-Signature"]
    if any(k not in d for k in need):
        return "missing parameter"
    if d["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256" or d["X-Amz-SignedHeaders"] != "host":
        return "algorithm or signed headers"
    cred = d["X-Amz-Credential"].split("/")
    if len(cred) != 5 or cred[3:] != ["s3", "aws4_request"] or cred[0] not in secrets:
        return "credential"
    amzdate, date = d["X-Amz-Date"], cred[1]
    if amzdate[:8] != date:
        return "date scope"
    if region is not None and cred[2] != region:
        return "AuthorizationHeaderMalformed"
    t = calendar.timegm(time.strptime(amzdate, "%Y%m%dT%H%M%SZ"))
    exp = int(d["X-Amz-Expires"])
    if not 1 <= exp <= 604800 or now > t + exp or t > now + skew:
        return "expired"
    cq = "&".join(sorted(f"{enc(k)}={enc(v)}" for k, v in q if k != "X-Amz-Signature"))
    creq = "\n".join([method, enc(urllib.parse.unquote(path), True), cq, f"host:{host.strip()}", "",
                      "host", "UNSIGNED-PAYLOAD"])
    scope = f"{date}/{cred[2]}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = hm(("AWS4" + secrets[cred[0]]).encode(), date)
    for part in (cred[2], "s3", "aws4_request"):
        k = hm(k, part)
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(want, d["X-Amz-Signature"]) else "SignatureDoesNotMatch"


class FakeS3:
    """Path-style S3: /{bucket}/{key}. PUT stores, GET serves, HEAD sizes;
    every request must carry a valid presigned query (else 403)."""

    def __init__(self):
        self.objects = {}
        self.log = []          # (method, key, status, why)
        self.lock = threading.Lock()
        s3 = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_one(self, method):
                why = sigv4_check(method, self.path, self.headers.get("Host", ""), {AK: SK}, time.time(),
                                  REGION)
                path = urllib.parse.unquote(self.path.partition("?")[0])
                bucket, _, key = path.lstrip("/").partition("/")
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if why is None and bucket != BUCKET:
                    why = "NoSuchBucket"
                st, data = 403, b"<Error><Code>" + (why or "").encode() + b"</Code></Error>"
                if why is None:
                    with s3.lock:
                        if method == "PUT":
                            s3.objects[key] = body
                            st, data = 200, b""
                        elif key in s3.objects:
                            st, data = 200, s3.objects[key]
                        else:
                            st, data = 404, b"<Error><Code>NoSuchKey</Code></Error>"
                with s3.lock:
                    s3.log.append((method, key, st, why))
                self.send_response(st)
                self.send_header("Content-Length", str(len(data)))
                if st == 200 and method == "PUT":
                    self.send_header("ETag", '"' + hashlib.md5(body).hexdigest() + '"')
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(data)

            def do_PUT(self):
                self.handle_one("PUT")

            def do_GET(self):
                self.handle_one("GET")

            def do_HEAD(self):
                self.handle_one("HEAD")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def refused(self):
        with self.lock:
            return [x for x in self.log if x[2] == 403]


def fetch(url, method="GET", body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data, r


def follow(url, method="GET", body=None):
    """One request to jobring that must answer 307 to the stand-in, then the
    same request at the Location: (status there, data, location)."""
    st, _, r = fetch(url, method, body)
    loc = r.getheader("Location") or ""
    if st != 307 or not loc.startswith(s3.endpoint + f"/{BUCKET}/"):
        return st, None, loc
    st, data, _ = fetch(loc, method, body)
    return st, data, loc


def tamper(url, name, fn):
    u = urllib.parse.urlsplit(url)
    q = [(k, fn(v) if k == name else v) for k, v in urllib.parse.parse_qsl(u.query)]
    return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))


def flip(v):
    return v[:-1] + ("0" if v[-1] != "0" else "1")


# ---- the verifier itself first: AWS's published example, and a changed byte --
EX = ("/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524"
      "%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
      "&X-Amz-SignedHeaders=host&X-Amz-Signature="
      "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
EXS = {"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
EXT = calendar.timegm((2013, 5, 24, 1, 0, 0))
check(sigv4_check("GET", EX, "examplebucket.s3.amazonaws.com", EXS, EXT) is None,
      "the stand-in's SigV4 check accepts AWS's published presigned GET")
check(sigv4_check("GET", EX[:-1] + "5", "examplebucket.s3.amazonaws.com", EXS, EXT) == "SignatureDoesNotMatch"
      and sigv4_check("PUT", EX, "examplebucket.s3.amazonaws.com", EXS, EXT) == "SignatureDoesNotMatch"
      and sigv4_check("GET", EX.replace("86400", "86401"), "examplebucket.s3.amazonaws.com", EXS, EXT)
      == "SignatureDoesNotMatch"
      and sigv4_check("GET", EX, "examplebucket.s3.amazonaws.com", EXS, EXT + 86400) == "expired",
      "…and refuses a changed signature, method or expiry, and an expired one")

s3 = FakeS3()
prov = FakeProvider()
have_ffmpeg = bool(shutil.which("ffmpeg"))
wport = free_port()
wsecret = "s3-test-worker-secret"
tmp = tempfile.mkdtemp(prefix="jobring-s3-")
worker = subprocess.Popen([JOBRING, "worker", "--listen", f"127.0.0.1:{wport}", "--jobs", "2",
                           "--secret", wsecret], stdout=subprocess.DEVNULL,
                          stderr=open(f"{tmp}/worker.log", "w"))
CFG = {
    "storage": {"blobs": {"kind": "s3", "endpoint": s3.endpoint, "bucket": BUCKET, "region": REGION,
                          "accessKey": AK, "secretKey": SK, "pathStyle": True, "expiresSeconds": 600}},
    "providers": [{"id": "fake", "url": prov.url, "secret": prov.secret, "types": ["fake"]},
                  {"id": "worker", "url": f"http://127.0.0.1:{wport}/dispatch", "secret": wsecret,
                   "types": ["checksum", "ffmpeg"], "capacity": 2}],
    "jobTypes": {"fake": {"schema": {"type": "object"}, "maxExecutionSeconds": 60}},
}


def run(s, key, body, timeout=60):
    st, j = s.request("POST", "/jobs", body, token=key)
    assert st == 201, (st, j)
    jid = j["data"]["id"]
    return wait_for(lambda: (lambda x: x if x["status"] in ("complete", "failed", "cancelled") else None)(
        s.request("GET", f"/jobs/{jid}", token=key)[1]["data"]), timeout=timeout, what=f"{jid} to finish")


try:
    with Server(CFG) as s:
        org, key = s.make_org()
        blobs = os.path.join(s.datadir, "blobs")

        # ---- an asset: POST /assets → PUT (307 → stand-in) → complete (HEAD)
        data = os.urandom(3000) + b"jobring"
        st, a = s.request("POST", "/assets", {"name": "in.bin", "size": len(data)}, token=key)
        check(st == 201 and a["upload"]["url"].startswith(s.config["publicUrl"] + "/blobs/assets/"),
              "POST /assets → our own presigned upload URL")
        aid, up = a["data"]["id"], a["upload"]["url"]
        st, _, r = fetch(up, "PUT", data)
        loc = r.getheader("Location") or ""
        check(st == 307 and loc.startswith(f"{s3.endpoint}/{BUCKET}/assets/{aid}/in.bin?")
              and "X-Amz-Signature=" in loc and "X-Amz-Expires=600" in loc,
              "the PUT answers 307 to a presigned S3 PUT of assets/{id}/{name}")
        st, c = s.request("POST", f"/assets/{aid}/complete", token=key)
        check(st == 409, "complete before the object exists → 409 (the HEAD found nothing)")
        st, _, _ = fetch(loc, "PUT", data)
        check(st == 200 and s3.objects.get(f"assets/{aid}/in.bin") == data,
              "the PUT at the Location is verified and stored by the stand-in")
        check(not os.path.exists(blobs), "nothing was written under DATADIR/blobs")
        st, c = s.request("POST", f"/assets/{aid}/complete", token=key)
        check(st == 200 and c["data"]["status"] == "ready" and c["data"]["size"] == len(data),
              "complete → ready, with the size from a presigned HEAD")
        check(any(x[:3] == ("HEAD", f"assets/{aid}/in.bin", 200) for x in s3.log),
              "the stand-in saw that HEAD, correctly signed")
        asset_url = c["data"]["url"]
        st, got, _ = follow(asset_url)
        check(st == 200 and got == data, "GET of the asset URL → 307 → the stand-in serves its bytes")

        # a tampered jobring signature never reaches S3; a tampered S3 one is refused there
        st, _, r = fetch(tamper(asset_url, "sig", flip))
        check(st == 403 and not r.getheader("Location"), "a tampered jobring signature → 403, no redirect")
        _, _, loc = follow(asset_url)
        n403 = len(s3.refused())
        st, _, _ = fetch(tamper(loc, "X-Amz-Signature", flip))
        check(st == 403 and s3.refused()[-1][3] == "SignatureDoesNotMatch" and len(s3.refused()) == n403 + 1,
              "a tampered S3 signature → 403 SignatureDoesNotMatch from the stand-in")
        st, _, _ = fetch(tamper(loc, "X-Amz-Expires", lambda v: "604800"))
        check(st == 403, "a longer X-Amz-Expires than signed → 403 from the stand-in")
        st, _, _ = fetch(loc, "PUT", b"overwrite")
        check(st == 403 and s3.objects[f"assets/{aid}/in.bin"] == data,
              "a presigned GET cannot be used to PUT")

        # curl, as a client would use it: -L -T with Expect: 100-continue
        if shutil.which("curl"):
            st, a2 = s.request("POST", "/assets", {"name": "big.bin"}, token=key)
            big = os.urandom(1 << 20) + b"tail"
            open(f"{tmp}/big.bin", "wb").write(big)
            out = subprocess.run(["curl", "-sS", "-L", "-o", "/dev/null", "-w", "%{http_code} %{num_redirects}",
                                  "-H", "Expect: 100-continue", "-T", f"{tmp}/big.bin", a2["upload"]["url"]],
                                 capture_output=True, text=True, timeout=60)
            check(out.stdout == "200 1" and s3.objects.get(f"assets/{a2['data']['id']}/big.bin") == big,
                  "curl -L -T (Expect: 100-continue) follows the 307 and lands the file in the bucket")
        # an empty PUT never goes through the body policy: still checked, still redirected
        st, a3 = s.request("POST", "/assets", {"name": "empty.txt"}, token=key)
        st, _, r = fetch(a3["upload"]["url"], "PUT", b"")
        check(st == 307 and f"/assets/{a3['data']['id']}/empty.txt?" in (r.getheader("Location") or ""),
              "an empty PUT → 307 too")
        st, _, _ = fetch(tamper(a3["upload"]["url"], "sig", flip), "PUT", b"")
        check(st == 403, "an empty PUT with a bad signature → 403")

        # ---- a job whose provider PUTs its output to uploadUrl, following the 307
        j = run(s, key, {"type": "fake", "params": {"upload": {"name": "result.txt", "text": "hello from s3"}}})
        jid = j["id"]
        check(j["status"] == "complete" and j["output"]["files"][0]["path"] == "result.txt"
              and j["output"]["files"][0]["size"] == 13, "a provider uploads its output through the 307")
        check(s3.objects.get(f"jobs/{jid}/result.txt") == b"hello from s3", "…to the object jobs/{jobId}/{name}")
        url = j["output"]["files"][0]["url"]
        check(url.startswith(s.config["publicUrl"] + f"/dl/{jid}/result.txt?"), "the output URL is our /dl URL")
        st, got, loc = follow(url)
        check(st == 200 and got == b"hello from s3", "GET /dl → 307 → the stand-in serves the output")
        st, _, r = fetch(url, "HEAD")
        st2, _, r2 = fetch(r.getheader("Location") or "", "HEAD")
        check(st == 307 and st2 == 200 and r2.getheader("Content-Length") == "13",
              "HEAD /dl → 307 to a presigned HEAD")
        st, _, r = fetch(tamper(url, "exp", lambda v: str(int(v) + 1)))
        check(st == 403, "a /dl URL with a changed expiry → 403")

        # ---- the real worker fetches a {job} input and an asset through the 307s
        j2 = run(s, key, {"type": "checksum", "inputs": {"prev": {"job": jid}, "blob": asset_url}})
        sums = ((j2.get("output") or {}).get("data") or {}).get("checksums", {})
        check(j2["status"] == "complete" and sums.get("prev") == hashlib.sha256(b"hello from s3").hexdigest()
              and sums.get("blob") == hashlib.sha256(data).hexdigest(),
              "jobring worker downloads a {job} input and an asset through the redirect")

        if have_ffmpeg:
            clip = f"{tmp}/clip.mp4"
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            "testsrc=duration=1:size=128x96:rate=10", "-pix_fmt", "yuv420p", clip], check=True)
            cd = open(clip, "rb").read()
            st, a4 = s.request("POST", "/assets", {"name": "clip.mp4", "size": len(cd)}, token=key)
            st, _, _ = follow(a4["upload"]["url"], "PUT", cd)
            st, c4 = s.request("POST", f"/assets/{a4['data']['id']}/complete", token=key)
            j3 = run(s, key, {"type": "ffmpeg", "inputs": {"in.mp4": c4["data"]["url"]},
                              "params": {"command": "ffmpeg -i in.mp4 -vf scale=64:48 out.mp4"}}, timeout=120)
            obj = s3.objects.get(f"jobs/{j3['id']}/out.mp4")
            check(j3["status"] == "complete" and obj and j3["output"]["files"][0]["size"] == len(obj),
                  "jobring worker uploads an FFmpeg output through the 307 (PUT kept, body re-sent)")
            st, got, _ = follow(j3["output"]["file"]["url"])
            check(st == 200 and got == obj and got[4:8] == b"ftyp", "…and /dl serves it back from the bucket")
        else:
            print("skip: ffmpeg is not installed (FFmpeg output upload not exercised)")

        check(not os.path.exists(blobs), "still nothing under DATADIR/blobs")
        bad = [x for x in s3.refused() if x[2] == 403]
        check(len(bad) == 3, f"the stand-in refused exactly the 3 tampered requests ({bad})")
        check(len(s3.log) >= 12, f"the stand-in verified {len(s3.log) - 3} genuine requests")
finally:
    worker.terminate()
    worker.wait(10)
    prov.close()
    s3.httpd.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
print("test_s3: ok")
