"""The log's identity is pinned: tampering trials against a real instance.

Whoever can write the database (and perhaps the signing key file beside it) can replace the
log key, rewrite or hide history and re-sign every checkpoint. Each such forgery is
self-consistent, so `carewall ledger verify` without a pin passes it (the hole this closes);
given the key the operator published at `carewall init`, verify fails naming the key, and
`carewall serve` and `carewall demo` refuse to start with one line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from api_support import free_port, uvicorn_server
from cli_support import Cli, run

from carewall.ledger import Ledger
from carewall.ledger.canonical import canonical
from carewall.ledger.checkpoint import Checkpoint, sign_checkpoint
from carewall.ledger.note import Signer
from carewall.ledger.pin import ENV_FILE, ENV_KEY, short
from carewall.storage.db import open_store

NO_PIN = {ENV_KEY: "", ENV_FILE: ""}  # whatever the environment running the tests says


@dataclass
class Instance:
    cli: Cli
    published: str  # the verifier key as `carewall init` printed it
    publication: Path  # a copy of the .vkey file, kept away from the instance's directory

    @property
    def url(self) -> str:
        return self.cli.url

    @property
    def key(self) -> Path:
        return self.cli.tmp / "cw.key"

    def verify(self, *pin: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        res = run(["ledger", "verify", "--db", self.url, *pin], env={**NO_PIN, **(env or {})})
        return res.exit_code, res.stdout, res.stderr

    def serve(self, *pin: str) -> tuple[int, str, str]:
        """``carewall serve`` with the pin; every refusal comes before it binds the port."""
        port = str(free_port())
        args = ["serve", *self.cli.signing, "--port", port, "--public-url", "ftp://x/", *pin]
        res = run(args, env=NO_PIN)
        return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    """An instance made and used through the CLI: requests released, refused, notices sent."""
    res = run(["init", "--db", db_url, "--key", str(tmp_path / "cw.key"), "--origin", "pin.test"])
    assert res.exit_code == 0, res.output
    printed = re.search(r"^verifier key: (\S+)$", res.stdout, re.M)
    assert printed is not None
    vkey_file = tmp_path / "cw.vkey"  # beside the key file, as init said
    assert f"verifier key written to {vkey_file}" in res.stdout
    assert vkey_file.read_text() == printed.group(1) + "\n"
    assert vkey_file.stat().st_mode & 0o777 == 0o644  # public, but only its owner writes it
    (tmp_path / "published").mkdir()
    publication = tmp_path / "published" / "log.vkey"
    shutil.copy(vkey_file, publication)
    cli = Cli(tmp_path, db_url)
    cli.released()
    cli.refused()
    cli.released()
    return Instance(cli, printed.group(1), publication)


# ----- the forger's tools: carewall's own code, pointed at the database -----------------


def _read(url: str) -> tuple[str, list[bytes], list[int]]:
    store = open_store(url)
    try:
        with store.read() as conn:
            origin = conn.execute(
                sa.text("SELECT value FROM ledger_meta WHERE key = 'origin'")
            ).scalar_one()
            datas = [
                bytes(d)
                for (d,) in conn.execute(sa.text("SELECT data FROM ledger_entries ORDER BY idx"))
            ]
            sizes = [
                int(s)
                for (s,) in conn.execute(
                    sa.text("SELECT size FROM ledger_checkpoints ORDER BY size")
                )
            ]
    finally:
        store.dispose()
    return str(origin), datas, sizes


def _store_vkey(conn: sa.Connection, vkey: str) -> None:
    conn.execute(
        sa.text("UPDATE ledger_meta SET value = :v WHERE key = 'verifier_key'"), {"v": vkey}
    )


def _steal_key_file(key: Path, signer: Signer) -> None:
    """The forger also replaces the signing key file, keeping its mode (0600)."""
    key.unlink()
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.skey() + "\n")


def rebuild(inst: Instance, change: Callable[[list[bytes]], list[bytes]]) -> Signer:
    """Replace the log by ``change(entries)``: recompute the tree, re-sign every checkpoint
    with a new key of the same name, record that key, and replace the signing key file."""
    origin, datas, sizes = _read(inst.url)
    datas = change(datas)
    signer = Signer.generate(origin)
    store = open_store(inst.url)
    try:
        with store.write() as conn:
            for table in ("ledger_checkpoints", "ledger_nodes", "ledger_entries"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
            _store_vkey(conn, signer.vkey())
        forged = Ledger(store, origin, signer.vkey(), signer)
        done = 0
        for size in [s for s in sizes if s <= len(datas)] + [len(datas)]:
            forged.append_raw(datas[done:size])
            forged.publish()
            done = size
    finally:
        store.dispose()
    _steal_key_file(inst.key, signer)
    return signer


def resign(inst: Instance) -> Signer:
    """Only the database: the same entries and tree, every checkpoint signed by a new key."""
    origin, _datas, _sizes = _read(inst.url)
    signer = Signer.generate(origin)
    store = open_store(inst.url)
    try:
        with store.write() as conn:
            rows = conn.execute(sa.text("SELECT size, root FROM ledger_checkpoints")).all()
            for size, root in rows:
                note = sign_checkpoint(Checkpoint(origin, int(size), bytes(root)), signer)
                conn.execute(
                    sa.text("UPDATE ledger_checkpoints SET note = :n WHERE size = :s"),
                    {"n": note, "s": int(size)},
                )
            _store_vkey(conn, signer.vkey())
    finally:
        store.dispose()
    return signer


def _released_to_fewer(datas: list[bytes]) -> list[bytes]:
    """The first release now says only a name went, not the address."""
    out = list(datas)
    at = next(i for i, d in enumerate(out) if json.loads(d)["kind"] == "release")
    entry = json.loads(out[at])
    assert entry["categories"] == ["address", "name"]
    out[at] = canonical({**entry, "categories": ["name"]})
    return out


def _without_last_release(datas: list[bytes]) -> list[bytes]:
    """The history ends before the last request that led to a release."""
    kinds = [json.loads(d)["kind"] for d in datas]
    last_release = max(i for i, k in enumerate(kinds) if k == "release")
    request = max(i for i, k in enumerate(kinds[:last_release]) if k == "request")
    return datas[:request]


TRIALS: dict[str, Callable[[Instance], Signer]] = {
    "re-key: new key in the database and the key file, every checkpoint re-signed": (
        lambda inst: rebuild(inst, lambda datas: datas)
    ),
    "rewrite: a release changed, the tree recomputed, re-signed with a new key": (
        lambda inst: rebuild(inst, _released_to_fewer)
    ),
    "rewrite: the last release cut off, re-signed with a new key": (
        lambda inst: rebuild(inst, _without_last_release)
    ),
    "re-sign: the same history re-signed with a new key, through the database alone": resign,
}


# ----- the trials ------------------------------------------------------------------------


def test_the_honest_instance_passes_the_pinned_verify(instance: Instance) -> None:
    for pin, env in (
        (["--log-key", instance.published], None),
        (["--log-key-file", str(instance.publication)], None),
        ([], {ENV_KEY: instance.published}),
        ([], {ENV_FILE: str(instance.publication)}),
    ):
        code, out, err = instance.verify(*pin, env=env)
        assert code == 0, out + err
        assert f"signed by the pinned key {short(instance.published)}" in out
        assert "not pinned" not in err


def test_without_a_pin_verify_says_it_checks_only_self_consistency(instance: Instance) -> None:
    code, out, err = instance.verify()
    assert code == 0  # contract §7: exit 1 only on a mismatch
    assert out.startswith("ok: ") and out.rstrip().endswith("self-consistent only: no pinned key")
    assert err.startswith("warning: the log key is not pinned")
    assert "--log-key-file" in err and ENV_KEY in err


@pytest.mark.parametrize("trial", list(TRIALS))
def test_a_forged_log_passes_unpinned_and_fails_pinned(instance: Instance, trial: str) -> None:
    forger = TRIALS[trial](instance).vkey()

    # The hole: against the key the database itself records, the forgery is flawless.
    code, out, _ = instance.verify()
    assert code == 0, out
    assert run(["ledger", "key", "--db", instance.url]).stdout.strip() == forger

    # Against the published key it fails, naming the key the database now holds.
    for pin, env in (
        (["--log-key", instance.published], None),
        (["--log-key-file", str(instance.publication)], None),
        ([], {ENV_KEY: instance.published}),
    ):
        code, out, err = instance.verify(*pin, env=env)
        assert code == 1, out + err
        first = out.splitlines()[0]
        assert first.startswith("FAILED: the verifier key in the database"), first
        assert f"({short(forger)}) is not the pinned key ({short(instance.published)}" in first
        # and every checkpoint the forger signed fails the published key's signature check
        assert "checkpoint for size" in out and "problems found" in out

    # The server refuses to start: one line, exit 2.
    code, out, err = instance.serve("--log-key-file", str(instance.publication))
    assert code == 2 and out == "", out
    assert len(err.splitlines()) == 1, err
    # (after re-signing through the database alone the key file is still the honest one:
    # the database is named as the culprit, not the key file)
    assert err.startswith("error: --log-key-file: refusing to run: the verifier key in the")
    assert short(forger) in err and short(instance.published) in err


def test_checkpoints_re_signed_under_the_recorded_key_name(instance: Instance) -> None:
    """The stored key is left as published but the newest checkpoint is another key's."""
    origin, _datas, sizes = _read(instance.url)
    other = Signer.generate(origin)
    store = open_store(instance.url)
    try:
        with store.write() as conn:
            root = conn.execute(
                sa.text("SELECT root FROM ledger_checkpoints WHERE size = :s"), {"s": sizes[-1]}
            ).scalar_one()
            note = sign_checkpoint(Checkpoint(origin, sizes[-1], bytes(root)), other)
            conn.execute(
                sa.text("UPDATE ledger_checkpoints SET note = :n WHERE size = :s"),
                {"n": note, "s": sizes[-1]},
            )
    finally:
        store.dispose()
    code, out, _ = instance.verify("--log-key", instance.published)
    assert code == 1
    assert out.startswith(f"FAILED: first bad index {sizes[-1] - 1}: checkpoint for size")
    code, out, err = instance.serve("--log-key", instance.published)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(
        f"error: --log-key: refusing to run: the latest checkpoint (size {sizes[-1]}) "
        "is not signed by the pinned key"
    ), err


def test_the_honest_instance_serves_with_its_pin(instance: Instance) -> None:
    """A real server: it starts, advertises the pinned key, and an auditor holding the
    published key (not the one the server shows) audits it clean."""
    log = instance.cli.tmp / "server.log"
    pin = ["--log-key-file", str(instance.publication)]
    with uvicorn_server(instance.url, instance.key, log, *pin, env=NO_PIN) as base:
        assert httpx.get(base + "/log/key", timeout=30).text.strip() == instance.published
        res = run(["audit", base + "/", "--key", instance.publication.read_text().strip()])
        assert res.exit_code == 0, res.output
    assert "not pinned" not in log.read_text()


def test_serve_without_a_pin_warns_at_start_up(instance: Instance) -> None:
    code, _out, err = instance.serve()  # stops at the bad --public-url, after the warning
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2, err
    assert lines[0].startswith("warning: the log key is not pinned, so this server trusts")
    assert lines[1].startswith("error: --public-url:")


def test_a_signing_key_from_another_log_is_refused(instance: Instance) -> None:
    """A key file that signs as someone else: refused before serving (the database is honest)."""
    _steal_key_file(instance.key, Signer.generate("pin.test"))
    code, _out, err = instance.serve("--log-key", instance.published)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "key file" in err


def test_a_bad_pin_is_one_line_naming_the_option(instance: Instance) -> None:
    for args, field in (
        (["--log-key", "not-a-key"], "--log-key"),
        (["--log-key-file", str(instance.cli.tmp / "absent.vkey")], "--log-key-file"),
        (["--log-key", instance.published, "--log-key-file", str(instance.publication)], ""),
    ):
        for command in (["ledger", "verify", "--db", instance.url], ["serve", *instance.cli.db]):
            res = run([*command, *args], env=NO_PIN)
            assert res.exit_code == 2 and res.stdout == "", res.output
            assert len(res.stderr.splitlines()) == 1, res.stderr
            assert res.stderr.startswith(f"error: {field or '--log-key'}:"), res.stderr
    key = instance.key.read_text().strip()
    res = run(["ledger", "verify", "--db", instance.url, "--log-key", key], env=NO_PIN)
    assert res.exit_code == 2 and "private signing key" in res.stderr
    assert key not in res.stderr  # the secret is never echoed


def test_the_real_command_refuses_in_one_line(instance: Instance) -> None:
    """The installed entry point, in its own process, on a re-keyed instance."""
    rebuild(instance, lambda datas: datas)
    carewall = Path(sys.executable).with_name("carewall")
    env = {**os.environ, **NO_PIN, ENV_FILE: str(instance.publication)}
    proc = subprocess.run(
        [str(carewall), "serve", *instance.cli.signing, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: {ENV_FILE}: refusing to run:"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [str(carewall), "ledger", "verify", "--db", instance.url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 1 and "is not the pinned key" in proc.stdout


# ----- where the published key comes from: init and the demo ---------------------------------


def test_init_writes_the_key_where_asked_and_never_over_another(tmp_path: Path) -> None:
    out = tmp_path / "publish" / "council.vkey"
    out.parent.mkdir()
    db = ["--db", str(tmp_path / "a.db"), "--key", str(tmp_path / "a.key")]
    res = run(["init", *db, "--vkey-out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text().strip() in res.stdout
    assert not (tmp_path / "a.vkey").exists()
    # a published key is never replaced, and nothing is created when init refuses
    other = ["--db", str(tmp_path / "b.db"), "--key", str(tmp_path / "b.key")]
    res = run(["init", *other, "--vkey-out", str(out)])
    assert res.exit_code == 2 and res.stderr.startswith("error: --vkey-out: a verifier key file")
    assert not (tmp_path / "b.db").exists() and not (tmp_path / "b.key").exists()
    res = run(["init", *other, "--vkey-out", str(tmp_path / "absent" / "b.vkey")])
    assert res.exit_code == 2 and res.stderr.startswith("error: --vkey-out: the directory")
    assert not (tmp_path / "b.db").exists() and not (tmp_path / "b.key").exists()


@pytest.mark.slow
def test_the_demo_pins_the_key_it_created(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    demo = ["demo", "--db", str(db), "--scale", "0.01", "--no-serve"]
    res = run(demo, env=NO_PIN)
    assert res.exit_code == 0, res.output
    vkey = (tmp_path / "demo.db.vkey").read_text().strip()
    assert run(["ledger", "key", "--db", str(db)]).stdout.strip() == vkey
    res = run(demo, env=NO_PIN)  # reused: pinned by its own file, so no warning
    assert res.exit_code == 0 and "not pinned" not in res.stderr, res.output

    cli = Cli(tmp_path, str(db))
    resign(Instance(cli, vkey, tmp_path / "demo.db.vkey"))
    res = run(demo, env=NO_PIN)
    assert res.exit_code == 2, res.output
    assert "refusing to run: the verifier key in the database" in res.stderr

    # a pin for a demo that does not exist yet cannot match the key it would create
    fresh = tmp_path / "fresh.db"
    res = run(["demo", "--db", str(fresh), "--no-serve", "--log-key", vkey], env=NO_PIN)
    assert res.exit_code == 2 and res.stderr.startswith("error: --log-key: a new demo instance")
    assert not fresh.exists()
