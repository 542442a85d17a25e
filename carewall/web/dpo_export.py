"""The DPO record of a list of requests as CSV: one row per request, safe to open.

Every cell is text from the redacted record the admin API gives (ids, codes, dates, counts,
the requester's reference and court order). Requesters write some of it, so it is hostile:
a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed
with ``'`` so that no spreadsheet runs it as a formula (CSV injection). The csv module
quotes commas, quotes and line breaks. UTF-8, with a header row. The export is recorded in
the private admin log (how many requests; ids only).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi.responses import StreamingResponse

from carewall.service import RequestRecord, Service
from carewall.web.dpo_common import organisation, own_record, recorded, shown_outcome
from carewall.web.security import WebUser

__all__ = ["COLUMNS", "csv_response", "safe_cell"]

_FORMULA = ("=", "+", "-", "@", "\t", "\r")

COLUMNS = (
    "id",
    "reference",
    "received_at",
    "requester",
    "requester_name",
    "holder",
    "purpose",
    "legal_basis",
    "other_bases",
    "offence",
    "court_order_reference",
    "court_order_court",
    "court_order_date",
    "onward_recipients",
    "categories",
    "subjects",
    "children_claimed",
    "victims_or_witnesses_claimed",
    "asked_to_delay_notices",
    "stage",
    "outcome",
    "decided_at",
    "policy",
    "categories_refused_by_policy",
    "rules",
    "reviewer",
    "reviewed_at",
    "released_at",
    "recipient",
    "categories_released",
    "release_log_indexes",
    "appeal_by",
    "appeal_lodged_at",
    "appeal_result",
    "appeal_reviewer",
    "appeal_decided_at",
    "notices_sent",
    "notices_delivered",
    "notices_delayed",
    "notices_delayed_until",
    "withdrawn_by",
    "withdrawn_at",
    "request_log_index",
    "decision_log_index",
    # every appeal lodged (each subject of a release may appeal it once; the appeal_*
    # columns above are the one in hand), and how many wait for a decision
    "appeals",
    "appeals_waiting",
)


def safe_cell(value: Any) -> str:
    """``value`` as a CSV cell that no spreadsheet will run as a formula."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list | tuple):
        text = "; ".join(str(v) for v in value)
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _log_index(r: RequestRecord, kind: str) -> int | None:
    return next((e.log_index for e in r.events if e.kind == kind), None)


def _row(service: Service, r: RequestRecord) -> list[str]:
    court = r.court_order or {}
    decision = r.decision.get("categories") or {}
    refused = [
        c for c, d in decision.items() if isinstance(d, dict) and d.get("outcome") != "review"
    ]
    release, appeal = r.release, r.appeal
    sent = [n for n in r.notices if n.status == "sent"]
    delayed = [n for n in r.notices if n.status == "deferred"]
    values: list[Any] = [
        r.id,
        r.reference,
        r.received_at,
        r.requester,
        organisation(service, r.requester)["name"],
        r.holder,
        r.purpose,
        r.legal_basis,
        r.other_bases,
        r.offence,
        court.get("reference"),
        court.get("court"),
        court.get("date"),
        r.onward_recipients,
        r.categories,
        len(r.subjects),
        sum(s.is_child for s in r.subjects),
        sum(s.is_victim_or_witness for s in r.subjects),
        r.prejudice,
        r.stage,
        shown_outcome(r.stage, r.outcome),
        r.decided_at,
        r.decision.get("policy"),
        refused,
        r.decision.get("rules") or [],
        r.reviewer,
        r.reviewed_at,
        release.sent_at if release else None,
        release.recipient if release else None,
        release.categories if release else [],
        [g.log_index for g in release.groups] if release else [],
        appeal.by if appeal else None,
        appeal.lodged_at if appeal else None,
        appeal.result if appeal else None,
        appeal.reviewer if appeal else None,
        appeal.decided_at if appeal else None,
        len(sent),
        sum(n.delivered_at is not None for n in sent),
        len(delayed),
        delayed[0].review_date if delayed else None,
        r.withdrawn_by,
        r.withdrawn_at,
        _log_index(r, "received"),
        _log_index(r, "decided"),
        len(r.appeals),
        sum(a.result is None for a in r.appeals),
    ]
    return [safe_cell(v) for v in values]


def _lines(service: Service, user: WebUser, ids: Sequence[str]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    writer.writerow(COLUMNS)
    yield flush()
    for request_id in ids:
        writer.writerow(_row(service, own_record(service, user, request_id)))
        yield flush()


def csv_response(service: Service, user: WebUser, ids: Sequence[str]) -> StreamingResponse:
    """The CSV of the requests ``ids`` (each checked again to be the DPO's own), as a file."""
    recorded(service, user, "requests_export", [{"requests": len(ids)}])
    day = service.clock().date().isoformat()
    name = f"carewall-requests-{user.organisation}-{day}.csv"
    return StreamingResponse(
        _lines(service, user, ids),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
