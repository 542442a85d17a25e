"""``carewall purge``: a dry run by default; ``--apply`` deletes in one transaction per
source, re-scans, certifies and logs; a failure at any step leaves the source unchanged
(byte for byte, row for row) and the log without an entry."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from pgdb import pg_database

from carewall.clean import open_source, plan, scan
from carewall.clean import purge as purging
from carewall.clean.sources import DateRange
from carewall.clean.synthetic import write_files, write_postgres, write_sqlite
from carewall.cli import main
from carewall.ledger.note import Signer
from carewall.service import Service

PUPILS = 200_000
HOLDER = "st-marys-primary"
RANGE = ["--date-column", "CollectedOn", "--from", "2016-01-01", "--to", "2018-12-31"]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="session")
def sis_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sqlite(tmp_path_factory.mktemp("purge-sqlite") / "sis.db", PUPILS)


@pytest.fixture(scope="session")
def files_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("purge-files")
    write_files(folder, 20_000)
    return folder


@pytest.fixture
def sis(tmp_path: Path, sis_template: Path) -> Path:
    return Path(shutil.copy(sis_template, tmp_path / "sis.db"))


@pytest.fixture
def instance(tmp_path: Path) -> list[str]:
    """A carewall instance: its --db and --key options."""
    opts = ["--db", str(tmp_path / "cw.db"), "--key", str(tmp_path / "cw.key")]
    res = run("init", *opts, "--origin", "school.test/log")
    assert res.exit_code == 0, res.output
    return opts


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    return {p.name: sha(p) for p in sorted(folder.iterdir())}


def log_size(opts: list[str]) -> int:
    svc = Service.open(opts[1], opts[3])
    try:
        return svc.ledger.size()
    finally:
        svc.close()


def apply_args(cert: Path, instance: list[str]) -> list[str]:
    return ["--apply", "--holder", HOLDER, "--authority", "Retention schedule RS-12",
            "--certificate", str(cert), *instance]  # fmt: skip


def failing(certificate: str, body: Mapping[str, Any], commit: Callable[[], None]) -> int:
    """A recorder whose log is down: the purge has run inside its transaction by now."""
    raise OSError("the log is unreachable")


def found(source: str, *extra: str) -> list[dict[str, Any]]:
    res = run("scan", source, "--json", *extra)
    assert res.exit_code == 0, res.output
    return list(json.loads(res.stdout)["findings"])


def test_dry_run_changes_nothing(sis: Path) -> None:
    before = sha(sis)
    res = run("purge", str(sis), *RANGE, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["applied"] is False and doc["records"] > 0
    assert doc["categories"] == ["country_of_birth", "immigration_status", "nationality"]
    assert sha(sis) == before


def test_sqlite_apply_then_rescan_finds_nothing(
    tmp_path: Path, sis: Path, instance: list[str]
) -> None:
    dry = json.loads(run("purge", str(sis), *RANGE, "--json").stdout)
    size = log_size(instance)
    cert = tmp_path / "deletion.cert"
    res = run("purge", str(sis), *RANGE, "--json", *apply_args(cert, instance))
    assert res.exit_code == 0, res.output
    done = json.loads(res.stdout)
    assert done["applied"] is True and done["records"] == dry["records"]
    assert found(str(sis), *RANGE) == []  # none remain in 2016-2018
    assert {f["column"] for f in found(str(sis))} >= {"Nationality", "COB"}  # others stay
    assert log_size(instance) == size + 1
    svc = Service.open(instance[1], instance[3])
    entry = json.loads(svc.ledger.entries(size, size + 1)[0])
    svc.close()
    assert entry["kind"] == "deletion" and entry["records"] == dry["records"]
    assert entry["certificate"] == "sha256:" + sha(cert)
    text = cert.read_text()
    for value in ("GBR", "Polish", "Poland", "ILR", "Refused"):
        assert value not in text  # the certificate's public part holds no value


def test_sqlite_failure_mid_purge_leaves_it_unchanged(sis: Path, instance: list[str]) -> None:
    before, size = sha(sis), log_size(instance)
    src = open_source(str(sis))
    where = DateRange("CollectedOn", date(2016, 1, 1), date(2018, 12, 31))
    try:
        p = plan(src, scan(src, where=where), date_range=where)
        with pytest.raises(OSError):
            purging.apply(src, p, key=b"k" * 32, signer=Signer.generate("school.test/log"),
                          holder=HOLDER, authority="test", issued="2026-01-01T00:00:00Z",
                          recorder=failing)  # fmt: skip
    finally:
        src.close()
    assert sha(sis) == before and log_size(instance) == size


def test_sqlite_refused_by_the_log_leaves_everything(
    tmp_path: Path, sis: Path, instance: list[str]
) -> None:
    before, size = sha(sis), log_size(instance)
    cert = tmp_path / "deletion.cert"
    args = apply_args(cert, instance)
    args[args.index(HOLDER)] = "no-such-school"
    res = run("purge", str(sis), *RANGE, *args)
    assert res.exit_code == 2 and res.stderr.startswith("error: --holder: "), res.output
    assert sha(sis) == before and log_size(instance) == size and not cert.exists()


def test_drop_needs_no_date_range(sis: Path) -> None:
    res = run("purge", str(sis), *RANGE, "--action", "drop")
    assert res.exit_code == 2 and "--action" in res.stderr


def test_files_failure_leaves_every_byte(tmp_path: Path, files_template: Path) -> None:
    folder = Path(shutil.copytree(files_template, tmp_path / "exports"))
    before = tree(folder)
    src = open_source(str(folder))
    try:
        p = plan(src, scan(src))
        with pytest.raises(OSError):
            purging.apply(src, p, key=b"k" * 32, signer=Signer.generate("school.test/log"),
                          holder=HOLDER, authority="test", issued="2026-01-01T00:00:00Z",
                          recorder=failing)  # fmt: skip
    finally:
        src.close()
    assert tree(folder) == before  # no file changed, no temporary file left


@pytest.mark.parametrize("action", ["null", "drop"])
def test_files_apply(
    tmp_path: Path, files_template: Path, instance: list[str], action: str
) -> None:
    folder = Path(shutil.copytree(files_template, tmp_path / "exports"))
    cert = tmp_path / "deletion.cert"
    res = run("purge", str(folder), "--action", action, "--json", *apply_args(cert, instance))
    assert res.exit_code == 0, res.output
    assert found(str(folder)) == []
    body = json.loads(cert.read_text().split("\n")[1])
    for t in body["tables"]:
        assert t["sha256_after"] == "sha256:" + sha(folder / t["table"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(tree(files_template))


@pytest.fixture
def pg_sis() -> Iterator[str]:
    with pg_database("carewall_purge") as url:
        yield write_postgres(url, 20_000)


def pg_digest(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT md5(string_agg(c::text, '|' ORDER BY id)) FROM census c"
        ).fetchone()
        row2 = conn.execute(
            "SELECT md5(string_agg(a::text, '|' ORDER BY id)) FROM admissions a"
        ).fetchone()
    assert row and row2
    return f"{row[0]}:{row2[0]}"


@pytest.mark.postgres
def test_postgres_failure_then_apply(pg_sis: str, tmp_path: Path, instance: list[str]) -> None:
    before, size = pg_digest(pg_sis), log_size(instance)
    src = open_source(pg_sis)
    try:
        p = plan(src, scan(src))
        with pytest.raises(OSError):
            purging.apply(src, p, key=b"k" * 32, signer=Signer.generate("school.test/log"),
                          holder=HOLDER, authority="test", issued="2026-01-01T00:00:00Z",
                          recorder=failing)  # fmt: skip
    finally:
        src.close()
    assert pg_digest(pg_sis) == before and log_size(instance) == size
    cert = tmp_path / "deletion.cert"
    res = run("purge", pg_sis, *RANGE, *apply_args(cert, instance))
    assert res.exit_code == 0, res.output
    assert found(pg_sis, *RANGE) == [] and found(pg_sis) != []
    assert log_size(instance) == size + 1
