"""``carewall audit`` recomputes the published statistics from the log it verified.

A real instance is served by uvicorn (its API, its ``/log/`` and its statistics); the
doctored servers serve the same true log beside statistics that lie, are missing, or are
malformed, and the audit must fail naming what differs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import Tokens, reviewable
from audit_serving import findings, serving, statement
from click.testing import CliRunner, Result
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from statistics_support import populate, with_statistics

from carewall.api.app import create_app
from carewall.api.errors import install_error_handlers
from carewall.api.log import make_log_router
from carewall.audit import audit_log, default_key_path, load_state, state_key
from carewall.cli import main
from carewall.errors import InputError
from carewall.service import Service
from carewall.service.statistics import statistics_at

MATCH = "the published statistics match the log"


@pytest.fixture
def service(served: tuple[TestClient, Service, Tokens]) -> Service:
    _, svc, _ = served
    populate(svc)
    return svc


def audit(url: str, service: Service, *extra: str) -> Result:
    return CliRunner().invoke(main, ["audit", url, "--key", service.ledger.verifier_key, *extra])


StatsRoute = Callable[[int], Response]


def log_with(service: Service, statistics: StatsRoute | None) -> FastAPI:
    """The instance's true ``/log/``, beside ``statistics(size)`` at ``/statistics.json``."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_log_router(lambda: service.ledger))
    if statistics is not None:

        @app.get("/statistics.json")
        def doctored(size: int) -> Response:
            return statistics(size)

    return app


def doctor(service: Service, change: Callable[[dict[str, Any]], None]) -> StatsRoute:
    def route(size: int) -> Response:
        doc = statistics_at(service, size).to_json()
        change(doc)
        return JSONResponse(doc)

    return route


@pytest.fixture
def honest(service: Service) -> Iterator[str]:
    with serving(with_statistics(create_app(service))) as url:
        yield url


def test_an_honest_instance_passes_and_says_its_statistics_match(
    honest: str, service: Service, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    first = audit(honest, service, "--state", str(state))
    assert first.exit_code == 0, first.output
    assert MATCH in statement(first)
    assert statement(first).endswith(", 0 to immigration enforcement.")
    assert "published statistics" in first.stdout and "match the log" in first.stdout
    saved = json.loads(state.read_text())
    assert saved["replay"]["statistics"]["releases"] == 1

    # The log grows; the next run continues from the state file and checks again.
    service.submit(reviewable())
    again = audit(honest, service, "--state", str(state))
    assert again.exit_code == 0, again.output
    assert MATCH in statement(again)
    assert json.loads(state.read_text())["size"] == service.ledger.size()


def test_the_library_checks_statistics_in_process(service: Service) -> None:
    app = with_statistics(create_app(service))
    with TestClient(app, base_url="http://testserver/log/") as client:
        report, _ = audit_log(
            "http://testserver", service.ledger.verifier_key, client=client, statistics=True
        )
    assert report.ok, [f.line() for f in report.findings]
    assert report.statistics_match is True
    assert MATCH in report.statement()


def _fewer_refused(doc: dict[str, Any]) -> None:
    doc["firewall"]["refused"] -= 1


def _more_released(doc: dict[str, Any]) -> None:
    doc["tables"]["outcome"][0]["count"] += 1


def _hidden_holder(doc: dict[str, Any]) -> None:
    doc["tables"]["holder"].pop()


def _reordered(doc: dict[str, Any]) -> None:
    doc["tables"]["outcome"].reverse()


DOCTORED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "fewer refusals": (_fewer_refused, "firewall figure refused is 3 published but 4 in the log"),
    "a release added": (_more_released, "outcome 'released' is 2 published but 1 in the log"),
    "a holder left out": (_hidden_holder, "(1 in the log) is not published"),
    "rows reordered": (_reordered, "table outcome lists its rows in another order"),
}


@pytest.mark.parametrize("name", DOCTORED)
def test_doctored_statistics_fail_the_audit_naming_the_figure(service: Service, name: str) -> None:
    change, words = DOCTORED[name]
    with serving(log_with(service, doctor(service, change))) as url:
        result = audit(url, service)
    assert result.exit_code == 1, result.output
    lines = findings(result)
    size = service.ledger.size()
    assert lines, result.output
    assert all(line.startswith(f"entry {size} (statistics): ") for line in lines)
    assert any(words in line for line in lines), lines
    assert "FAILED with" in statement(result)
    assert "the published statistics failed their check" in statement(result)


def test_statistics_for_another_size_fail_the_audit(service: Service) -> None:
    def stale(size: int) -> Response:
        return JSONResponse(statistics_at(service, size - 1).to_json())

    with serving(log_with(service, stale)) as url:
        result = audit(url, service)
    assert result.exit_code == 1, result.output
    size = service.ledger.size()
    assert any(f"it covers size {size - 1}, not {size}" in line for line in findings(result))


def test_missing_statistics_fail_unless_the_auditor_is_told_to_skip_them(
    service: Service,
) -> None:
    with serving(log_with(service, None)) as url:
        missing = audit(url, service)
        skipped = audit(url, service, "--no-statistics")
    assert missing.exit_code == 1, missing.output
    assert any("is not published (HTTP 404)" in line for line in findings(missing))
    assert skipped.exit_code == 0, skipped.output
    assert "published statistics" not in statement(skipped)
    assert "not checked" in skipped.stdout


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"<html>statistics</html>", "is malformed: it is not JSON"),
        (b'{"v": 1}', "is malformed: the document is not an object with exactly"),
        (b"[" * 100_000, "is malformed: it is not JSON"),
    ],
)
def test_malformed_statistics_fail_the_audit(service: Service, body: bytes, words: str) -> None:
    with serving(log_with(service, lambda _: Response(body))) as url:
        result = audit(url, service)
    assert result.exit_code == 1, result.output
    assert any(words in line for line in findings(result)), findings(result)


def test_a_server_error_means_not_audited(service: Service) -> None:
    with serving(log_with(service, lambda _: Response(status_code=503))) as url:
        result = audit(url, service)
    assert result.exit_code == 2, result.output
    assert statement(result).startswith(f"The log at {url} was not audited")


def test_a_state_file_from_before_statistics_is_refused_with_a_way_forward(
    honest: str, service: Service, tmp_path: Path
) -> None:
    # A state file of that age is refused by its version (and a changed one by its seal),
    # so such a state reaches the auditor only through the Python API.
    state = tmp_path / "state.json"
    assert audit(honest, service, "--state", str(state)).exit_code == 0
    loaded = load_state(state, state_key(default_key_path())[0])
    assert loaded is not None and loaded.replay is not None
    del loaded.replay["statistics"]
    vkey = service.ledger.verifier_key
    with pytest.raises(InputError) as e:
        audit_log(honest, vkey, copy.deepcopy(loaded), statistics=True)
    assert e.value.field == "--state" and e.value.fix is not None
    assert "--no-statistics" in e.value.fix
    report, _ = audit_log(honest, vkey, loaded)  # without statistics, as --no-statistics
    assert report.ok, report.statement()
