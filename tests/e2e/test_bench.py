"""`jobring bench`: a tiny real run of the harness against its own server.

Lifecycle: 300 jobs over 8 connections and 3 orgs must all be acknowledged
and completed, and the JSON must hold sane numbers (every hop measured for
every job, quantiles ordered, rates positive). Then a small --mode submit,
and the SVG of --plot. Numbers are printed, never compared with a clock."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from jr import JOBRING, check


def bench(*args, timeout=300, expect_fail=False):
    r = subprocess.run([JOBRING, "bench", *args], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0 and not expect_fail:
        sys.stdout.write(r.stdout[-4000:] + "\n---- stderr ----\n" + r.stderr[-4000:] + "\n")
    return r


def hops_of(doc):
    return {h["name"]: h for h in doc["hops"]}


def sane_hop(h, n, what):
    check(h["count"] == n, f"{what}: {h['count']} of {n} measured")
    check(0 <= h["minMs"] <= h["p50Ms"] <= h["p99Ms"] <= h["p999Ms"] <= h["maxMs"],
          f"{what}: min {h['minMs']} <= p50 {h['p50Ms']} <= p99 {h['p99Ms']} "
          f"<= p99.9 {h['p999Ms']} <= max {h['maxMs']}")
    check(h["maxMs"] < 120_000, f"{what}: max {h['maxMs']} ms is below two minutes")


def main():
    tmp = tempfile.mkdtemp(prefix="jobring-bench-e2e-")
    try:
        run(os.path.join(tmp, "hops.svg"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(plot):
    # -- lifecycle ------------------------------------------------------------
    r = bench("-n", "300", "-c", "8", "--orgs", "3", "--json", "--plot", plot, "--quiet")
    check(r.returncode == 0, "bench -n 300 -c 8 --orgs 3 exits 0")
    doc = json.loads(r.stdout)
    print("lifecycle:", json.dumps({k: doc[k] for k in ("jobsPerSecond", "submitPerSecond",
                                                       "elapsedSeconds")}))
    for h in doc["hops"]:
        print(f"  {h['label']}: p50 {h['p50Ms']} ms  p99 {h['p99Ms']} ms  max {h['maxMs']} ms")
    check(doc["mode"] == "lifecycle" and doc["jobs"] == 300, "mode and job count")
    check(doc["connections"] == 8 and doc["orgs"] == 3, "connections and orgs")
    check(doc["sync"] == "full", "the server it started runs with storage.sync=full")
    check(doc["submitted"] == {"acked": 300, "rejected": 0, "errors": 0},
          f"every submit acknowledged: {doc['submitted']}")
    check(doc["completed"] == 300 and doc["failed"] == 0, "every job completed")
    hops = hops_of(doc)
    for name in ("submit", "dispatch", "running", "complete"):
        check(name in hops, f"hop {name} measured")
        sane_hop(hops[name], 300, name)
    if doc["webhooks"]["enabled"]:
        check(doc["webhooks"]["received"] == 300, "a webhook for every job")
        sane_hop(hops["webhook"], 300, "webhook")
    else:
        check("webhook" not in hops, "no webhook hop when webhooks are off")
        check(any("webhook" in n for n in doc["notes"]), "a note says why webhooks are off")
    check(doc["total"]["count"] == 300, "end to end measured for every job")
    check(doc["total"]["p50Ms"] >= hops["submit"]["p50Ms"], "end to end >= the submit hop")
    check(doc["jobsPerSecond"] > 0 and doc["submitPerSecond"] > 0, "rates are positive")
    check(doc["elapsedSeconds"] > 0, "elapsed time is positive")
    check(doc["jobsPerSecond"] <= doc["jobs"] / doc["elapsedSeconds"] * 1.01,
          "the rate is jobs / elapsed")

    with open(plot) as f:
        svg = f.read()
    check(svg.startswith("<svg ") and svg.rstrip().endswith("</svg>"), "--plot wrote an SVG")
    check(svg.count("<path ") == len(doc["hops"]), "one curve per measured hop")

    # -- submit only ------------------------------------------------------------
    r = bench("--mode", "submit", "-n", "400", "-c", "4", "--orgs", "2", "--json", "--quiet")
    check(r.returncode == 0, "bench --mode submit exits 0")
    doc = json.loads(r.stdout)
    print("submit:", json.dumps({k: doc[k] for k in ("submitPerSecond", "elapsedSeconds")}))
    check(doc["mode"] == "submit", "mode submit")
    check(doc["submitted"]["acked"] == 400, "every submit acknowledged")
    check([h["name"] for h in doc["hops"]] == ["submit"], "only the submit hop is measured")
    sane_hop(doc["hops"][0], 400, "submit")
    check(doc["submitPerSecond"] > 0, "submit rate is positive")
    check(doc["completed"] == 0, "no provider: nothing completes")

    # -- the table --------------------------------------------------------------
    r = bench("-n", "50", "-c", "2", "--orgs", "1", "--quiet", "--no-webhooks")
    check(r.returncode == 0, "a table run exits 0")
    check("waiting → dispatched" in r.stdout and "jobs/s end to end" in r.stdout,
          "the table names the hops and the rate")

    # -- usage errors -----------------------------------------------------------
    r = bench("--mode", "nonsense", expect_fail=True)
    check(r.returncode == 2, "an unknown mode is a usage error (exit 2)")
    r = bench("--mode", "soak", expect_fail=True)
    check(r.returncode == 2, "soak without --rate is a usage error")
    print("all bench checks passed")


if __name__ == "__main__":
    main()
