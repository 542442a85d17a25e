"""Several processes append at once: one gap-free log, each acknowledged index holds its entry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from carewall.ledger import Ledger, verify_ledger
from carewall.storage.db import open_store

WRITERS = 4
BATCHES = 25

WRITER = """
import random, sys, time
from pathlib import Path
from carewall.ledger import Ledger
from carewall.storage.db import open_store
url, key, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[4])
tag, batches = int(sys.argv[3]), int(sys.argv[5])
lg = Ledger.open(open_store(url), key)
rng = random.Random(tag)
while not go.exists():
    time.sleep(0.01)
for batch in range(batches):
    n = rng.randint(1, 40)
    datas = [b'{"b":%d,"j":%d,"kind":"request","t":%d,"v":1}' % (batch, j, tag) for j in range(n)]
    first = lg.append_raw(datas)[0]
    print(first, n, batch, flush=True)
    if batch % 5 == 0:
        lg.publish()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]
)
def test_concurrent_appenders_share_one_gap_free_log(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("pg_url" if backend == "postgres" else "sqlite_url")
    key = tmp_path / "log.key"
    go = tmp_path / "go"
    store = open_store(url)
    ledger = Ledger.create(store, "concurrent.test/log", key)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(key), str(t), str(go), str(BATCHES)],
            stdout=subprocess.PIPE,
        )
        for t in range(WRITERS)
    ]
    go.touch()
    owner: dict[int, bytes] = {}
    for tag, proc in enumerate(procs):
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        lines = out.decode().split()
        assert len(lines) == 3 * BATCHES
        for k in range(0, len(lines), 3):
            first, n, batch = map(int, lines[k : k + 3])
            for j in range(n):
                assert first + j not in owner, "an index was handed out twice"
                owner[first + j] = b'{"b":%d,"j":%d,"kind":"request","t":%d,"v":1}' % (
                    batch,
                    j,
                    tag,
                )
    size = ledger.size()
    assert sorted(owner) == list(range(size))
    assert ledger.entries(0, size) == [owner[i] for i in range(size)]
    ledger.publish()
    report = verify_ledger(store)
    assert report.ok, report.faults
    store.dispose()
