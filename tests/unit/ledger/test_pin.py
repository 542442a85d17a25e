"""The pinned log key: where it comes from, what it refuses, and the fsck it drives."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from carewall.errors import CarewallError, InputError
from carewall.ledger import Ledger, verify_ledger
from carewall.ledger.note import ALG_COSIGNATURE_V1, Signer, key_id
from carewall.ledger.pin import (
    ENV_FILE,
    ENV_KEY,
    LogKeyMismatch,
    Pin,
    check_ledger,
    check_signing_key,
    key_problem,
    parse_vkey,
    publish_vkey,
    read_vkey_file,
    resolve_pin,
    vkey_path_for,
)
from carewall.storage.db import open_store

ORIGIN = "pin.test/log"


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def _file(tmp_path: Path, text: str, mode: int = 0o644) -> Path:
    path = tmp_path / "log.vkey"
    path.write_text(text)
    path.chmod(mode)
    return path


def _cosignature_key(name: str) -> str:
    pub = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    raw = bytes([ALG_COSIGNATURE_V1]) + pub
    return f"{name}+{key_id(name, raw).hex()}+{base64.b64encode(raw).decode()}"


def test_options_come_before_the_environment(tmp_path: Path, signer: Signer) -> None:
    other = Signer.generate(ORIGIN).vkey()
    path = _file(tmp_path, signer.vkey() + "\n")
    env = {ENV_KEY: other}
    assert resolve_pin(signer.vkey(), None, env) == Pin(signer.vkey(), "--log-key")
    assert resolve_pin(None, path, env) == Pin(signer.vkey(), "--log-key-file")
    assert resolve_pin(None, None, env) == Pin(other, ENV_KEY)
    assert resolve_pin(None, None, {ENV_FILE: str(path)}) == Pin(signer.vkey(), ENV_FILE)
    assert resolve_pin(None, None, {ENV_KEY: "", ENV_FILE: ""}) is None  # empty is unset
    assert resolve_pin(None, None, {}) is None


def test_two_pins_at_once_are_refused(tmp_path: Path, signer: Signer) -> None:
    path = _file(tmp_path, signer.vkey())
    with pytest.raises(InputError) as e:
        resolve_pin(signer.vkey(), path, {})
    assert e.value.field == "--log-key"
    with pytest.raises(InputError) as e:
        resolve_pin(None, None, {ENV_KEY: signer.vkey(), ENV_FILE: str(path)})
    assert e.value.field == ENV_KEY


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "not a verifier key"),
        ("no-plus-signs", "not a verifier key"),
        ("name+zzzzzzzz+AAAA", "not a verifier key"),
    ],
)
def test_what_is_not_a_verifier_key(text: str, says: str) -> None:
    with pytest.raises(InputError, match=says) as e:
        parse_vkey(text, "--log-key")
    assert e.value.field == "--log-key"


def test_a_private_key_or_a_witness_key_is_not_the_pin(signer: Signer) -> None:
    with pytest.raises(InputError, match="private signing key") as e:
        parse_vkey(signer.skey(), "--log-key")
    assert signer.skey() not in e.value.human()
    with pytest.raises(InputError, match="not a log key"):
        parse_vkey(_cosignature_key("witness.example"), "--log-key")


def test_the_key_file(tmp_path: Path, signer: Signer) -> None:
    text = f"# published by the council on 2026-01-05\n\n  {signer.vkey()}  \n"
    assert read_vkey_file(_file(tmp_path, text), "f") == signer.vkey()
    for bad, says in (
        (f"{signer.vkey()}\n{signer.vkey()}\n", "exactly one"),
        ("# nothing\n", "exactly one"),
        ("x" * 5000, "too large"),
    ):
        with pytest.raises(InputError, match=says):
            read_vkey_file(_file(tmp_path, bad), "f")
    with pytest.raises(InputError, match="does not exist"):
        read_vkey_file(tmp_path / "absent", "f")
    with pytest.raises(InputError, match="regular file"):
        read_vkey_file(tmp_path, "f")


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_key_file_others_could_change_is_refused(
    tmp_path: Path, signer: Signer, mode: int
) -> None:
    with pytest.raises(InputError, match="chmod go-w") as e:
        read_vkey_file(_file(tmp_path, signer.vkey(), mode), "--log-key-file")
    assert e.value.field == "--log-key-file"


def test_publishing_never_overwrites(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "x.vkey"
    publish_vkey(path, signer.vkey())
    assert path.read_text() == signer.vkey() + "\n"
    assert path.stat().st_mode & 0o777 == 0o644
    with pytest.raises(InputError, match="already exists"):
        publish_vkey(path, Signer.generate(ORIGIN).vkey())
    assert path.read_text() == signer.vkey() + "\n"


def test_where_the_key_is_published() -> None:
    assert vkey_path_for(Path("/srv/carewall.db.key")) == Path("/srv/carewall.db.vkey")
    assert vkey_path_for(Path("log.key")) == Path("log.vkey")
    assert vkey_path_for(Path("signing.pem")) == Path("signing.pem.vkey")


def test_key_problem(signer: Signer) -> None:
    pin = Pin(signer.vkey(), "--log-key")
    assert key_problem(signer.vkey(), ORIGIN, pin) is None
    assert key_problem(" " + signer.vkey() + "\n", ORIGIN, pin) is None
    other = Signer.generate(ORIGIN)
    problem = key_problem(other.vkey(), ORIGIN, pin)
    assert problem is not None and "is not the pinned key" in problem
    assert f"{ORIGIN}+{other.key_id.hex()}" in problem
    assert "malformed" in (key_problem("garbage", ORIGIN, pin) or "")
    assert "no verifier key" in (key_problem(None, ORIGIN, pin) or "")
    assert "origin" in (key_problem(signer.vkey(), "elsewhere/log", pin) or "")


def test_a_signing_key_that_is_not_the_pin(tmp_path: Path, signer: Signer) -> None:
    key = tmp_path / "log.key"
    key.write_text(Signer.generate(ORIGIN).skey())
    key.chmod(0o600)
    with pytest.raises(LogKeyMismatch, match="signing key file") as e:
        check_signing_key(key, Pin(signer.vkey(), "--log-key"))
    assert e.value.exit_code == 2
    key.write_text(signer.skey())
    check_signing_key(key, Pin(signer.vkey(), "--log-key"))


def test_verify_and_check_ledger_use_the_pin(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "log.db"))
    try:
        ledger = Ledger.create(store, ORIGIN, tmp_path / "log.key")
        ledger.append_raw([b'{"kind":"policy","v":1}'])
        ledger.publish()
        honest = Pin(ledger.verifier_key, "--log-key")
        stranger = Pin(Signer.generate(ORIGIN).vkey(), "--log-key")

        report = verify_ledger(store, pinned=honest)
        assert report.ok and report.key_problem is None
        report = verify_ledger(store, pinned=stranger)
        assert not report.ok and report.key_problem is not None
        assert report.first is not None and "checkpoint for size 1" in report.first.problem
        assert verify_ledger(store).ok  # unpinned: self-consistency only

        check_ledger(ledger, honest, tmp_path / "log.key")
        with pytest.raises(CarewallError, match="is not the pinned key"):
            check_ledger(ledger, stranger, tmp_path / "log.key")
    finally:
        store.dispose()
