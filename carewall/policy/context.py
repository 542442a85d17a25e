"""The Cedar context a request is decided in: its facts, as Cedar's JSON.

Every context of a request shares its request-wide part (holder, purpose, bases, offence,
court order, onward recipients) and differs only in the subject's facts and the count, so
:meth:`CedarContext.head` is written once per request and :meth:`CedarContext.tail` once per
subject combination, each vocabulary id's entity JSON once per process. What it writes is
``json.dumps(CedarContext.as_dict(...))`` character for character (a property test in
``tests/unit/policy/test_engine_paths.py`` holds the two equal for any facts).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any

from carewall.policy.facts import RequestFacts, SubjectFacts
from carewall.policy.offences import is_immigration_offence
from carewall.policy.schema import ENUM_TYPES
from carewall.vocab import vocabulary

__all__ = ["CedarContext"]

# What json.dumps writes for a str (its default ensure_ascii encoder), without the call
# through JSONEncoder.
_json_str = encode_basestring_ascii


def _entity(kind: str, value: str) -> dict[str, Any]:
    return {"__entity": {"type": ENUM_TYPES[kind], "id": value}}


def _json_value(value: object) -> str:
    """``json.dumps(value)``, without its call overhead for booleans and integers."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value)


class CedarContext:
    """Writes the Cedar context of each subject combination of a request."""

    def __init__(self) -> None:
        # Each vocabulary id's entity reference as JSON, as json.dumps writes it (for
        # context_json); derived from the packaged vocabulary, which cannot change under us.
        self._entity_json = {
            kind: {v: json.dumps(_entity(kind, v)) for v in vocabulary()[kind]}
            for kind in ("purpose", "legal_basis", "function")
        }

    def as_dict(self, facts: RequestFacts, subject: SubjectFacts, count: int) -> dict[str, Any]:
        """The Cedar context for one subject combination (facts from request and register)."""
        return {
            "holder": {"__entity": {"type": "Organisation", "id": facts.holder}},
            "purpose": _entity("purpose", facts.purpose),
            "legal_basis": _entity("legal_basis", facts.legal_basis),
            "other_bases": [_entity("legal_basis", b) for b in facts.other_bases],
            "offence": facts.offence or "",
            "immigration_offence": is_immigration_offence(facts.offence),
            "court_order": facts.court_order,
            "onward_recipients": [_entity("function", f) for f in facts.onward_recipients],
            "victim_or_witness": subject.is_victim_or_witness,
            "child": subject.is_child,
            "consent": subject.consent,
            "subjects": count,
        }

    def as_json(self, facts: RequestFacts, subject: SubjectFacts, count: int) -> str:
        """``json.dumps(self.as_dict(facts, subject, count))``, character for character.

        Built from pieces: the request-wide part once per request (:meth:`head`)
        and each vocabulary id's entity JSON once per engine. A property test holds the two
        equal for any facts, ids outside the vocabulary included.
        """
        return self.tail(self.head(facts), subject, count)

    def _entity_text(self, kind: str, value: str) -> str:
        known = self._entity_json[kind].get(value)
        return known if known is not None else json.dumps(_entity(kind, value))

    def head(self, facts: RequestFacts) -> str:
        """The request-wide part of every context of a request, up to the subject's facts."""
        ent = self._entity_text
        bases, onward = facts.other_bases, facts.onward_recipients
        return "".join(
            (
                '{"holder": {"__entity": {"type": "Organisation", "id": ',
                _json_str(facts.holder),
                '}}, "purpose": ',
                ent("purpose", facts.purpose),
                ', "legal_basis": ',
                ent("legal_basis", facts.legal_basis),
                ', "other_bases": [',
                ", ".join([ent("legal_basis", b) for b in bases]) if bases else "",
                '], "offence": ',
                _json_str(facts.offence or ""),
                ', "immigration_offence": ',
                _json_value(is_immigration_offence(facts.offence)),
                ', "court_order": ',
                _json_value(facts.court_order),
                ', "onward_recipients": [',
                ", ".join([ent("function", f) for f in onward]) if onward else "",
                "], ",
            )
        )

    @staticmethod
    def tail(head: str, subject: SubjectFacts, count: int) -> str:
        """One subject combination's whole context: ``head`` and the subject's facts."""
        return "".join(
            (
                head,
                '"victim_or_witness": ',
                _json_value(subject.is_victim_or_witness),
                ', "child": ',
                _json_value(subject.is_child),
                ', "consent": ',
                _json_value(subject.consent),
                ', "subjects": ',
                _json_value(count),
                "}",
            )
        )
