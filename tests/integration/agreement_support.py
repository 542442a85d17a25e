"""Agreements for the DPO page's tests, made with the service's own functions.

:func:`build_agreements` registers one agreement in each state the page tells apart, all
on the service's clock at the day ``D`` it is given (one release under several of them on
that day), so that looking later (``svc.clock`` moved on, no entry written) shows them:

==================== ==================== ================================================
id                   at D + 10            at D + 31
==================== ==================== ================================================
isa-active           Registered           Registered
isa-ending           Ended — withdraw by  Ended — not withdrawn (end D, so by D + 30)
isa-ended-empty      Ended                Ended (ended before the release)
isa-withdrawn        Withdrawn — due      Destruction overdue (due D + 30)
isa-withdrawn-empty  Withdrawn            Withdrawn (nothing went, nothing owed)
isa-destroyed        Destroyed            Destroyed
isa-refused          Refused              Refused (the pledge: an immigration recipient)
==================== ==================== ================================================

Written on D, the log itself owes nothing yet, so it passes the auditor.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from api_support import HOLDER, reviewable

from carewall.clean.certificate import HEADER, sign_certificate
from carewall.ledger.note import Signer
from carewall.policy.agreements import Agreement, parse_agreement
from carewall.service import Service

RECIPIENT = "met-police"
STATES = (
    "isa-active",
    "isa-ending",
    "isa-ended-empty",
    "isa-withdrawn",
    "isa-withdrawn-empty",
    "isa-destroyed",
    "isa-refused",
)


def agreement(agreement_id: str, start: date, end: date | None = None, **more: Any) -> Agreement:
    """A hospital–police style agreement of the holder's: crime, name and address."""
    doc: dict[str, Any] = {
        "id": agreement_id,
        "holder": HOLDER,
        "recipient": RECIPIENT,
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "categories": ["name", "address"],
        "start": start.isoformat(),
        "subjects": {"victims_or_witnesses": False},
        **({"end": end.isoformat()} if end else {}),
        **more,
    }
    return parse_agreement(doc)


def certificate(signer: Signer, categories: list[str], issued: datetime) -> bytes:
    """The recipient's signed deletion certificate, as `carewall purge` would write it."""
    body = {
        "type": HEADER,
        "holder": RECIPIENT,
        "issued": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "authority": "Withdrawal of agreement isa-destroyed",
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
    return sign_certificate(body, signer).encode("utf-8")


def build_agreements(svc: Service, now: datetime) -> str:
    """Every state of the table above, written with ``svc.clock`` at ``now`` (day D); the
    released request's id (never shown on the page)."""
    svc.clock = lambda: now
    d = now.date()
    police = Signer.generate("police.test/log")  # the recipient's own log key
    month = timedelta(days=30)
    long_ago = (d - timedelta(days=100), d - timedelta(days=50))
    svc.register_agreement(agreement("isa-active", d - month))
    svc.register_agreement(
        agreement("isa-ending", d - month, d, title="Crime information-sharing agreement")
    )
    svc.register_agreement(agreement("isa-ended-empty", *long_ago))
    svc.register_agreement(agreement("isa-withdrawn", d - month))
    svc.register_agreement(agreement("isa-withdrawn-empty", *long_ago))
    svc.register_agreement(agreement("isa-destroyed", d - month, recipient_key=police.vkey()))
    refused = agreement("isa-refused", d - month, recipient="home-office-ie", subjects={})
    assert svc.register_agreement(refused).state == "refused"
    released = svc.submit(reviewable()).id
    svc.review(released, "dpo-islington", True)  # under isa-active, -ending, -withdrawn, …
    svc.withdraw_agreement("isa-withdrawn")
    svc.withdraw_agreement("isa-withdrawn-empty")
    went = svc.withdraw_agreement("isa-destroyed")
    assert went.releases == 1 and went.due
    done = svc.agreement_destroyed("isa-destroyed", certificate(police, went.released, now))
    assert done.state == "destroyed"
    return released
