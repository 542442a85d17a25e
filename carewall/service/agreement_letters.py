"""The letter asking a recipient to destroy what it received under a withdrawn agreement.

Withdrawing an agreement records, in the public log, what was released under it and the
date by which its destruction is due (:mod:`carewall.service.agreements`). This is the
request itself, for the holder's DPO to send: what went, under which agreement, by when it
must be destroyed, and what proof to send back (a signed deletion certificate, which
``carewall agreement destroyed`` registers). It names organisations, kinds of data and
counts: never a person.
"""

from __future__ import annotations

from carewall.errors import ConflictError
from carewall.labels import label
from carewall.service.agreement_records import AgreementRecord

__all__ = ["destruction_letter"]


def _kinds(categories: list[str]) -> str:
    names = [label("category", c).lower() for c in categories]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def destruction_letter(
    record: AgreementRecord, holder_name: str, recipient_name: str, log_origin: str
) -> tuple[str, str]:
    """(subject line, body) of the request to destroy; ConflictError unless one is due."""
    if record.state not in ("withdrawn", "destroyed") or not record.due:
        raise ConflictError(
            "no destruction has been asked for under this agreement",
            field="id",
            fix="withdraw the agreement first (nothing released under it asks for none)",
        )
    terms = record.terms
    people = record.subjects or 0
    lines = [
        f"To:   {recipient_name} ({terms['recipient']})",
        f"From: {holder_name} ({terms['holder']})",
        "",
        f"Data-sharing agreement {record.id} was withdrawn on {str(record.withdrawn_at)[:10]}.",
        "",
        f"Under it, we released {record.releases} time(s) information about {people} "
        f"{'person' if people == 1 else 'people'}: {_kinds(record.released)}.",
        f"Purpose: {label('purpose', terms['purpose'])}. "
        f"Law: {label('legal_basis', terms['legal_basis'])}.",
        "",
        f"Please destroy this information, and every copy of it, by {record.due}.",
        "",
        "Then send us a deletion certificate signed with your published log key",
        "(carewall/deletion-certificate/v1: `carewall purge SOURCE --apply --certificate FILE`",
        "writes one), naming your organisation and the kinds of data above. We register it",
        f"with `carewall agreement destroyed {record.id} --certificate FILE`.",
        "",
        f"This request is public: the withdrawal is entry {record.withdrawn_index} of our log",
        f"{log_origin}, and anyone auditing it sees whether destruction was confirmed by",
        "the date above.",
    ]
    if record.state == "destroyed":
        lines += ["", f"Destruction was confirmed on {str(record.destroyed_at)[:10]}."]
    subject = f"Please destroy the information shared under agreement {record.id}"
    return subject, "\n".join(lines) + "\n"
