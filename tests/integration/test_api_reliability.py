"""Many concurrent submissions from several processes, through several real servers."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from api_support import (
    REQUESTER,
    assert_consistent,
    init_service,
    submit_many,
    uvicorn_server,
)
from pgdb import pg_database

from carewall.api.auth import create_token
from carewall.service import Service

CLIENTS = 3
PER_CLIENT = 20


def _load(db_url: str, tmp: Path) -> None:
    service = init_service(db_url, tmp)
    token = create_token(service.store, REQUESTER, "requester").secret
    service.close()
    key = tmp / "log.key"
    with (
        uvicorn_server(db_url, key, tmp / "a.log") as a,
        uvicorn_server(db_url, key, tmp / "b.log") as b,
        ProcessPoolExecutor(CLIENTS) as pool,
    ):
        futures = [pool.submit(submit_many, [a, b], token, PER_CLIENT) for _ in range(CLIENTS)]
        results = [row for f in futures for row in f.result()]
    assert [s for s, _ in results] == [201] * (CLIENTS * PER_CLIENT)
    acked = {i for _, i in results}
    assert len(acked) == CLIENTS * PER_CLIENT  # every id distinct

    service = Service.open(db_url, key)
    try:
        stored = {r.id for r in service.list_requests()}
        assert stored == acked  # none lost, none extra
        # request + decision entries for each, in the log where the state says.
        assert assert_consistent(service) == 2 * len(acked)
    finally:
        service.close()
    for log in ("a.log", "b.log"):
        assert "Traceback" not in (tmp / log).read_text()


@pytest.mark.slow
def test_concurrent_submissions_sqlite(tmp_path: Path) -> None:
    _load(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_submissions_postgres(tmp_path: Path) -> None:
    with pg_database() as url:
        _load(url, tmp_path)
