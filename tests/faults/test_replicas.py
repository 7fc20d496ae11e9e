"""Many replicas starting together on an empty PostgreSQL schema all come up (no CREATE races)."""

import subprocess
import sys
from pathlib import Path

REPLICAS = 12
ROOT = Path(__file__).resolve().parents[2]
# One replica's start: open the event store and the views, as the API does. It imports first, says
# "ready", then waits for "go" on stdin, so that every replica creates the schema at the same moment.
BOOT = """
import sys
from store.views import ReadModel
from store.events import open_application
print("ready", flush=True)
sys.stdin.readline()
app = open_application(sys.argv[1])
ReadModel(app, sys.argv[1])
app.close()
print("up", flush=True)
"""


def test_replicas_start_together_on_an_empty_schema(pg_schema_url):
    url = f"{pg_schema_url}&pool_size=1"  # the race, not the server's connection limit, is under test
    replicas = [subprocess.Popen([sys.executable, "-c", BOOT, url], cwd=ROOT, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(REPLICAS)]
    try:
        for replica in replicas:
            assert replica.stdout.readline().strip() == "ready", replica.stderr.read()
        for replica in replicas:  # all of them waiting: let go as close together as we can
            replica.stdin.write("go\n")
            replica.stdin.flush()
        outcomes = [replica.communicate(timeout=60) for replica in replicas]
    finally:
        for replica in replicas:
            replica.kill()
    failed = [err.strip().splitlines()[-1] for (out, err), r in zip(outcomes, replicas) if r.returncode != 0]
    assert not failed, f"{len(failed)} of {REPLICAS} replicas failed to start: {failed}"
    assert all(out.split() == ["up"] for out, _ in outcomes)
