"""A real FFmpeg job through the whole server and the reference worker: a
clip uploaded through the assets flow, the output downloaded through /dl
and probed; inline {content} and {job} inputs; presigned URLs that are
tampered with or expired → 403."""
import hashlib
import hmac
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

from jr import JOBRING, Server, check, free_port, wait_for

if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
    print("skip: ffmpeg is not installed")
    sys.exit(77)

KEY = "sk_test_signing_key_0123456789"   # jr.Server's signingKey
wport = free_port()
secret = "test-worker-secret"
tmp = tempfile.mkdtemp(prefix="jobring-ffmpeg-")
worker = subprocess.Popen([JOBRING, "worker", "--listen", f"127.0.0.1:{wport}", "--jobs", "2",
                           "--secret", secret], stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/worker.log", "w"))
CFG = {"providers": [{"id": "local", "url": f"http://127.0.0.1:{wport}/dispatch", "secret": secret,
                      "capacity": 2}]}


def fetch(url, method="GET", body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def run(s, key, body, timeout=60):
    st, j = s.request("POST", "/jobs", body, token=key)
    assert st == 201, (st, j)
    jid = j["data"]["id"]
    return wait_for(lambda: (lambda x: x if x["status"] in ("complete", "failed", "cancelled") else None)(
        s.request("GET", f"/jobs/{jid}", token=key)[1]["data"]), timeout=timeout, what=f"{jid} to finish")


try:
    clip = f"{tmp}/clip.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=duration=1:size=128x96:rate=10", "-pix_fmt", "yuv420p", clip], check=True)
    data = open(clip, "rb").read()
    with Server(CFG) as s:
        org, key = s.make_org()
        # the assets flow
        st, a = s.request("POST", "/assets", {"name": "clip.mp4", "size": len(data)}, token=key)
        check(st == 201 and a["status"] == "pending" and a["upload"]["url"].startswith("http"),
              "POST /assets → a presigned upload URL")
        st, _ = fetch(a["upload"]["url"], "PUT", data, {"Content-Type": "video/mp4"})
        check(st == 200, "PUT to the presigned URL")
        st, done = s.request("POST", f"/assets/{a['data']['id']}/complete", token=key)
        check(st == 200 and done["data"]["status"] == "ready" and done["data"]["size"] == len(data),
              "POST /assets/{id}/complete → ready, with its URL")
        asset_url = done["data"]["url"]

        j = run(s, key, {"type": "ffmpeg", "inputs": {"in.mp4": asset_url},
                         "params": {"command": "ffmpeg -i in.mp4 -vf scale=64:48 out.mp4"}})
        check(j["status"] == "complete" and j["output"]["files"][0]["path"] == "out.mp4"
              and j["output"]["expiresAt"] > time.time() * 1000, "a real FFmpeg job completes")
        url = j["output"]["file"]["url"]
        st, out = fetch(url)
        check(st == 200 and len(out) == j["output"]["files"][0]["size"], "its output downloads from /dl without a key")
        open(f"{tmp}/out.mp4", "wb").write(out)
        probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
                                           f"{tmp}/out.mp4"], capture_output=True, text=True).stdout)
        v = [x for x in probe["streams"] if x["codec_type"] == "video"][0]
        check((v["width"], v["height"]) == (64, 48), "ffprobe: the output is 64x48")
        time.sleep(0.01)
        j2 = s.request("GET", f"/jobs/{j['id']}", token=key)[1]["data"]
        check(j2["output"]["file"]["url"] != url and j2["output"]["expiresAt"] > j["output"]["expiresAt"],
              "every GET signs fresh URLs with a later expiry")

        # presigned URLs: tampered and expired → 403
        u = urllib.parse.urlsplit(url)
        q = dict(urllib.parse.parse_qsl(u.query))
        bad = url.replace(q["sig"], ("0" if q["sig"][0] != "0" else "1") + q["sig"][1:])
        check(fetch(bad)[0] == 403, "a tampered signature → 403")
        check(fetch(url.replace("out.mp4", "other.mp4"))[0] == 403, "a signature for another path → 403")
        exp = int(time.time() * 1000) - 1000
        sig = hmac.new(KEY.encode(), f"GET\n{u.path}\n{exp}".encode(), hashlib.sha256).hexdigest()
        check(fetch(f"http://127.0.0.1:{s.port}{u.path}?exp={exp}&sig={sig}")[0] == 403,
              "an expired (validly signed) URL → 403")
        exp2 = int(time.time() * 1000) + 60000
        sig2 = hmac.new(KEY.encode(), f"GET\n{u.path}\n{exp2}".encode(), hashlib.sha256).hexdigest()
        check(fetch(f"http://127.0.0.1:{s.port}{u.path}?exp={exp2}&sig={sig2}")[0] == 200,
              "…and the same URL signed with a future expiry works (the check is real)")

        # {job: id}: a completed job's output as an input; {content}: inline text
        p = run(s, key, {"type": "ffprobe", "inputs": {"in.mp4": {"job": j["id"]}}, "params": {"input": "in.mp4"}})
        streams = (p.get("output") or {}).get("data") or {}
        check(p["status"] == "complete" and any(x.get("width") == 64 for x in streams.get("streams", [])),
              "a {job} input resolves to that job's output (ffprobe sees 64x48)")
        text = "hello, jobring\n" * 10
        c = run(s, key, {"type": "checksum", "inputs": {"notes.txt": {"content": text}}})
        got = (c.get("output") or {}).get("data", {}).get("checksums", {}).get("notes.txt")
        check(c["status"] == "complete" and got == hashlib.sha256(text.encode()).hexdigest(),
              "an inline {content} input reaches the provider byte for byte")
        st, logs = s.request("GET", f"/jobs/{j['id']}/logs", token=key)
        check(st == 200 and any("ffmpeg" in l["message"] for l in logs["data"]), "the provider's log lines are kept")
        bad = run(s, key, {"type": "ffmpeg", "inputs": {"in.mp4": asset_url},
                           "params": {"command": "ffmpeg -f lavfi -i testsrc out.mp4"}})
        check(bad["status"] == "failed" and bad["error"]["code"] == "VALIDATION_ERROR",
              "a sandbox violation fails the job with VALIDATION_ERROR")
        s.stop()
        rc, out = s.check_store()
        check(rc == 0, "jobring check passes: " + out.strip())
finally:
    worker.terminate()
    worker.wait(10)
    shutil.rmtree(tmp, ignore_errors=True)
print("ffmpeg: all checks passed")
