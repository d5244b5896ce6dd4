"""The dashboard in a real browser: starts the server with the fake provider
and runs tests/browser/dashboard.js (playwright-core driving Debian's
Chromium), which logs in, watches jobs submitted through the API appear
and complete, requeues a dead letter, and saves screenshots into the build
directory.

Skips (exit 77) when Chromium, node or npm is missing, or when
playwright-core cannot be installed from npm; never downloads a browser."""
import os
import shutil
import subprocess
import sys

from fakeprov import FakeProvider
from jr import ADMIN, JOBRING, Server, check

CHROMIUM = "/usr/bin/chromium"
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "browser", "dashboard.js")
BUILD = os.path.dirname(JOBRING)
DEPS = os.path.join(BUILD, "browser-deps")
OUT = os.path.join(BUILD, "dashboard-screens")


def skip(why):
    print(f"SKIP: {why}", flush=True)
    raise SystemExit(77)


if not os.access(CHROMIUM, os.X_OK):
    skip(f"{CHROMIUM} is not installed (scripts/bootstrap installs Debian's chromium)")
node, npm = shutil.which("node"), shutil.which("npm")
if not node or not npm:
    skip("node and npm are needed to drive the browser")
if not os.path.exists(os.path.join(DEPS, "node_modules", "playwright-core", "package.json")):
    os.makedirs(DEPS, exist_ok=True)
    try:
        r = subprocess.run([npm, "install", "--prefix", DEPS, "--no-audit", "--no-fund", "--loglevel=error",
                            "playwright-core@1"], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"))
    except subprocess.TimeoutExpired:
        skip("npm install playwright-core timed out")
    if r.returncode != 0:
        lines = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
        skip("npm install playwright-core failed: " + " / ".join(lines[:3])[:300])
check(True, "playwright-core is in " + DEPS)
os.makedirs(OUT, exist_ok=True)

prov = FakeProvider()
CFG = {
    "providers": [{"id": "fake", "url": prov.url, "secret": prov.secret, "types": ["fake"], "capacity": 8}],
    "jobTypes": {"fake": {"schema": {"type": "object"}, "maxExecutionSeconds": 60,
                          "price": {"base": 1000000, "perSecond": 1000000, "estimateSeconds": 10}}},
    "dispatch": {"maxAttempts": 2, "backoffMs": 100, "backoffMaxMs": 400, "timeoutMs": 2000},
    "plans": {"big": {"concurrentJobs": 100, "requestsPerMinute": 100000, "maxJobTimeout": 900,
                      "queueLimit": 100000}},
}

with Server(CFG) as s:
    org, key = s.make_org(plan="big", credits=50_000_000_000, name="Acme Studio")
    env = dict(os.environ, JR_URL=f"http://127.0.0.1:{s.port}", JR_KEY=key, JR_ADMIN=ADMIN, JR_OUT=OUT,
               JR_CHROMIUM=CHROMIUM, NODE_PATH=os.path.join(DEPS, "node_modules"),
               JR_RUNFILE=os.path.join(s.datadir, "jobring.run"))
    try:
        r = subprocess.run([node, SCRIPT], env=env, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as e:
        sys.stdout.write((e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""))
        check(False, "the browser run finished within 240 s")
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stdout.write(r.stderr[-3000:])
    check(r.returncode == 0, "the browser checks pass")
    for name in ("dashboard.png", "dashboard-dlq.png", "dashboard-poll.png"):
        p = os.path.join(OUT, name)
        check(os.path.getsize(p) > 10000, f"screenshot {p}")
    check(s.stop() == 0, "SIGTERM → 0")
prov.close()
print("dashboard: all checks passed")
