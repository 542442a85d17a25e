"""The Ledger API on SQLite and PostgreSQL: create/open, append, publish, proofs, tiles, fsck."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import carewall.ledger
from carewall.errors import ConflictError, InputError, LedgerError, StorageError
from carewall.ledger import Ledger, verify_ledger
from carewall.ledger.checkpoint import open_checkpoint
from carewall.ledger.merkle import verify_consistency, verify_inclusion
from carewall.ledger.note import Verifier
from carewall.ledger.tiles import encode_entry_bundle
from carewall.storage.db import Store, open_store

ORIGIN = "test.carewall.example/log"


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash, written out independently of carewall.ledger."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def raw(i: int) -> bytes:
    return b'{"kind":"policy","n":%d,"v":1}' % i


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    s = open_store(url)
    yield s
    s.dispose()


@pytest.fixture
def lite(sqlite_url: str) -> Iterator[Store]:
    """SQLite only, for checks that never reach backend-specific SQL."""
    s = open_store(sqlite_url)
    yield s
    s.dispose()


@pytest.fixture
def lite_ledger(lite: Store, key_path: Path) -> Ledger:
    return Ledger.create(lite, ORIGIN, key_path)


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "log.key"


@pytest.fixture
def ledger(store: Store, key_path: Path) -> Ledger:
    return Ledger.create(store, ORIGIN, key_path)


def test_public_surface_is_pinned() -> None:
    assert sorted(carewall.ledger.__all__) == [
        "Fault",
        "Ledger",
        "VerifyReport",
        "check_entry",
        "check_origin",
        "create_key",
        "default_key_path",
        "encode_entry",
        "load_key",
        "verify_ledger",
    ]


def test_create_writes_an_owner_only_key_and_records_origin(
    ledger: Ledger, store: Store, key_path: Path
) -> None:
    assert os.stat(key_path).st_mode & 0o777 == 0o600
    assert ledger.verifier_key.startswith(ORIGIN + "+")
    reopened = Ledger.open(store)
    assert (reopened.origin, reopened.verifier_key) == (ORIGIN, ledger.verifier_key)
    assert not reopened.writable
    assert Ledger.open(store, key_path).writable


def test_create_refuses_a_second_ledger_and_an_existing_key(
    ledger: Ledger, store: Store, tmp_path: Path, key_path: Path
) -> None:
    other = tmp_path / "other.key"
    with pytest.raises(ConflictError):
        Ledger.create(store, ORIGIN, other)
    assert not other.exists()
    before = key_path.read_bytes()
    fresh = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    with pytest.raises(InputError, match="already exists"):
        Ledger.create(fresh, ORIGIN, key_path)
    assert key_path.read_bytes() == before
    fresh.dispose()


@pytest.mark.parametrize("origin", ["", "has space", "a+b", "line\nbreak"])
def test_create_refuses_bad_origins(lite: Store, key_path: Path, origin: str) -> None:
    with pytest.raises(InputError) as e:
        Ledger.create(lite, origin, key_path)
    assert e.value.field == "origin"
    assert not key_path.exists()


def test_open_refuses_group_readable_and_foreign_keys(
    ledger: Ledger, store: Store, key_path: Path, tmp_path: Path
) -> None:
    key_path.chmod(0o640)
    with pytest.raises(InputError, match="group or others") as e:
        Ledger.open(store, key_path)
    assert "chmod 600" in (e.value.fix or "")
    key_path.chmod(0o600)
    other_db = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    Ledger.create(other_db, ORIGIN, tmp_path / "other.key")
    with pytest.raises(InputError, match="does not belong"):
        Ledger.open(store, tmp_path / "other.key")
    with pytest.raises(InputError, match="does not exist"):
        Ledger.open(store, tmp_path / "missing.key")
    other_db.dispose()


def test_open_without_a_ledger_says_so(store: Store) -> None:
    with pytest.raises(LedgerError, match="holds no ledger"):
        Ledger.open(store)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ([1, 2], "entries[1]"),
        ({"kind": "policy"}, "entries[1].v"),
        ({"v": True, "kind": "policy"}, "entries[1].v"),
        ({"v": 2, "kind": "policy"}, "entries[1].v"),
        ({"v": 1, "kind": "gossip"}, "entries[1].kind"),
        ({"v": 1}, "entries[1].kind"),
        ({"v": 1, "kind": "policy", "x": float("nan")}, "entries[1]"),
    ],
)
def test_append_refuses_bad_entries_and_appends_nothing(
    lite_ledger: Ledger, entry: object, field: str
) -> None:
    with pytest.raises(InputError) as e:
        lite_ledger.append([{"v": 1, "kind": "policy"}, entry])  # type: ignore[list-item]
    assert e.value.field == field
    assert lite_ledger.size() == 0


def test_entries_are_stored_in_canonical_form(ledger: Ledger) -> None:
    assert ledger.append([{"v": 1, "kind": "review", "b": [2, 1], "a": "é"}]) == [0]
    assert ledger.entries(0, 1) == ['{"a":"é","b":[2,1],"kind":"review","v":1}'.encode()]


def test_roots_and_proofs_match_an_independent_tree(ledger: Ledger) -> None:
    rng = random.Random(7)
    datas: list[bytes] = []
    while len(datas) < 300:
        batch = [raw(len(datas) + j) for j in range(rng.randint(1, 40))]
        assert ledger.append_raw(batch) == list(range(len(datas), len(datas) + len(batch)))
        datas.extend(batch)
    leaves = [leaf(d) for d in datas]
    assert ledger.size() == len(datas)
    assert ledger.entries(0, len(datas)) == datas
    for size in (1, 2, 3, 7, 8, 9, 255, 256, 257, len(datas)):
        root = ledger.root(size)
        assert root == mth(leaves[:size])
        for index in {0, size // 2, size - 1}:
            verify_inclusion(index, size, leaves[index], ledger.inclusion_proof(index, size), root)
        for m in {1, size // 3 or 1, size - 1 or 1, size}:
            proof = ledger.consistency_proof(m, size)
            verify_consistency(m, size, mth(leaves[:m]), root, proof)
    assert ledger.root(0) == hashlib.sha256(b"").digest()


def test_append_in_commits_and_rolls_back_with_the_caller(ledger: Ledger, store: Store) -> None:
    with store.write() as conn:
        assert ledger.append_in(conn, [{"v": 1, "kind": "notice"}]) == [0]
    assert ledger.size() == 1
    with pytest.raises(RuntimeError), store.write() as conn:
        ledger.append_in(conn, [{"v": 1, "kind": "notice"}])
        raise RuntimeError("caller fails after appending")
    assert ledger.size() == 1
    assert ledger.append([{"v": 1, "kind": "notice", "n": 2}]) == [1]


def test_publish_signs_growing_checkpoints(ledger: Ledger) -> None:
    verifier = Verifier.from_vkey(ledger.verifier_key)
    first = ledger.checkpoint()
    cp0 = open_checkpoint(first, [verifier])
    assert (cp0.origin, cp0.size) == (ORIGIN, 0)
    ledger.append_raw([raw(i) for i in range(5)])
    note = ledger.publish()
    assert ledger.publish() == note
    cp = open_checkpoint(note, [verifier])
    assert (cp.size, bytes(cp.root)) == (5, ledger.root(5))
    assert ledger.checkpoint() == note
    assert [s for s, _ in ledger.checkpoints()] == [0, 5]


def test_read_only_ledger_cannot_publish(ledger: Ledger, store: Store) -> None:
    ro = Ledger.open(store)
    with pytest.raises(LedgerError, match="read-only"):
        ro.checkpoint()
    ledger.publish()
    assert ro.checkpoint() == ledger.checkpoint()


def test_tiles_and_entry_bundles(ledger: Ledger) -> None:
    datas = [raw(i) for i in range(600)]
    ledger.append_raw(datas)
    leaves = [leaf(d) for d in datas]
    assert ledger.tile(0, 0, None) == b"".join(leaves[:256])
    assert ledger.tile(0, 2, 88) == b"".join(leaves[512:600])
    assert ledger.tile(1, 0, 2) == mth(leaves[:256]) + mth(leaves[256:512])
    assert ledger.entry_bundle(1, None) == encode_entry_bundle(datas[256:512])
    assert ledger.entry_bundle(2, 88) == encode_entry_bundle(datas[512:600])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda lg: lg.inclusion_proof(10, 10), "index 10"),
        (lambda lg: lg.inclusion_proof(0, 11), "larger than the log"),
        (lambda lg: lg.consistency_proof(5, 4), "no consistency proof"),
        (lambda lg: lg.consistency_proof(0, 4), "no consistency proof"),
        (lambda lg: lg.consistency_proof(2, 11), "larger than the log"),
        (lambda lg: lg.root(11), "larger than the log"),
        (lambda lg: lg.tile(0, 0, None), "not available"),
        (lambda lg: lg.tile(0, 0, 11), "not available"),
        (lambda lg: lg.tile(0, 0, 256), "1 to 255"),
        (lambda lg: lg.tile(1, 0, 1), "not available"),
        (lambda lg: lg.entry_bundle(0, 11), "not available"),
        (lambda lg: lg.entries(5, 11), "larger than the log"),
        (lambda lg: lg.entries(5, 4), "start <= end"),
    ],
)
def test_parameter_errors_are_ledger_errors(lite_ledger: Ledger, call: object, match: str) -> None:
    lite_ledger.append_raw([raw(i) for i in range(10)])
    with pytest.raises(LedgerError, match=match):
        call(lite_ledger)  # type: ignore[operator]


def test_verify_passes_on_a_healthy_log(ledger: Ledger, store: Store) -> None:
    for n in (1, 2, 5, 100, 300):
        ledger.append_raw([raw(i) for i in range(n)])
        ledger.publish()
    report = verify_ledger(store)
    assert report.ok, report.faults
    assert (report.size, report.checkpoints) == (408, 5)
    assert report.nodes == 408 + 408 - bin(408).count("1")  # leaves + perfect subtrees above


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_of_any_size_store_every_completed_subtree_once_and_right(
    ledger: Ledger, store: Store, seed: int
) -> None:
    """Batches that start on odd sizes, end on powers of two and cross them: each batch's
    new perfect subtrees are hashed level by level against the frontier (a right child's
    sibling comes from it), and fsck re-derives every stored node from the entries."""
    rng = random.Random(seed)
    size = 0
    for n in [1, 1, 2, 4, 1, 7, 16, 33, 64, 1, 127, 255, 256, 3]:
        n = rng.choice([n, rng.randint(1, 300)])
        ledger.append_raw([raw(size + j) for j in range(n)])
        size += n
        assert ledger.root(size) == mth([leaf(raw(i)) for i in range(size)])
    report = verify_ledger(store)
    assert report.ok, report.faults
    assert report.size == size
    assert report.nodes == size + size - bin(size).count("1")  # no node missing or extra


@pytest.mark.parametrize(("level", "why"), [(2, "a frontier node"), (0, "a gap in the entries")])
def test_a_missing_frontier_node_refuses_the_append_and_appends_nothing(
    ledger: Ledger, store: Store, level: int, why: str
) -> None:
    """A node the next append hashes against, lost (a bad restore, a hand edit): the append
    must refuse, never hash against something else and fork the tree."""
    ledger.append_raw([raw(i) for i in range(13)])  # 13 = 0b1101: frontier at levels 3, 2, 0
    root = ledger.root(13)
    with store.write() as conn:
        if level == 0:  # the newest entry moved up: the size read spans a gap
            conn.exec_driver_sql("UPDATE ledger_entries SET idx = 99 WHERE idx = 12")
        else:
            conn.exec_driver_sql(
                f"DELETE FROM ledger_nodes WHERE level = {level} AND idx = {(13 >> level) - 1}"
            )
    with pytest.raises(LedgerError, match="frontier is incomplete"):
        ledger.append_raw([raw(13)])
    with store.write() as conn:  # put it back: the log is as it was, nothing appended
        if level == 0:
            conn.exec_driver_sql("UPDATE ledger_entries SET idx = 12 WHERE idx = 99")
    if level == 0:
        assert ledger.size() == 13 and ledger.root(13) == root, why


def test_a_head_read_under_the_lock_appends_once(ledger: Ledger, store: Store) -> None:
    ledger.append_raw([raw(0), raw(1), raw(2)])
    with store.write() as conn:
        head, (rows,) = ledger.head_in(conn, [("SELECT count(*) FROM ledger_entries", ())])
        assert head.size == 3 and rows == [(3,)]  # the reads run under the same lock
        assert ledger.append_encoded_in(conn, [raw(3)], head) == [3]
        with pytest.raises(LedgerError, match="only once"):
            ledger.append_encoded_in(conn, [raw(4)], head)
    assert ledger.size() == 4
    assert verify_ledger(store).ok


def test_a_stale_head_fails_the_transaction_and_never_forks_the_tree(
    ledger: Ledger, store: Store
) -> None:
    ledger.append_raw([raw(0)])
    with pytest.raises(StorageError), store.write() as conn:
        head, _ = ledger.head_in(conn)
        ledger.append_encoded_in(conn, [raw(1)])  # another append in between, without it
        ledger.append_encoded_in(conn, [raw(2)], head)  # index 1 again: refused
    assert ledger.size() == 1  # the whole transaction rolled back
    assert verify_ledger(store).ok


def test_entries_encoded_ahead_are_checked_like_any_append(ledger: Ledger) -> None:
    with pytest.raises(InputError) as e:
        ledger.encode([{"v": 1, "kind": "no-such-kind", "time": "2026-01-01T00:00:00Z"}])
    assert e.value.field == "entries[0].kind"
    with pytest.raises(InputError, match="over the log's limit"):
        ledger.encode([{"v": 1, "kind": "policy", "time": "x", "text": "a" * 70_000}])
