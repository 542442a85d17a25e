"""``/statistics.json`` and ``/statistics.csv``: the statistics of the signed log, and only that.

Each download is compared with :func:`carewall.statistics.compute` run over the log's own
entries up to the latest signed checkpoint, as an outsider would run it.
"""

from __future__ import annotations

import json
from typing import Any, cast

import jsonschema_rs
import pytest
from api_support import Tokens, reviewable
from fastapi import FastAPI
from fastapi.testclient import TestClient
from statistics_support import populate, with_statistics

from carewall.api.statistics import statistics_schema
from carewall.service import Service
from carewall.service.statistics import signed_size, statistics_at
from carewall.statistics import Statistics, compute

Served = tuple[TestClient, Service, Tokens]


def from_log(service: Service, size: int | None = None) -> Statistics:
    """What anyone computes from the log's entries 0 … size-1 (default: signed size)."""
    n = signed_size(service.ledger) if size is None else size
    entries = [json.loads(data) for data in service.ledger.entries(0, n)]
    return compute(entries, origin=service.ledger.origin, size=n)


@pytest.fixture
def client(served: Served) -> TestClient:
    test_client, service, _ = served
    with_statistics(cast(FastAPI, test_client.app))
    populate(service)
    return test_client


def test_the_json_download_is_the_statistics_of_the_signed_log(
    client: TestClient, served: Served
) -> None:
    service = served[1]
    r = client.get("/statistics.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["cache-control"] == "public, max-age=10"
    expected = from_log(service)
    assert r.json() == expected.to_json()
    assert expected.size == signed_size(service.ledger) == service.ledger.size()
    assert statistics_at(service, None) == expected
    jsonschema_rs.validate(statistics_schema(), r.json())
    assert expected.figures() == (
        ("received", 8),
        ("refused", 4),
        ("released", 1),
        ("releases", 1),
        ("releases_to_immigration_enforcement", 0),
    )
    assert expected.table("outcome") == (
        ("released", 1),
        ("refused_by_reviewer", 1),
        ("refused_automatically", 3),
        ("withdrawn", 1),
        ("awaiting_review", 2),
        ("awaiting_decision", 0),
    )
    assert expected.table("month") == (("2036-01", 2), ("2036-02", 0), ("2036-03", 6))
    assert dict(expected.table("requester_function"))["immigration_enforcement"] == 1


def test_the_csv_download_is_the_same_statistics(client: TestClient, served: Served) -> None:
    service = served[1]
    r = client.get("/statistics.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    size = signed_size(service.ledger)
    assert r.headers["content-disposition"] == (
        f'attachment; filename="carewall-statistics-{size}.csv"'
    )
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.text == from_log(service).to_csv()


def test_an_earlier_size_gives_the_statistics_of_that_checkpoint(
    client: TestClient, served: Served
) -> None:
    service = served[1]
    earlier = signed_size(service.ledger)
    service.submit(reviewable())
    latest = signed_size(service.ledger)
    assert latest == earlier + 2
    for size in (1, earlier - 1, earlier, latest):
        r = client.get(f"/statistics.json?size={size}")
        assert r.status_code == 200, r.text
        assert r.json() == from_log(service, size).to_json()
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        csv = client.get(f"/statistics.csv?size={size}")
        assert csv.text == from_log(service, size).to_csv()
        assert f"carewall-statistics-{size}.csv" in csv.headers["content-disposition"]
    assert client.get("/statistics.json").json()["firewall"]["received"] == 9


def test_the_service_keeps_its_statistics_right_as_the_log_grows(served: Served) -> None:
    _, service, _ = served
    seen: list[int] = []
    for step in range(4):
        for _ in range(step):
            service.submit(reviewable())
        seen.append(signed_size(service.ledger))
        assert statistics_at(service, None) == from_log(service)
    for size in (*seen, 1, seen[0], seen[-1]):  # earlier sizes, again, and the latest
        assert statistics_at(service, size) == from_log(service, size)


BAD_SIZES = ["0", "-1", "abc", "", "1.5", "+1", " 1", "1_0", "١", "0x10", "9" * 30, "9" * 100]


@pytest.mark.parametrize("path", ["/statistics.json", "/statistics.csv"])
@pytest.mark.parametrize("size", [*BAD_SIZES, "beyond"])
def test_a_bad_size_is_a_422_naming_the_field_and_the_fix(
    client: TestClient, served: Served, path: str, size: str
) -> None:
    if size == "beyond":
        size = str(signed_size(served[1].ledger) + 1)
    r = client.get(path, params={"size": size})
    assert r.status_code == 422, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == "invalid_input"
    assert body["field"] == "size"
    assert body["fix"]
