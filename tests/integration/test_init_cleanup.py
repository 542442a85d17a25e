"""What ``carewall init`` leaves behind: a private instance, or nothing at all.

A SQLite database holds personal data, so its file (and SQLite's ``-wal`` and ``-shm``
beside it) is created 0600 whatever the umask, as the log key file is. An init that fails
(a bad register or origin before anything is made, or midway: a key file already there,
a mail setting that does not parse after the schema and key were made) leaves no database
file, no tables and no key file, on SQLite and on PostgreSQL; it never removes what was
there before it started (another instance, another log's key, another program's tables),
and of two inits racing for one database, the loser removes nothing of the winner's.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_support import reviewable
from click.testing import CliRunner, Result

from carewall.cli import main
from carewall.errors import CarewallError
from carewall.ledger import verify_ledger
from carewall.service import Service
from carewall.storage.db import normalise_url


def _init(db_url: str, key: Path, *extra: str, env: dict[str, str] | None = None) -> Result:
    args = ["init", "--db", db_url, "--key", str(key), *extra]
    return CliRunner().invoke(main, args, env=env)


def _tables(db_url: str) -> list[str]:
    engine = sa.create_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            return sorted(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _files(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir())


def _nothing_left(db_url: str, tmp: Path, before: list[str]) -> None:
    assert _files(tmp) == before  # no database file, -wal, -shm, journal or key file
    if not db_url.startswith("sqlite"):
        assert _tables(db_url) == []


@pytest.fixture
def private_tmp(tmp_path: Path) -> Path:
    # keep the test's own files (orgs, a bad key) apart from what init would create
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path


@pytest.fixture
def any_db(db_url: str, private_tmp: Path) -> str:
    if db_url.startswith("sqlite"):
        return f"sqlite:///{private_tmp / 'out' / 'cw.db'}"
    return db_url


def test_a_bad_register_or_origin_creates_nothing(any_db: str, private_tmp: Path) -> None:
    out = private_tmp / "out"
    bad = private_tmp / "in" / "orgs.toml"
    bad.write_text("this is not toml = = =\n")
    result = _init(any_db, out / "log.key", "--orgs", str(bad))
    assert result.exit_code == 2 and "register" in result.stderr
    _nothing_left(any_db, out, [])
    result = _init(any_db, out / "log.key", "--origin", "has a space")
    assert result.exit_code == 2 and "origin" in result.stderr
    _nothing_left(any_db, out, [])


def test_a_failure_midway_leaves_nothing(any_db: str, private_tmp: Path) -> None:
    """The mail setting is read after the schema, the ledger and its key are made."""
    out = private_tmp / "out"
    result = _init(any_db, out / "log.key", env={"CAREWALL_SMTP": "no port here"})
    assert result.exit_code == 2, result.output
    assert "CAREWALL_SMTP" in result.stderr and "Traceback" not in result.output
    _nothing_left(any_db, out, [])
    again = _init(any_db, out / "log.key")  # nothing is in the way of a second try
    assert again.exit_code == 0, again.output


def test_an_existing_key_file_is_kept_and_nothing_else_is_left(
    any_db: str, private_tmp: Path
) -> None:
    out = private_tmp / "out"
    key = out / "someone-elses.key"
    key.write_text("not ours\n")
    result = _init(any_db, key)
    assert result.exit_code == 2 and "--key" in result.stderr
    assert key.read_text() == "not ours\n"
    _nothing_left(any_db, out, ["someone-elses.key"])


def test_init_on_an_instance_changes_nothing(any_db: str, private_tmp: Path) -> None:
    out = private_tmp / "out"
    assert _init(any_db, out / "log.key").exit_code == 0
    svc = Service.open(any_db, out / "log.key")
    rid = svc.submit(reviewable()).id
    svc.close()
    files, tables = _files(out), _tables(any_db)
    result = _init(any_db, out / "other.key")
    assert result.exit_code == 2 and "already holds" in result.stderr
    assert (_files(out), _tables(any_db)) == (files, tables)
    svc = Service.open(any_db, out / "log.key")
    try:
        assert svc.get(rid).id == rid
        assert verify_ledger(svc.store).ok
    finally:
        svc.close()


def test_another_programs_tables_are_never_dropped(any_db: str, private_tmp: Path) -> None:
    engine = sa.create_engine(normalise_url(any_db))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE theirs (x integer)"))
        conn.execute(sa.text("INSERT INTO theirs VALUES (42)"))
    result = _init(any_db, private_tmp / "out" / "log.key", env={"CAREWALL_SMTP": "bad"})
    assert result.exit_code == 2
    assert _tables(any_db) == ["theirs"]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT x FROM theirs")).scalar_one() == 42
    engine.dispose()


def test_of_two_racing_inits_the_loser_removes_nothing(any_db: str, private_tmp: Path) -> None:
    out = private_tmp / "out"
    barrier = threading.Barrier(2)
    outcome: dict[str, Service | CarewallError] = {}

    def one(name: str) -> None:
        barrier.wait()
        try:
            outcome[name] = Service.init(any_db, None, "carewall.test/race", out / f"{name}.key")
        except CarewallError as e:
            outcome[name] = e

    threads = [threading.Thread(target=one, args=(n,)) for n in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    won = [n for n, o in outcome.items() if isinstance(o, Service)]
    assert len(won) == 1, outcome
    winner = outcome[won[0]]
    assert isinstance(winner, Service)
    winner.close()
    assert _files(out) == sorted(
        [f"{won[0]}.key"] + (["cw.db"] if any_db.startswith("sqlite") else [])
    )
    svc = Service.open(any_db, out / f"{won[0]}.key")
    try:
        svc.submit(reviewable())
        assert verify_ledger(svc.store).ok
    finally:
        svc.close()


# ----- the files init creates are private -------------------------------------------------


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_key_files_are_created_0600(tmp_path: Path) -> None:
    db, key = tmp_path / "cw.db", tmp_path / "cw.key"
    with _umask(0o022):  # the usual umask: other files come out world-readable
        assert _init(f"sqlite:///{db}", key).exit_code == 0
        svc = Service.open(f"sqlite:///{db}", key)
        try:
            svc.submit(reviewable())  # a write, so SQLite's -wal and -shm files exist
            side = [Path(f"{db}-wal"), Path(f"{db}-shm")]
            assert all(p.exists() for p in side)
            modes = {p.name: _mode(p) for p in [db, key, *side]}
        finally:
            svc.close()
        (tmp_path / "plain").touch()
    assert modes == {p: 0o600 for p in modes}, {k: oct(v) for k, v in modes.items()}
    assert _mode(tmp_path / "plain") == 0o644  # the umask really was permissive
