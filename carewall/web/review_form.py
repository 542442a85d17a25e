"""The review and appeal forms: what a reviewer posts, checked, in the service's own terms.

The form states, per person, the three facts the holder owns (child, victim or witness,
consent) as yes/no radios named ``facts-<position>-<fact>``; the service takes them as
``{"subject": position, <fact>: bool}`` statements exactly as the API's ``facts`` are. A
fact left out is confirmed as the requester claimed it, except consent, which counts only
where the reviewer says yes (contract §3). The deferral choice and the facts are sent only
with a decision that releases, as the API requires.

Errors come back as GOV.UK error-summary items whose ``href`` is the id of the field at
fault, including the service's own errors (``facts[k].consent`` → ``#facts-<p>-consent``).
Personal data is never written into an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from carewall.errors import CarewallError
from carewall.service import RequestRecord
from carewall.web.forms import problem

__all__ = [
    "FACTS",
    "MAX_FORM_SUBJECTS",
    "MAX_NOTE",
    "Posted",
    "parse_appeal",
    "parse_review",
    "read_date",
    "service_problem",
    "subjects_view",
]

FACTS = ("is_child", "is_victim_or_witness", "consent")
MAX_FORM_SUBJECTS = 50  # beyond this the page states the facts are confirmed as claimed
MAX_NOTE = 5000  # as the API's ReviewIn.note
_YES_NO = {"yes": True, "no": False}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SERVICE_FACT = re.compile(r"facts\[([0-9]+)\](?:\.([a-z_]+))?", re.ASCII)


@dataclass
class Posted:
    """A posted decision: the choice, the holder's statements, the form as sent back."""

    choice: bool | None = None  # release (review) or uphold (appeal)
    facts: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # facts[k] is about positions[k]
    defer_until: str | None = None
    no_defer: bool = False
    note: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, anchor: str, text: str) -> None:
        self.errors.append({"text": text, "href": f"#{anchor}"})


def _formable(record: RequestRecord) -> int:
    """How many people the form states facts for (none on a very large request)."""
    n = len(record.subjects)
    return n if n <= MAX_FORM_SUBJECTS else 0


def _facts(form: dict[str, str], record: RequestRecord, out: Posted) -> None:
    for s in record.subjects[: _formable(record)]:
        said: dict[str, Any] = {}
        for fact in FACTS:
            key = f"facts-{s.position}-{fact}"
            raw = form.get(key)
            if raw is None:
                continue
            out.values[key] = raw[:10]
            if raw not in _YES_NO:
                out.error(key, f"Select yes or no for person {s.position + 1}")
                continue
            said[fact] = _YES_NO[raw]
        if said:
            out.facts.append({"subject": s.position, **said})
            out.positions.append(s.position)


def read_date(form: dict[str, str], out: Posted) -> str | None:
    parts = {p: form.get(f"defer_until-{p}", "").strip() for p in ("day", "month", "year")}
    for p, v in parts.items():
        out.values[f"defer_until-{p}"] = v[:10]
    if not any(parts.values()):
        return None  # the service's standard review period
    shapes = {"day": r"[0-9]{1,2}", "month": r"[0-9]{1,2}", "year": r"[0-9]{4}"}
    try:
        if not all(re.fullmatch(shapes[p], v, re.ASCII) for p, v in parts.items()):
            raise ValueError
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"])).isoformat()
    except ValueError:
        out.error("defer_until-day", "The review date must be a real date, for example 27 3 2027")
        return None


def _deferral(form: dict[str, str], record: RequestRecord, out: Posted) -> None:
    """Only where the request asked to delay the notices, as the page offers it."""
    if not record.prejudice:
        return
    raw = form.get("deferral")
    out.values["deferral"] = (raw or "")[:10]
    if raw == "defer":
        out.defer_until = read_date(form, out)
    elif raw == "no":
        out.no_defer = True
    else:
        out.error("deferral", "Select whether to delay telling the people")


def _keep(form: dict[str, str], record: RequestRecord, out: Posted) -> None:
    """Keep what was chosen but not used (facts with a refusal), to show it again."""
    keys = [f"facts-{s.position}-{f}" for s in record.subjects[: _formable(record)] for f in FACTS]
    keys += ["deferral", "defer_until-day", "defer_until-month", "defer_until-year"]
    for key in keys:
        if key in form:
            out.values[key] = form[key][:10]


def _note(form: dict[str, str], out: Posted) -> None:
    raw = form.get("note", "")
    out.values["note"] = raw[:MAX_NOTE]
    text = raw.strip()
    if len(text) > MAX_NOTE:
        out.error("note", f"The note must be {MAX_NOTE:,} characters or fewer")
    elif _CONTROL.search(text):
        out.error("note", "The note must contain only letters, numbers, spaces and punctuation")
    else:
        out.note = text or None


def _choice(form: dict[str, str], options: dict[str, bool], out: Posted, text: str) -> None:
    raw = form.get("decision")
    out.values["decision"] = (raw or "")[:20]
    if raw in options:
        out.choice = options[raw]
    else:
        out.error("decision", text)


def parse_review(form: dict[str, str], record: RequestRecord) -> Posted:
    """The release reviewer's form: release or refuse, with facts, deferral and a note."""
    out = Posted()
    _choice(
        form,
        {"release": True, "refuse": False},
        out,
        "Select whether to release what the policy permits or refuse",
    )
    if out.choice:  # facts and the deferral are decided only with a release
        _facts(form, record, out)
        _deferral(form, record, out)
    else:
        _keep(form, record, out)
    _note(form, out)
    return out


def parse_appeal(form: dict[str, str], record: RequestRecord) -> Posted:
    """The appeal reviewer's form: keep (uphold) or change (overturn) the first decision.

    Facts and deferral go with it only when overturning a refusal releases data.
    """
    out = Posted()
    _choice(
        form,
        {"uphold": True, "overturn": False},
        out,
        "Select whether to keep or change the first decision",
    )
    appeal = record.appeal
    if out.choice is False and appeal is not None and appeal.prior_outcome == "refused":
        _facts(form, record, out)
        _deferral(form, record, out)
    else:
        _keep(form, record, out)
    return out


def _anchor(name: str | None, posted: Posted) -> str:
    """The page's field id for a field the service named."""
    if not name:
        return "decision"
    found = _SERVICE_FACT.fullmatch(name)
    if found:
        k, fact = int(found.group(1)), found.group(2)
        pos = posted.positions[k] if k < len(posted.positions) else 0
        return f"facts-{pos}-{fact if fact in FACTS else FACTS[0]}"
    if name.startswith("facts"):
        return f"facts-{posted.positions[0] if posted.positions else 0}-{FACTS[0]}"
    if name in ("defer_until", "until"):
        return "defer_until-day"
    return {"no_defer": "deferral", "note": "note"}.get(name, "decision")


def service_problem(e: CarewallError, posted: Posted) -> dict[str, Any]:
    """The service's refusal as an error-summary item linked to the field it names."""
    item = problem(e, "decision")
    item["href"] = "#" + _anchor(e.diagnostics().get("field"), posted)
    return item


def subjects_view(record: RequestRecord, values: dict[str, str]) -> list[dict[str, Any]]:
    """Each person on the form: the claim, the holder's record, and the radios' values.

    Child and victim-or-witness start as claimed (to confirm or correct); consent starts at
    no, so it counts only when the reviewer says yes for that person.
    """
    out = []
    for s in record.subjects[: _formable(record)]:
        claimed = {"is_child": s.is_child, "is_victim_or_witness": s.is_victim_or_witness}
        start = {f: "yes" if claimed.get(f) else "no" for f in ("is_child", "is_victim_or_witness")}
        start["consent"] = "no"
        out.append(
            {
                "position": s.position,
                "number": s.position + 1,
                "ref": s.ref,
                "claimed": {**claimed, "consent": s.consent},
                "held": s.held.model_dump() if s.held else None,
                "values": {f: values.get(f"facts-{s.position}-{f}", start[f]) for f in FACTS},
            }
        )
    return out
