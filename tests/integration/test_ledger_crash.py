"""Kill a writer with SIGKILL at random points: everything acknowledged survives and verifies."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carewall.ledger import Ledger, verify_ledger
from carewall.storage.db import open_store

ROUNDS = 20

# Appends random-sized batches forever, printing "first count batch" only after append
# returns (i.e. after commit), and publishing every third batch.
WRITER = """
import random, sys
from pathlib import Path
from carewall.ledger import Ledger
from carewall.storage.db import open_store
url, key, tag = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
lg = Ledger.open(open_store(url), key)
rng = random.Random(tag)
print("ready", flush=True)
batch = 0
while True:
    n = rng.randint(1, 400)
    datas = [b'{"b":%d,"j":%d,"kind":"policy","t":%d,"v":1}' % (batch, j, tag) for j in range(n)]
    first = lg.append_raw(datas)[0]
    print(first, n, batch, flush=True)
    if batch % 3 == 0:
        lg.publish()
    batch += 1
"""


def expected(tag: int, batch: int, n: int) -> list[bytes]:
    return [b'{"b":%d,"j":%d,"kind":"policy","t":%d,"v":1}' % (batch, j, tag) for j in range(n)]


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_entry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    key = tmp_path / "crash.key"
    store = open_store(url)
    ledger = Ledger.create(store, "crash.test/log", key)
    rng = random.Random(20261121)
    acked: list[tuple[int, int, int, int]] = []
    for tag in range(ROUNDS):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(key), str(tag)],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        for line in out.split(b"\n"):
            parts = line.split()
            if len(parts) == 3:  # a line cut short by the kill is not an acknowledgement
                first, n, batch = map(int, parts)
                acked.append((tag, first, n, batch))
        for tag_, first, n, batch in acked:
            assert ledger.entries(first, first + n) == expected(tag_, batch, n)
        report = verify_ledger(store)
        assert report.ok, report.faults
    assert len({a[0] for a in acked}) >= ROUNDS // 2  # most rounds got some work acknowledged
    store.dispose()
