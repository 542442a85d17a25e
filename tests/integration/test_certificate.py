"""``carewall certificate verify FILE --log URL --key VKEY`` against a real uvicorn server
serving the instance's /log: the signature, the deletion entry's inclusion under the
signed checkpoint, and the entry's holder, categories and records."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_serving import serving
from click.testing import CliRunner, Result
from fastapi import FastAPI

from carewall.api.errors import install_error_handlers
from carewall.api.log import make_log_router
from carewall.clean.certificate import sign_certificate
from carewall.clean.synthetic import write_sqlite
from carewall.cli import main
from carewall.ledger import Ledger, load_key
from carewall.ledger.note import Signer
from carewall.storage import open_store

HOLDER = "st-marys-primary"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def deleted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str, Path]]:
    """(certificate, log URL, published verifier key, folder) after one purge."""
    tmp = tmp_path_factory.mktemp("certificate")
    sis = write_sqlite(tmp / "sis.db", 20_000)
    db, key = tmp / "cw.db", tmp / "cw.key"
    res = run("init", "--db", str(db), "--key", str(key), "--origin", "school.test/log")
    assert res.exit_code == 0, res.output
    cert = tmp / "deletion.cert"
    res = run("purge", str(sis), "--apply", "--holder", HOLDER, "--authority", "RS-12",
              "--certificate", str(cert), "--db", str(db), "--key", str(key))  # fmt: skip
    assert res.exit_code == 0, res.output
    vkey = (tmp / "cw.vkey").read_text().strip()  # the key `init` published
    store = open_store(f"sqlite:///{db}")
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_log_router(lambda: Ledger.open(store)))
    with serving(app) as url:
        yield cert, url, vkey, tmp
    store.dispose()


def test_verifies(deleted: tuple[Path, str, str, Path]) -> None:
    cert, url, vkey, _ = deleted
    res = run("certificate", "verify", str(cert), "--log", url, "--key", vkey)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("verified: sha256:")
    assert f"{HOLDER} deleted" in res.stdout


def _tampered(cert: Path, tmp: Path, old: str, new: str) -> Path:
    out = tmp / f"tampered-{abs(hash(old))}.cert"
    text = cert.read_text()
    assert old in text
    out.write_text(text.replace(old, new, 1))
    return out


@pytest.mark.parametrize(("old", "new"), [('"records":', '"records":1'), ("RS-12", "RS-13")])
def test_tampered_fails(deleted: tuple[Path, str, str, Path], old: str, new: str) -> None:
    cert, url, vkey, tmp = deleted
    bad = _tampered(cert, tmp, old, new)
    res = run("certificate", "verify", str(bad), "--log", url, "--key", vkey)
    assert res.exit_code == 1, res.output
    assert "altered" in res.stderr and "Traceback" not in res.output


def test_wrong_key_fails(deleted: tuple[Path, str, str, Path]) -> None:
    cert, url, _, _ = deleted
    other = Signer.generate("school.test/log").vkey()
    res = run("certificate", "verify", str(cert), "--log", url, "--key", other)
    assert res.exit_code == 1 and "not signed by the given key" in res.stderr


def test_resigned_but_unlogged_fails(deleted: tuple[Path, str, str, Path]) -> None:
    """Even the log key's holder cannot pass off a certificate it never logged."""
    cert, url, vkey, tmp = deleted
    body = json.loads(cert.read_text().split("\n")[1])
    body["records"] += 1
    forged = tmp / "forged.cert"
    forged.write_text(sign_certificate(body, load_key(tmp / "cw.key")))
    res = run("certificate", "verify", str(forged), "--log", url, "--key", vkey)
    assert res.exit_code == 1 and "no deletion entry" in res.stderr


def test_copy_verifies_too(deleted: tuple[Path, str, str, Path]) -> None:
    cert, url, vkey, tmp = deleted
    copy = Path(shutil.copy(cert, tmp / "copy.cert"))
    assert run("certificate", "verify", str(copy), "--log", url, "--key", vkey).exit_code == 0


def test_the_auditor_accepts_the_deletion_entry(deleted: tuple[Path, str, str, Path]) -> None:
    _, url, vkey, _ = deleted
    res = run("audit", url, "--key", vkey, "--no-statistics")
    assert res.exit_code == 0, res.output
