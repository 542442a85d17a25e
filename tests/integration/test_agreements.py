"""The agreements register through the command line, on SQLite and PostgreSQL: the seeds'
forbidden agreements refused (and logged), a withdrawn agreement's destruction tracked to the
recipient's certificate, and every log it writes replayed by the outside auditor; forged
``agreement`` entries appended by hand fail the audit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cli_support import Cli, run
from fastapi import FastAPI
from fastapi.testclient import TestClient

from carewall.api import certificates
from carewall.api.app import create_app
from carewall.api.errors import install_error_handlers
from carewall.api.log import make_log_router
from carewall.audit import audit_log
from carewall.clean.certificate import HEADER, sign_certificate
from carewall.deadlines import AGREEMENT_END_GRACE_DAYS
from carewall.ledger import load_key
from carewall.policy.agreements import parse_agreement_text
from carewall.service import Service, tables
from carewall.service.statistics import statistics_at
from carewall.statistics import compute

EXAMPLES = Path(__file__).parents[2] / "examples" / "agreements"
ISA = "whittington-met-police-crime-isa"


def findings(service: Service) -> list[str]:
    """Replay the instance's whole log as ``carewall audit`` would; the findings' lines."""
    service.publish_pending()
    app = FastAPI()
    install_error_handlers(app)  # a 404 for an unpublished certificate, as served
    app.state.service = service
    app.include_router(make_log_router(lambda: service.ledger))
    app.include_router(certificates.router)  # the destruction certificates it registered
    with TestClient(app, base_url="http://testserver/log/") as client:
        report, _ = audit_log("http://testserver", service.ledger.verifier_key, client=client)
    return [f.line() for f in report.findings]


def entries(service: Service) -> list[dict[str, Any]]:
    return [json.loads(b) for b in service.ledger.entries(0, service.ledger.size())]


def agreement_stats(service: Service) -> dict[str, int]:
    log = entries(service)
    return dict(compute(log, origin="o", size=len(log)).agreements)


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Iterator[Cli]:
    yield Cli.init(tmp_path, db_url)


def register(cli: Cli, path: Path) -> tuple[int, dict[str, Any], str]:
    res = run(["agreement", "register", str(path), *cli.signing])
    return res.exit_code, json.loads(res.stdout) if res.stdout else {}, res.stderr


def isa_file(tmp: Path, **changes: Any) -> Path:
    """The allowed hospital–police agreement, starting a month ago (releases fall inside)."""
    start = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    text = (EXAMPLES / "hospital-police-crime-isa.toml").read_text()
    text = text.replace("start = 2026-01-01", f'start = "{start}"').replace(
        "end = 2027-12-31\n", ""
    )
    for key, value in changes.items():
        text = f"{key} = {json.dumps(value)}\n" + text
    path = tmp / "isa.toml"
    path.write_text(text)
    return path


# ----- the seeds: forbidden agreements are refused, and the refusal is public ----------------


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("dfe-home-office-npd-mou.toml", "pledge/no-immigration-offence"),
        ("nhs-digital-home-office-mou-2017.toml", "pledge/no-immigration-recipient"),
        ("police-victim-referrals.toml", "pledge/no-immigration-exemption"),
        ("hospital-police-onward-immigration.toml", "pledge/no-onward-immigration"),
    ],
)
def test_a_forbidden_agreement_from_the_seeds_is_refused_and_logged(
    cli: Cli, name: str, rule: str
) -> None:
    code, record, err = register(cli, EXAMPLES / name)
    assert code == 1 and record["state"] == "refused"
    assert rule in record["rules"] and rule in err
    svc = cli.service()
    try:
        last = entries(svc)[-1]
        assert last["kind"] == "agreement" and last["action"] == "refused"
        assert rule in last["rules"]
        assert "title" not in last and "MoU" not in json.dumps(last)  # no free text logged
        assert findings(svc) == []
        assert agreement_stats(svc)["refused"] == 1
    finally:
        svc.close()


def test_nhs_digital_home_office_mou_2017_back_dated_and_long_ended_is_still_refused(
    cli: Cli, tmp_path: Path
) -> None:
    text = (EXAMPLES / "nhs-digital-home-office-mou-2017.toml").read_text()
    path = tmp_path / "old.toml"
    path.write_text(text.replace("2017-01-01", "2001-01-01").replace("2018-11-13", "2001-02-01"))
    code, record, _ = register(cli, path)
    assert code == 1 and "pledge/no-immigration-recipient" in record["rules"]


def test_an_agreement_id_is_never_reused_even_after_a_refusal(cli: Cli) -> None:
    register(cli, EXAMPLES / "dfe-home-office-npd-mou.toml")
    res = run(
        ["agreement", "register", str(EXAMPLES / "dfe-home-office-npd-mou.toml"), *cli.signing]
    )
    assert res.exit_code != 0 and res.stderr.startswith("error: id:")
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('id = "Whittington-ISA"', "id"),
        ('recipient = "met-police "', "recipient"),
        ('end = "2020-01-01"', "end"),  # before its start
        ('purpose = "Prevention_Detection_Of_Crime"', "purpose"),
    ],
)
def test_a_malformed_agreement_is_refused_naming_the_field(
    cli: Cli, tmp_path: Path, text: str, field: str
) -> None:
    path = isa_file(tmp_path)
    key = text.split(" =")[0]
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith(f"{key} =")]
    path.write_text(text + "\n" + "\n".join(lines) + "\n")
    res = run(["agreement", "register", str(path), *cli.signing])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"error: {field}:"), res.stderr


# ----- withdrawal and destruction, tracked to the recipient's certificate --------------------


def certificate(signer_key: Path, holder: str, categories: list[str], issued: str) -> str:
    body = {
        "type": HEADER,
        "holder": holder,
        "issued": issued,
        "authority": "Withdrawal of agreement " + ISA,
        "log": "police.test/log",
        "source": {"kind": "sqlite", "name": "crimint.db"},
        "action": "null",
        "date_range": None,
        "categories": categories,
        "records": 2,
        "tables": [],
        "post_purge_scan": {"rules": [], "tables": 1, "rows": 2, "columns_checked": 2,
                            "values_remaining": 0, "columns_flagged": 0},
    }  # fmt: skip
    return sign_certificate(body, load_key(signer_key))


def test_a_withdrawn_agreement_s_destruction_is_tracked_to_its_certificate(
    cli: Cli, tmp_path: Path
) -> None:
    (tmp_path / "police").mkdir()
    police = Cli.init(tmp_path / "police")  # the recipient runs its own carewall instance
    police_key = tmp_path / "police" / "cw.key"
    police_vkey = (tmp_path / "police" / "cw.vkey").read_text().strip()
    code, record, err = register(cli, isa_file(tmp_path, recipient_key=police_vkey))
    assert code == 0, err
    assert record["state"] == "registered" and record["rules"] == []
    cli.released()  # name and address released; nationality refused by the pledge
    cli.released()
    cli.refused()  # a refused request is not a release

    res = run(["agreement", "withdraw", ISA, *cli.signing])
    assert res.exit_code == 0, res.output
    withdrawn = json.loads(res.stdout)
    assert (withdrawn["releases"], withdrawn["subjects"]) == (2, 2)
    assert withdrawn["released"] == ["address", "name"] and withdrawn["due"]
    letter = run(["agreement", "letter", ISA, "--db", cli.url])
    assert letter.exit_code == 0, letter.output
    assert f"destroy this information, and every copy of it, by {withdrawn['due']}" in letter.stdout
    assert "2 time(s) information about 2 people: address and name" in letter.stdout
    assert f"agreement destroyed {ISA} --certificate FILE" in letter.stdout
    for private in ("S0", "ref", "contact"):  # organisations, kinds and counts, never a person
        assert private not in letter.stdout
    again = run(["agreement", "withdraw", ISA, *cli.signing])
    assert again.exit_code != 0 and again.stderr.startswith("error: id:")

    today = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    both, old = ["address", "name"], "2020-01-01T00:00:00Z"
    cases = {
        "wrong-recipient": certificate(police_key, "whittington-health", both, today),
        "other-categories": certificate(police_key, "met-police", ["nationality"], today),
        "before-withdrawal": certificate(police_key, "met-police", both, old),
        "wrong-key": certificate(tmp_path / "cw.key", "met-police", both, today),  # ours
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.cert"
        path.write_text(text)
        res = run(["agreement", "destroyed", ISA, "--certificate", str(path), *cli.signing])
        assert res.exit_code in (1, 2), (name, res.output)
        assert res.stderr.startswith(("error: certificate:", "error: FILE:")), (name, res.stderr)
        assert "Traceback" not in res.output

    good = tmp_path / "good.cert"
    good.write_text(certificate(police_key, "met-police", ["address", "name"], today))
    res = run(["agreement", "destroyed", ISA, "--certificate", str(good), *cli.signing])
    assert res.exit_code == 0, res.output
    done = json.loads(res.stdout)
    assert done["state"] == "destroyed" and done["certificate"].startswith("sha256:")
    twice = run(["agreement", "destroyed", ISA, "--certificate", str(good), *cli.signing])
    assert twice.exit_code != 0 and twice.stderr.startswith("error: id:")

    svc = cli.service()
    try:
        log = entries(svc)
        deletion, destroyed = log[-2], log[-1]
        assert deletion["kind"] == "deletion" and deletion["holder"] == "met-police"
        assert destroyed["action"] == "destroyed"
        assert destroyed["certificate"] == deletion["certificate"] == done["certificate"]
        (registered,) = [e for e in log if e.get("action") == "registered"]
        assert registered["recipient_key"] == police_vkey  # pinned in the log, before
        assert all("recipient_key" not in e for e in log if e.get("action") != "registered")
        assert findings(svc) == []  # the certificate is served, and checked
        sha = done["certificate"].removeprefix("sha256:")
        with TestClient(create_app(svc)) as client:
            served = client.get(f"/certificates/{sha}")
            assert served.status_code == 200 and served.content == good.read_bytes()
            assert served.headers["access-control-allow-origin"] == "*"
            unknown = client.get("/certificates/" + "0" * 64)
            assert unknown.status_code == 404 and unknown.json()["field"] == "sha256"
            for bad in ("ABC", "sha256:" + sha, sha.upper(), sha + "0"):
                r = client.get(f"/certificates/{bad}")
                assert r.status_code == 422 and r.json()["field"] == "sha256", (bad, r.text)
        assert agreement_stats(svc) == {
            "registered": 1, "refused": 0, "withdrawn": 1, "destruction_requested": 1,
            "destroyed": 1, "destruction_overdue": 0, "ended_not_withdrawn": 0,
        }  # fmt: skip
        # A destruction registered before certificates were kept (migration 0013): the
        # audit says its certificate is not published, until the very file is given.
        with svc.store.write() as conn:
            conn.execute(sa.update(tables.agreements).values(certificate_text=None))
        assert any("does not publish" in line for line in findings(svc)), findings(svc)
    finally:
        svc.close()
    publish = ["agreement", "publish-certificate", ISA, "--db", cli.url, "--certificate"]
    other = run([*publish, str(tmp_path / "wrong-recipient.cert")])
    assert other.exit_code == 2 and other.stderr.startswith("error: certificate:"), other.output
    res = run([*publish, str(good)])
    assert res.exit_code == 0, res.output
    svc = cli.service()
    try:
        assert findings(svc) == []
    finally:
        svc.close()
    assert police.url != cli.url  # the recipient's own instance, not ours


def test_pinning_this_instances_own_log_key_for_the_recipient_is_refused(
    cli: Cli, tmp_path: Path
) -> None:
    """The holder would then certify the recipient's deletion itself."""
    svc = cli.service()
    try:
        own, size = svc.ledger.verifier_key, svc.ledger.size()
    finally:
        svc.close()
    code, _record, err = register(cli, isa_file(tmp_path, recipient_key=own))
    assert code == 2 and err.startswith("error: recipient_key:"), err
    svc = cli.service()
    try:
        assert svc.ledger.size() == size  # refused before anything was logged
    finally:
        svc.close()


def test_no_destruction_letter_before_a_withdrawal(cli: Cli, tmp_path: Path) -> None:
    code, _record, err = register(cli, isa_file(tmp_path))
    assert code == 0, err
    res = run(["agreement", "letter", ISA, "--db", cli.url])
    assert res.exit_code != 0 and res.stderr.startswith("error: id:"), res.output
    assert "Traceback" not in res.output


def test_destroyed_without_a_certificate_or_key_is_refused(cli: Cli, tmp_path: Path) -> None:
    register(cli, isa_file(tmp_path))
    cli.released()
    run(["agreement", "withdraw", ISA, *cli.signing])
    res = run(["agreement", "destroyed", ISA, *cli.signing])
    assert res.exit_code == 2 and "--certificate" in res.stderr
    cert = tmp_path / "c.cert"
    cert.write_text(
        certificate(tmp_path / "cw.key", "met-police", ["address", "name"], "2099-01-01T00:00:00Z")
    )
    res = run(["agreement", "destroyed", ISA, "--certificate", str(cert), *cli.signing])
    assert res.exit_code == 2 and res.stderr.startswith("error: recipient_key:")


def test_withdrawing_with_nothing_released_asks_for_no_destruction(
    cli: Cli, tmp_path: Path
) -> None:
    register(cli, isa_file(tmp_path))
    res = run(["agreement", "withdraw", ISA, *cli.signing])
    assert json.loads(res.stdout)["due"] is None
    svc = cli.service()
    try:
        assert findings(svc) == []
        assert agreement_stats(svc)["destruction_requested"] == 0
    finally:
        svc.close()


def test_overdue_destruction_appears_on_the_public_statistics(cli: Cli, tmp_path: Path) -> None:
    register(cli, isa_file(tmp_path))
    cli.released()
    run(["agreement", "withdraw", ISA, "--due-days", "30", *cli.signing])
    svc = cli.service()
    try:
        assert agreement_stats(svc)["destruction_overdue"] == 0
        later = datetime.now(UTC) + timedelta(days=31)
        svc.clock = lambda: later  # the log's own date moves on with its next entry
        from carewall.service.agreement_records import list_agreements

        assert [r.id for r in list_agreements(svc, overdue=True)] == [ISA]
        register_path = EXAMPLES / "dfe-home-office-npd-mou.toml"
        from carewall.policy.agreements import parse_agreement_text

        svc.register_agreement(parse_agreement_text(register_path.read_bytes(), register_path.name))
        assert agreement_stats(svc)["destruction_overdue"] == 1
        assert findings(svc) == []  # overdue is a statistic, not a finding
    finally:
        svc.close()


def test_an_agreement_ended_and_never_withdrawn_is_published_and_fails_the_audit(
    cli: Cli, tmp_path: Path
) -> None:
    """It ends today with a release under it; a month and a day later it is still not
    withdrawn. The statistics page and its download count it, the auditor recomputes the
    same figure and fails the agreement, naming it and its end date (never a person)."""
    end = datetime.now(UTC).date().isoformat()
    code, _record, err = register(cli, isa_file(tmp_path, end=end))
    assert code == 0, err
    cli.released()  # under it, on its last day
    svc = cli.service()
    try:
        assert agreement_stats(svc)["ended_not_withdrawn"] == 0 and findings(svc) == []
        later = datetime.now(UTC) + timedelta(days=AGREEMENT_END_GRACE_DAYS + 1)
        svc.clock = lambda: later  # the log's own date moves on with its next entry
        other = EXAMPLES / "dfe-home-office-npd-mou.toml"
        svc.register_agreement(parse_agreement_text(other.read_bytes(), other.name))
        svc.publish_pending()
        assert dict(statistics_at(svc).agreements)["ended_not_withdrawn"] == 1
        with TestClient(create_app(svc), base_url="http://testserver/log/") as client:
            page = client.get("http://testserver/statistics", headers={"Accept": "text/html"})
            doc = client.get("http://testserver/statistics.json").json()
            report, _ = audit_log(
                "http://testserver", svc.ledger.verifier_key, client=client, statistics=True
            )
        assert page.status_code == 200
        assert f"Agreements ended more than {AGREEMENT_END_GRACE_DAYS} days ago" in page.text
        assert doc["agreements"]["ended_not_withdrawn"] == 1
        assert report.statistics_match is True
        lines = [f.line() for f in report.findings]
        assert [x for x in lines if f"agreement {ISA!r} ended on {end}" in x], lines
    finally:
        svc.close()


# ----- hand-written agreement entries fail the audit -----------------------------------------


def _append(cli: Cli, *forged: dict[str, Any]) -> list[str]:
    text = "\n".join(json.dumps(e) for e in forged) + "\n"
    res = run(["ledger", "append", *cli.signing, "-"], stdin=text)
    assert res.exit_code == 0, res.output
    svc = cli.service()
    try:
        return findings(svc)
    finally:
        svc.close()


def _like(svc_cli: Cli, path: Path) -> dict[str, Any]:
    """A registered entry for the agreement in ``path``, as the service would write it."""
    svc = svc_cli.service()
    try:
        register(svc_cli, path)
        entry = dict(entries(svc)[-1])
    finally:
        svc.close()
    return entry


def test_a_hand_written_registration_of_a_forbidden_agreement_fails_the_audit(
    cli: Cli,
) -> None:
    entry = _like(cli, EXAMPLES / "dfe-home-office-npd-mou.toml")
    forged = {**entry, "agreement": "dfe-ho-forged", "action": "registered", "rules": []}
    found = _append(cli, forged)
    assert any("registers an agreement that the pledge forbids" in f for f in found), found


def test_a_hand_written_destruction_without_a_deletion_entry_fails_the_audit(
    cli: Cli, tmp_path: Path
) -> None:
    register(cli, isa_file(tmp_path))
    cli.released()
    run(["agreement", "withdraw", ISA, *cli.signing])
    svc = cli.service()
    try:
        withdrawn = entries(svc)[-1]
    finally:
        svc.close()
    forged = {**withdrawn, "action": "destroyed", "certificate": "sha256:" + "ab" * 32}
    found = _append(cli, forged)
    assert any("no deletion entry before it holds its certificate" in f for f in found), found


def test_a_hand_written_withdrawal_that_hides_releases_fails_the_audit(
    cli: Cli, tmp_path: Path
) -> None:
    register(cli, isa_file(tmp_path))
    svc = cli.service()
    try:
        registered = entries(svc)[-1]
    finally:
        svc.close()
    cli.released()
    hidden = {**registered, "action": "withdrawn", "releases": 0, "subjects": 0, "released": []}
    found = _append(cli, hidden)
    assert any("the log released 1 about 1" in f for f in found), found
