"""Carewall instances on loopback witnessing one another over C2SP tlog-witness, with real
`carewall serve` and `carewall witness serve` processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import free_port
from pgdb import pg_database
from witness_support import (
    Instance,
    all_caught_up,
    cli,
    grow,
    log_server,
    make_instance,
    poll,
    witness_server,
    witnesses_doc,
)

from carewall.audit import audit_log
from carewall.errors import VerificationError
from carewall.ledger.note import parse_note
from carewall.witness.cosignature import cosigned_by, parse_witness_vkey


def _cosigners(base: str, *insts: Instance) -> set[str]:
    note = httpx.get(base + "/log/checkpoint", timeout=30).text
    return set(cosigned_by(note, [parse_witness_vkey(i.witness_vkey) for i in insts]).values())


def test_three_instances_witness_one_another(tmp_path: Path) -> None:
    insts = [make_instance(tmp_path, n) for n in ("a", "b", "c")]
    with ExitStack() as stack:
        wurl = {
            i.name: stack.enter_context(
                witness_server(i, [o.log_vkey for o in insts if o is not i])
            )
            for i in insts
        }
        bases = {
            i.name: stack.enter_context(
                log_server(i, [(o.witness_vkey, wurl[o.name]) for o in insts if o is not i])
            )
            for i in insts
        }
        for i in insts:
            poll(f"{i.name} cosigned", lambda i=i: all_caught_up(bases[i.name]))
            others = [o for o in insts if o is not i]
            assert _cosigners(bases[i.name], *others) == {
                o.witness_vkey.split("+")[0] for o in others
            }
        # The log grows: the witnesses follow with consistency proofs.
        grow(insts[0], 300)
        poll(
            "a grown and cosigned",
            lambda: witnesses_doc(bases["a"])["size"] > 300 and all_caught_up(bases["a"]),
        )
        # An outside auditor with a quorum of both witnesses passes.
        keys = [parse_witness_vkey(o.witness_vkey) for o in insts[1:]]
        report, _state = audit_log(
            bases["a"], insts[0].log_vkey, replay=False, witnesses=keys, quorum=2
        )
        assert report.size > 300
        # The CLI: quorum met on an unextended log (b), with a full replay.
        done = cli(
            "audit",
            bases["b"],
            "--key",
            insts[1].log_vkey,
            "--witness",
            insts[0].witness_vkey,
            "--witness",
            insts[2].witness_vkey,
            "--quorum",
            "2",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "cosigned by 2 witness(es)" in done.stdout
        # The pages say who witnesses the log.
        home = httpx.get(bases["b"] + "/", headers={"Accept": "text/html"}, timeout=30).text
        assert "witness.a.test" in home and "witness.c.test" in home


@pytest.mark.postgres
def test_two_instances_on_postgresql(tmp_path: Path) -> None:
    with pg_database() as url_a, pg_database() as url_b, ExitStack() as stack:
        a = make_instance(tmp_path, "a", url_a)
        b = make_instance(tmp_path, "b", url_b)
        wa = stack.enter_context(witness_server(a, [b.log_vkey]))
        wb = stack.enter_context(witness_server(b, [a.log_vkey]))
        base_a = stack.enter_context(log_server(a, [(b.witness_vkey, wb)]))
        base_b = stack.enter_context(log_server(b, [(a.witness_vkey, wa)]))
        grow(a, 5)
        poll("a cosigned", lambda: witnesses_doc(base_a)["size"] > 5 and all_caught_up(base_a))
        poll("b cosigned", lambda: all_caught_up(base_b))
        # /log/checkpoint serves the newest checkpoint at once, before its witness cosigns
        # it (a publish can land between "caught up" and the read): wait for the cosigned one
        poll("a served cosigned", lambda: _cosigners(base_a, b) == {"witness.b.test"})
        poll("b served cosigned", lambda: _cosigners(base_b, a) == {"witness.a.test"})
        assert _cosigners(base_a, b) == {"witness.b.test"}
        assert _cosigners(base_b, a) == {"witness.a.test"}


def test_split_view_gets_no_cosignature_and_fails_every_quorum_auditor(tmp_path: Path) -> None:
    a = make_instance(tmp_path, "a")
    w = make_instance(tmp_path, "w")
    # The same database and key, copied: from here on two logs under one key.
    twin = tmp_path / "twin"
    shutil.copytree(a.dir, twin)
    t = Instance(
        "twin", f"sqlite:///{twin / 'cw.db'}", twin, a.log_vkey, a.witness_key, a.witness_vkey
    )
    grow(a, 3, "honest")
    grow(t, 3, "split")
    key = parse_witness_vkey(w.witness_vkey)
    with ExitStack() as stack:
        wurl = stack.enter_context(witness_server(w, [a.log_vkey]))
        base_a = stack.enter_context(log_server(a, [(w.witness_vkey, wurl)]))
        poll("a cosigned", lambda: all_caught_up(base_a))
        base_t = stack.enter_context(log_server(t, [(w.witness_vkey, wurl)]))
        doc = poll(
            "the twin refused", lambda: (d := witnesses_doc(base_t))["witnesses"][0]["error"] and d
        )
        assert doc["witnesses"][0]["behind"]
        # Refused either as an inconsistent proof (422) or because the witness already
        # holds a larger tree than this view has: never cosigned.
        err = doc["witnesses"][0]["error"]
        assert "422" in err or "another view" in err, err
        # Each view verifies under the log key alone: only the witness tells them apart.
        audit_log(base_t, a.log_vkey, replay=False)
        audit_log(base_a, a.log_vkey, replay=False, witnesses=[key], quorum=1)
        with pytest.raises(VerificationError, match=r"not cosigned by: witness\.w\.test"):
            audit_log(base_t, a.log_vkey, replay=False, witnesses=[key], quorum=1)
        done = cli("audit", base_t, "--key", a.log_vkey, "--witness", w.witness_vkey)
        assert done.returncode == 1
        assert "witness.w.test" in done.stdout + done.stderr


def test_witness_down_then_up_and_a_conflict_resync(tmp_path: Path) -> None:
    a = make_instance(tmp_path, "a")
    w = make_instance(tmp_path, "w")
    port = free_port()
    url = f"http://127.0.0.1:{port}/witness"
    with log_server(a, [(w.witness_vkey, url)]) as base:
        # Down: the write path does not wait, and the page says the witness is behind.
        grow(a, 2)
        doc = poll(
            "unreachable recorded",
            lambda: (d := witnesses_doc(base))["witnesses"][0]["error"] and d,
        )
        assert doc["witnesses"][0]["behind"] and "unreachable" in doc["witnesses"][0]["error"]
        with witness_server(w, [a.log_vkey], port):
            poll("cosigned after the witness came up", lambda: all_caught_up(base))
        # The witness knows size N; tell the log it knows nothing: 409, resync, cosign.
        store_url = a.db
        from carewall.storage.db import open_store

        s = open_store(store_url)
        with s.write() as conn:
            conn.exec_driver_sql("DELETE FROM witness_status")
        s.dispose()
        grow(a, 2)
        with witness_server(w, [a.log_vkey], port):
            poll(
                "cosigned after a 409",
                lambda: witnesses_doc(base)["size"] > 2 and all_caught_up(base),
            )
        note = httpx.get(base + "/log/checkpoint", timeout=30).text
        assert cosigned_by(note, [parse_witness_vkey(w.witness_vkey)])
        assert parse_note(note).signatures[0].name == "a.test/log"


_CRASH = """
import os, sys
from carewall.witness import server
real = server.Witness.add_checkpoint
def dying(self, body):
    self.before_commit = lambda: os._exit(9)
    return real(self, body)
server.Witness.add_checkpoint = dying
from carewall.cli import main
main()
"""


def test_witness_killed_mid_request_loses_no_state(tmp_path: Path) -> None:
    a = make_instance(tmp_path, "a")
    w = make_instance(tmp_path, "w")
    port = free_port()
    url = f"http://127.0.0.1:{port}/witness"
    with log_server(a, [(w.witness_vkey, url)]) as base:
        with witness_server(w, [a.log_vkey], port):
            poll("first cosignature", lambda: all_caught_up(base))
        first = witnesses_doc(base)["witnesses"][0]["cosigned_size"]
        grow(a, 4)
        with witness_server(w, [a.log_vkey], port, script=_CRASH):
            poll(
                "the witness died mid-request", lambda: witnesses_doc(base)["witnesses"][0]["error"]
            )
        with witness_server(w, [a.log_vkey], port):
            # Its record still holds the first size: the killed request stored nothing, and
            # it cosigns the grown log from there with a consistency proof.
            poll("cosigned after restart", lambda: all_caught_up(base))
        assert witnesses_doc(base)["witnesses"][0]["cosigned_size"] > first


_SLOW = """
import threading
from carewall.witness import server
never = threading.Event()
def stuck(self, body):
    never.wait()  # a witness that takes the request and never answers
server.Witness.add_checkpoint = stuck
from carewall.cli import main
main()
"""


def _wname(inst: Instance) -> str:
    return f"witness.{inst.name}.test"


def test_a_slow_witness_holds_up_neither_the_log_nor_the_other_witness(tmp_path: Path) -> None:
    """A witness that takes the request and never answers: the log keeps appending and
    signing, the other witness keeps cosigning, and the page names the slow one behind."""
    a = make_instance(tmp_path, "a")
    fast = make_instance(tmp_path, "fast")
    slow = make_instance(tmp_path, "slow")
    slow_port = free_port()
    slow_url = f"http://127.0.0.1:{slow_port}/witness"
    with ExitStack() as stack:
        fast_url = stack.enter_context(witness_server(fast, [a.log_vkey]))
        stack.enter_context(witness_server(slow, [a.log_vkey], slow_port, script=_SLOW))
        base = stack.enter_context(
            log_server(a, [(fast.witness_vkey, fast_url), (slow.witness_vkey, slow_url)])
        )
        for round_ in range(3):
            grow(a, 2, tag=f"r{round_}")
            size = 2 * (round_ + 1)

            def fast_cosigned(size: int = size) -> dict[str, Any] | None:
                doc = witnesses_doc(base)
                rows = {w["name"]: w for w in doc["witnesses"]}
                done = doc["size"] >= size and not rows[_wname(fast)]["behind"]
                return rows if done else None

            # the page that shows the fast witness caught up shows the slow one behind
            rows = poll(f"the fast witness cosigned size {size}", fast_cosigned)
            assert rows[_wname(slow)]["behind"]
        assert _cosigners(base, fast, slow) <= {_wname(fast)}
        assert poll("a checkpoint cosigned by the fast one", lambda: _cosigners(base, fast, slow))
