"""Being a witness (carewall.witness.server.Witness) over a real SQLite store: every answer
the C2SP tlog-witness spec names, and the attacks on a witness, each a named test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from carewall.ledger import Ledger
from carewall.ledger.note import Signer, parse_note
from carewall.storage import migrate
from carewall.storage.db import Store, open_store
from carewall.witness.config import WitnessedLog
from carewall.witness.cosignature import Cosigner, cosigned_by
from carewall.witness.protocol import format_add_checkpoint, parse_size
from carewall.witness.server import Witness

ENTRY = {"v": 1, "kind": "notice", "request": "r", "time": "2026-01-01T00:00:00Z"}


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    log_db = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    wit_db = open_store(f"sqlite:///{tmp_path / 'witness.db'}")
    migrate.upgrade(wit_db)
    yield log_db, wit_db
    log_db.dispose()
    wit_db.dispose()


@pytest.fixture
def ledger(stores: tuple[Store, Store], tmp_path: Path) -> Ledger:
    return Ledger.create(stores[0], "carewall.test/log", tmp_path / "log.key")


@pytest.fixture
def witness(stores: tuple[Store, Store], ledger: Ledger) -> Witness:
    verifier = Signer.from_skey(
        (Path(ledger.store.url.split(":///")[1]).parent / "log.key").read_text()
    ).verifier()
    logs = {ledger.origin: WitnessedLog(ledger.origin, (verifier,))}
    return Witness(
        stores[1], Cosigner(Signer.generate("witness.test/w1")), logs, clock=lambda: 1700000000
    )


def grow(ledger: Ledger, n: int) -> str:
    ledger.append([dict(ENTRY, request=f"r{i}") for i in range(n)])
    return ledger.publish()


def ask(w: Witness, ledger: Ledger, old: int, note: str) -> tuple[int, bytes]:
    size = int(parse_note(note).text.split("\n")[1])
    proof = [] if old in (0, size) else ledger.consistency_proof(old, size)
    a = w.add_checkpoint(format_add_checkpoint(old, proof, note))
    return a.status, a.body


def test_first_checkpoint_is_cosigned_and_verifies(witness: Witness, ledger: Ledger) -> None:
    note = grow(ledger, 3)
    status, body = ask(witness, ledger, 0, note)
    assert status == 200 and body.startswith("— witness.test/w1 ".encode())
    assert cosigned_by(note + body.decode(), [witness.cosigner.key])


def test_growth_with_a_consistency_proof_is_cosigned(witness: Witness, ledger: Ledger) -> None:
    assert ask(witness, ledger, 0, grow(ledger, 3))[0] == 200
    assert ask(witness, ledger, 3, grow(ledger, 5))[0] == 200


def test_wrong_old_size_is_409_with_the_witness_size(witness: Witness, ledger: Ledger) -> None:
    assert ask(witness, ledger, 0, grow(ledger, 3))[0] == 200
    note = grow(ledger, 2)
    a = witness.add_checkpoint(format_add_checkpoint(0, [], note))
    assert (a.status, a.media_type) == (409, "text/x.tlog.size")
    assert parse_size(a.body) == 3


def test_replayed_old_checkpoint_is_refused(witness: Witness, ledger: Ledger) -> None:
    old_note = grow(ledger, 3)
    assert ask(witness, ledger, 0, old_note)[0] == 200
    assert ask(witness, ledger, 3, grow(ledger, 2))[0] == 200
    a = witness.add_checkpoint(format_add_checkpoint(3, [], old_note))
    assert a.status == 409 and parse_size(a.body) == 5


def test_smaller_tree_is_refused(witness: Witness, ledger: Ledger) -> None:
    small = grow(ledger, 2)
    big = grow(ledger, 3)
    assert ask(witness, ledger, 0, big)[0] == 200
    assert witness.add_checkpoint(format_add_checkpoint(5, [], small)).status == 400


def test_forked_tree_is_never_cosigned(witness: Witness, ledger: Ledger, tmp_path: Path) -> None:
    assert ask(witness, ledger, 0, grow(ledger, 3))[0] == 200
    # Same key, another database: the split view.
    other_db = open_store(f"sqlite:///{tmp_path / 'fork.db'}")
    key = tmp_path / "log.key"
    fork = Ledger.open(_copy_ledger(ledger, other_db), key)
    fork.append([dict(ENTRY, request="other")] * 4)
    fnote = fork.publish()
    proof = fork.consistency_proof(3, 4)  # the fork's own proof cannot match the witness root
    a = witness.add_checkpoint(format_add_checkpoint(3, proof, fnote))
    assert a.status == 422
    same_size = Ledger.open(
        _copy_ledger(ledger, open_store(f"sqlite:///{tmp_path / 'f2.db'}")), key
    )
    assert (
        witness.add_checkpoint(format_add_checkpoint(3, [], _at_size_3_other(same_size))).status
        == 422
    )
    other_db.dispose()


def _copy_ledger(src: Ledger, dst: Store) -> Store:
    migrate.upgrade(dst)
    with src.store.read() as r, dst.write() as w:
        for t in ("ledger_meta",):
            for row in r.exec_driver_sql(f"SELECT key, value FROM {t}"):
                w.exec_driver_sql(f"INSERT INTO {t} (key, value) VALUES (?, ?)", tuple(row))
    return dst


def _at_size_3_other(ledger: Ledger) -> str:
    ledger.append([dict(ENTRY, request=f"x{i}") for i in range(3)])
    return ledger.publish()


def test_unknown_origin_is_404(witness: Witness, tmp_path: Path) -> None:
    other = Ledger.create(
        open_store(f"sqlite:///{tmp_path / 'o.db'}"), "other.test/log", tmp_path / "o.key"
    )
    note = grow(other, 1)
    assert witness.add_checkpoint(format_add_checkpoint(0, [], note)).status == 404


def test_bad_log_signature_is_403(witness: Witness, ledger: Ledger) -> None:
    note = grow(ledger, 2)
    impostor = Signer.generate("carewall.test/log")
    sig = note.rsplit(" ", 1)[1]
    flipped = sig[:20] + ("A" if sig[20] != "A" else "B") + sig[21:]
    forged = parse_note(note).text + "\n— carewall.test/log " + flipped
    assert witness.add_checkpoint(format_add_checkpoint(0, [], forged)).status == 403
    from carewall.ledger.note import sign_note

    assert (
        witness.add_checkpoint(
            format_add_checkpoint(0, [], sign_note(parse_note(note).text, [impostor]))
        ).status
        == 403
    )


def test_nonempty_proof_with_old_zero_is_422(witness: Witness, ledger: Ledger) -> None:
    note = grow(ledger, 3)
    assert witness.add_checkpoint(format_add_checkpoint(0, [b"\0" * 32], note)).status == 422


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda b: b.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda b: b" " + b, id="leading-space"),
        pytest.param(lambda b: b.replace(b"old 0", b"old  0"), id="double-space"),
        pytest.param(lambda b: b.replace(b"old 0", b"old 00"), id="leading-zero"),
        pytest.param(lambda b: b.replace(b"old 0", b"old -1"), id="negative"),
        pytest.param(lambda b: b.replace(b"old 0\n", b"old 0\nnot base64!\n"), id="bad-proof"),
        pytest.param(lambda b: b.replace(b"old 0\n", b"old 0\n" + b"AAAA\n"), id="short-hash"),
        pytest.param(
            lambda b: b.replace(b"old 0\n", b"old 0\n" + b"A" * 43 + b"=\n" * 64),
            id="64-proof-lines",
        ),
        pytest.param(lambda b: b.split(b"\n\n")[0], id="no-checkpoint"),
        pytest.param(lambda b: b"\xff" + b, id="not-utf8"),
        pytest.param(lambda b: b"x" * 70000, id="oversized"),
    ],
)
def test_malformed_bodies_are_400(witness: Witness, ledger: Ledger, mangle: object) -> None:
    body = format_add_checkpoint(0, [], grow(ledger, 1))
    a = witness.add_checkpoint(mangle(body))  # type: ignore[operator]
    assert a.status == 400, a.body
    assert b"field" in a.body or b"message" in a.body


def test_concurrent_add_checkpoints_cosign_one_history(witness: Witness, ledger: Ledger) -> None:
    n1 = grow(ledger, 2)
    n2 = grow(ledger, 3)
    answers: list[int] = []

    def go(note: str) -> None:
        answers.append(ask(witness, ledger, 0, note)[0])

    threads = [threading.Thread(target=go, args=(n,)) for n in (n1, n2, n1, n2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count(200) == 1 and answers.count(409) == 3


def test_killed_before_commit_keeps_the_old_state(witness: Witness, ledger: Ledger) -> None:
    assert ask(witness, ledger, 0, grow(ledger, 2))[0] == 200

    def die() -> None:
        raise SystemExit("killed")

    witness.before_commit = die
    with pytest.raises(SystemExit):
        ask(witness, ledger, 2, grow(ledger, 2))
    witness.before_commit = None
    a = witness.add_checkpoint(format_add_checkpoint(0, [], ledger.checkpoint()))
    assert parse_size(a.body) == 2  # nothing of the killed request was stored
