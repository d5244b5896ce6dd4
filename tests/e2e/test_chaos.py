"""The chaos test, short enough for every run of scripts/test: a fixed seed,
75 s of load across five orgs with every kind of fault (kill -9 of actors and
of the whole server, provider and worker pauses, a full LMDB map, failing
webhook receivers, dropped realtime clients), then the whole checker of
tests/chaos/chaos.py. Its exit status is chaos.py's; longer runs with other
seeds: scripts/chaos --seed S --duration T --jobs N."""
import os
import subprocess
import sys

JOBRING = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/jobring"
CHAOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chaos", "chaos.py")

r = subprocess.run([sys.executable, CHAOS, "--jobring", JOBRING, "--seed", "20261128",
                    "--duration", "75", "--jobs", "180"])
sys.exit(r.returncode)
