"""Destruction certificates and refused request inputs, around what the service writes.

Companions to ``test_audit_smuggling.py``: the honest sequences still pass, and the
variants of its forgeries (a certificate logged again before its second use, a resumed
audit, an older state file) are still caught.
"""

from __future__ import annotations

from typing import Any

from audit_serving import MemoryLog, audit_in_memory, recipient_certificate
from audit_support import LogBuilder, S

from carewall.audit import AuditReport
from carewall.audit.state import AuditState

THEFT = "theft_act_1968_s1"
CRIME = "dpa2018_sch2_p1_para2_crime"
COUNTS = {"releases": 1, "subjects": 1, "released": ["address", "name"], "due": "2026-04-30"}
SECOND = {"agreement": "whittington-met-police-isa-2", "categories": ["contact_details"]}


def cert(name: str) -> str:
    """A deletion certificate the recipient (met-police) signed, published, by its hash."""
    return recipient_certificate(name)


def deletion(b: LogBuilder, certificate: str, time: str | None = None) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "deletion",
        "time": time or b.now(),
        "holder": "met-police",
        "categories": ["address", "name"],
        "records": 3,
        "certificate": certificate,
    }


def destroyed(b: LogBuilder, certificate: str, **terms: Any) -> dict[str, Any]:
    """The ``destroyed`` entry :meth:`LogBuilder.agreement` would write, not yet added."""
    entry = b.agreement("destroyed", **terms, **COUNTS, certificate=certificate)
    del b.entries[-1], b.groups[-1], b.context[-1]
    return entry


def withdrawn_pair(b: LogBuilder) -> None:
    """Two agreements registered, one release under both, both withdrawn."""
    b.agreement("registered")
    b.agreement("registered", **SECOND)
    rid = b.request(
        "met-police",
        "whittington-health",
        "prevention_detection_of_crime",
        CRIME,
        ["name", "address"],
        [S()],
        offence=THEFT,
    )
    b.review(rid, "ig-whittington")
    b.agreement("withdrawn", **COUNTS)
    b.agreement("withdrawn", **SECOND, **COUNTS)


def messages(report: AuditReport) -> list[str]:
    return [f.line() for f in report.findings]


def test_the_service_s_sequence_passes_even_after_the_recipient_s_own_purge() -> None:
    """deletion + destroyed in one transaction; the same certificate logged before by the
    recipient's own purge on this instance does not matter."""
    one = cert("one deletion")
    b = LogBuilder().init()
    withdrawn_pair(b)
    b.add(deletion(b, one))  # the recipient's purge, logged on its own
    b.add(deletion(b, one), destroyed(b, one))
    report = audit_in_memory(b.entries)
    assert report.ok, messages(report)


def test_a_deletion_written_with_the_destruction_but_dated_before_the_withdrawal() -> None:
    one = cert("one deletion")
    b = LogBuilder().init()
    withdrawn_pair(b)
    at = b.add(deletion(b, one, time="2020-01-01T00:00:00Z"), destroyed(b, one))
    report = audit_in_memory(b.entries)
    assert not report.ok
    assert any(f.index == at + 1 and "withdrawal's day" in f.message for f in report.findings)


def test_a_certificate_logged_again_for_a_second_agreement() -> None:
    """Each destruction has its deletion just before it, but both name one certificate."""
    one = cert("one deletion")
    b = LogBuilder().init()
    withdrawn_pair(b)
    b.add(deletion(b, one), destroyed(b, one))
    again = b.add(deletion(b, one), destroyed(b, one, **SECOND)) + 1
    report = audit_in_memory(b.entries)
    assert [f.index for f in report.findings] == [again], messages(report)
    (finding,) = report.findings
    assert "field 'certificate' is already registered" in finding.message
    assert one not in finding.message


def _resumed(state_edit: Any) -> AuditReport:
    """The first destruction in one run, the second (same certificate) in the next, from
    the state file edited by ``state_edit``."""
    one = cert("one deletion")
    b = LogBuilder().init()
    withdrawn_pair(b)
    b.add(deletion(b, one), destroyed(b, one))
    first_size = len(b.entries)
    b.add(deletion(b, one), destroyed(b, one, **SECOND))
    log = MemoryLog(b.entries)
    log.size = first_size
    first, state = log.audit()
    assert first.ok, messages(first)
    saved = state.to_json()
    state_edit(saved["replay"]["agreements"])
    log.size = len(b.entries)
    second, _ = log.audit(AuditState.from_json(saved))
    return second


def test_a_resumed_audit_remembers_the_certificates_used_before() -> None:
    report = _resumed(lambda agreements: None)
    assert any("already registered" in f.message for f in report.findings), messages(report)


def test_a_state_file_from_before_certificates_were_remembered() -> None:
    """No ``certificates`` (and deletions of three fields): it loads, and the destroyed
    agreements it holds still say which certificates are used."""

    def older(agreements: dict[str, Any]) -> None:
        del agreements["certificates"]
        agreements["deletions"] = {k: v[:3] for k, v in agreements["deletions"].items()}

    report = _resumed(older)
    assert any("already registered" in f.message for f in report.findings), messages(report)


def test_the_court_order_basis_with_its_court_order_passes() -> None:
    b = LogBuilder().init()
    rid = b.request(
        "islington-council",
        "whittington-health",
        "safeguarding_child",
        "children_act_1989_s47",
        ["name"],
        [S(child=True)],
        other_bases=["court_order"],
        court_order=True,
    )
    b.review(rid, "ig-whittington")
    report = audit_in_memory(b.entries)
    assert report.ok, messages(report)


def test_the_findings_name_the_field_not_the_values() -> None:
    b = LogBuilder().init()
    b.request(
        "met-police",
        "whittington-health",
        "prevention_detection_of_crime",
        "court_order",
        ["name"],
        [S()],
        other_bases=[CRIME],
    )
    request = len(b.entries) - 2
    report = audit_in_memory(b.entries)
    found = [f.message for f in report.findings if f.index == request]
    assert any(m.startswith("field 'offence' is null") for m in found), messages(report)
    assert any(m.startswith("field 'court_order' is false") for m in found), messages(report)
