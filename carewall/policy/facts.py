"""The facts a decision rests on, as the public log states them (pure, no Cedar).

A request document holds personal data and free text; the policy decides only on these
facts, which are exactly what a ``request`` or ``release`` ledger entry carries. So an
outside auditor who rebuilds them from the log gets the same decision as the holder did.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from carewall.policy.offences import public_offence

if TYPE_CHECKING:
    from carewall.policy.request import DisclosureRequest

__all__ = ["RequestFacts", "SubjectFacts", "facts_of", "facts_of_document"]


@dataclass(frozen=True, order=True)
class SubjectFacts:
    """What the pledge needs to know about one person (claimed, or the holder's record)."""

    is_child: bool
    is_victim_or_witness: bool
    consent: bool

    def to_json(self) -> dict[str, bool]:
        return {
            "is_child": self.is_child,
            "is_victim_or_witness": self.is_victim_or_witness,
            "consent": self.consent,
        }


@dataclass(frozen=True)
class RequestFacts:
    """The request-wide facts: ids from the vocabulary and the register, and booleans."""

    requester: str
    holder: str
    purpose: str
    legal_basis: str
    other_bases: tuple[str, ...]
    offence: str | None  # the public form: a listed statute id, "unlisted", or None
    court_order: bool
    onward_recipients: tuple[str, ...]
    categories: tuple[str, ...]


# Every combination, made once: facts_of hands out these (equal values, fewer objects).
_SUBJECT_FACTS: Final = {
    combo: SubjectFacts(*combo) for combo in itertools.product((False, True), repeat=3)
}
# The public form of an offence is a function of the id alone (and the packaged list).
_public_offence: Final = lru_cache(maxsize=1024)(public_offence)


def facts_of(request: DisclosureRequest) -> tuple[RequestFacts, list[SubjectFacts]]:
    """The facts of a parsed request: request-wide, and each subject's as claimed."""
    facts = RequestFacts(
        requester=request.requester,
        holder=request.holder,
        purpose=request.purpose,
        legal_basis=request.legal_basis,
        other_bases=tuple(request.other_bases),
        offence=_public_offence(request.offence),
        court_order=request.court_order is not None,
        onward_recipients=tuple(request.onward_recipients),
        categories=tuple(request.categories),
    )
    basis_consent = request.has_consent
    # The parsed request's flags are bools (strict), so they name one of the eight.
    known = _SUBJECT_FACTS
    subjects = [
        known[
            s.is_child,
            s.is_victim_or_witness,
            basis_consent if s.consent is None else s.consent,
        ]
        for s in request.subjects
    ]
    return facts, subjects


def facts_of_document(doc: Mapping[str, Any]) -> tuple[RequestFacts, list[SubjectFacts]]:
    """:func:`facts_of` for a checked document as a dict (``parse_document``'s result).

    Equal to ``facts_of(parse_request(...))`` for the same document (a test holds them so).
    """
    other_bases = tuple(doc["other_bases"])
    legal_basis = doc["legal_basis"]
    facts = RequestFacts(
        requester=doc["requester"],
        holder=doc["holder"],
        purpose=doc["purpose"],
        legal_basis=legal_basis,
        other_bases=other_bases,
        offence=_public_offence(doc["offence"]),
        court_order=doc["court_order"] is not None,
        onward_recipients=tuple(doc["onward_recipients"]),
        categories=tuple(doc["categories"]),
    )
    basis_consent = legal_basis == "consent" or "consent" in other_bases
    # The checked document's flags are bools (strict), so they name one of the eight, as in
    # facts_of: shared objects, which the decision cache then finds by identity.
    known = _SUBJECT_FACTS
    subjects = [
        known[
            s["is_child"],
            s["is_victim_or_witness"],
            basis_consent if s["consent"] is None else s["consent"],
        ]
        for s in doc["subjects"]
    ]
    return facts, subjects
