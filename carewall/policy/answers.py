"""Cedar's answers, read straight from the JSON its evaluator writes.

``cedarpy.is_authorized_batch`` turns each answer string into a dict with ``json.loads`` and
wraps it in an object; the engine reads three things of it (the decision, the policies that
determined it, the errors) and nothing else, so it calls the evaluator underneath and reads
those three with one typed ``msgspec`` decode per answer (a tenth of the call's time).
Every field is required and the decision must be one of Cedar's three: an answer in any
other shape fails to decode, and the engine refuses the category (fail closed). A test
holds these answers to the public wrapper's on random requests, errors included.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["ALLOW", "DENY", "UNDECIDED", "Answer", "Diagnostics", "read_answer"]

# Cedar's three decisions, as it writes them.
ALLOW, DENY, UNDECIDED = "Allow", "Deny", "NoDecision"


class Diagnostics(msgspec.Struct, frozen=True):
    """The policies that determined an answer (Cedar's positional ids) and any errors."""

    reason: list[str]
    errors: list[Any]

    @property
    def reasons(self) -> list[str]:
        return self.reason


class Answer(msgspec.Struct, frozen=True):
    """One of Cedar's answers: its decision and diagnostics (metrics are not read)."""

    decision: Literal["Allow", "Deny", "NoDecision"]
    diagnostics: Diagnostics


read_answer = msgspec.json.Decoder(Answer).decode
