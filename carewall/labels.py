"""Plain-English labels for every id the pages show, from one catalogue (``labels.toml``).

Pure: no database, no HTTP, no clock. :func:`label` and :func:`sentence` never raise: an id
the catalogue does not know (one an instance added, or a hostile one) shows as itself with
underscores as spaces, and the templates escape it. :func:`describe_entry` says one public
log entry (contract §6) in plain words, from that entry's own fields and the catalogue only.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

__all__ = ["Label", "catalogue", "describe_entry", "label", "offence_text", "sentence"]


@dataclass(frozen=True)
class Label:
    label: str  # a short sentence-case noun phrase, no full stop
    sentence: str  # one or two plain sentences, ending in a full stop


@cache
def catalogue() -> Mapping[str, Mapping[str, Label]]:
    """Every label, by kind (``function``, ``rule``, ``entry``…) then id, read once."""
    text = resources.files("carewall").joinpath("labels.toml").read_text("utf-8")
    return MappingProxyType(
        {
            kind: MappingProxyType(
                {i: Label(str(e["label"]), str(e["sentence"])) for i, e in ids.items()}
            )
            for kind, ids in tomllib.loads(text).items()
        }
    )


def label(kind: str, id: str) -> str:
    """The short label of ``id``; an unknown id is itself, with underscores as spaces."""
    found = catalogue().get(kind, {}).get(id) if isinstance(id, str) else None
    return found.label if found else str(id).replace("_", " ")


def sentence(kind: str, id: str) -> str:
    """The plain sentence explaining ``id``, or ``""`` when the catalogue does not know it."""
    found = catalogue().get(kind, {}).get(id) if isinstance(id, str) else None
    return found.sentence if found else ""


# ----- saying a log entry in plain words --------------------------------------------------


def _lc(text: str) -> str:
    """``text`` to go mid-sentence: first letter in lower case, unless it starts an acronym."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def _a(text: str) -> str:
    return ("an " if text[:1].lower() in ("a", "e", "i", "o", "u") else "a ") + text


def _and(items: list[str]) -> str:
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)


def _labels(kind: str, ids: Iterable[str]) -> str:
    return _and([_lc(label(kind, i)) for i in ids]) or "nothing"


def _n(count: int, one: str = "person", many: str = "people") -> str:
    return f"{count} {one if count == 1 else many}"


def _org(id: str, function: str) -> str:
    return f"{id} ({_a(_lc(label('function', function)))})"


def _some(k: int, total: int, one: str, many: str) -> list[str]:
    """How many of ``total`` people are something: "1 is a child.", "They are children."."""
    if k == total > 0:
        return [f"They are {many}." if total > 1 else f"The person is {one}."]
    return [f"{k} is {one}." if k == 1 else f"{k} are {many}."] if k > 0 else []


_OFFENCE = re.compile(r"([a-z_]+_[0-9]{4})_s([0-9]+)([a-z]*)((?:_[a-z0-9]+)*)", re.ASCII)


def offence_text(offence: str) -> str:
    """``immigration_act_1971_s24a_1`` as "Immigration Act 1971, section 24A(1)"."""
    m = _OFFENCE.fullmatch(offence)
    if not m:  # "unlisted": the Act is not on the packaged list
        return "one under an Act that is not on carewall's list"
    subs = "".join(f"({part})" for part in m[4].split("_")[1:])
    return f"{label('act', m[1])}, section {m[2]}{m[3].upper()}{subs}"


def _law(e: Mapping[str, Any]) -> list[str]:
    """The legal basis, offence, court order and onward sharing of a request or release."""
    basis = label("legal_basis", e["legal_basis"])
    others = f" (also {_labels('legal_basis', e['other_bases'])})" if e["other_bases"] else ""
    out = [f"Legal basis: {basis}{others}."]
    if e["offence"]:
        out.append(f"Offence: {offence_text(e['offence'])}.")
    if e["court_order"]:
        out.append("A court order was given.")
    if e["onward_recipients"]:
        onward = _and([_a(_lc(label("function", f))) for f in e["onward_recipients"]])
        out.append(f"The requester said it would pass the data on to {onward}.")
    return out


def _policy(e: Mapping[str, Any]) -> list[str]:
    rules = [str(r) for r in e["rules"]]
    pledge = sum(r.startswith("pledge/") for r in rules)
    done = "set up" if e["change"] == "init" else "changed"
    return [
        f"The policy was {done}.",
        f"It has {_n(len(rules), 'rule', 'rules')}, {pledge} of them from the pledge.",
    ]


def _organisation(e: Mapping[str, Any]) -> list[str]:
    what = "joined the register" if e["change"] == "add" else "was retired from the register"
    return [f"{e['name']} ({e['id']}), {_a(_lc(label('function', e['function'])))}, {what}."]


def _reviewer(e: Mapping[str, Any]) -> list[str]:
    roles = _labels("role", e["roles"])
    did = {"add": f"was added as {roles}", "update": f"now acts as {roles}"}
    return [
        f"Reviewer account {e['id']} at {e['organisation']} {did.get(e['change'], 'was retired')}."
    ]


_VICTIM, _VICTIMS = "a victim or witness of crime", "victims or witnesses of crime"


def _request(e: Mapping[str, Any]) -> list[str]:
    n = int(e["subjects"])
    children = sum(int(g["subjects"]) for g in e["groups"] if g["is_child"])
    return [
        f"Request {e['request']} from {_org(e['requester'], e['requester_function'])}"
        f" to {_org(e['holder'], e['holder_function'])}"
        f" for {_lc(label('purpose', e['purpose']))}.",
        f"It asks for {_labels('category', e['categories'])} about {_n(n)}.",
        *_some(children, n, "a child", "children"),
        *_some(int(e["victims_or_witnesses"]), n, _VICTIM, _VICTIMS),
        *_law(e),
    ]


def _decision(e: Mapping[str, Any]) -> list[str]:
    cats: Mapping[str, Mapping[str, Any]] = e["categories"]
    allowed = [c for c, d in cats.items() if d["outcome"] == "review"]
    refused = [c for c in cats if c not in allowed]
    rules = "; ".join(label("rule", r) for r in e["rules"])
    if e["outcome"] != "review" or not allowed:
        return [f"The policy refused request {e['request']}.", f"Rules: {rules}."]
    out = [
        f"The policy allowed {_labels('category', allowed)} in request {e['request']},"
        " if a named reviewer agrees."
    ]
    if refused:
        out.append(f"It refused {_labels('category', refused)}.")
    return [*out, f"Rules: {rules}."]


def _review(e: Mapping[str, Any]) -> list[str]:
    who = f"Reviewer {e['reviewer']}"
    if e["outcome"] != "released":
        return [f"{who} refused request {e['request']}, so nothing was shared."]
    n = sum(int(g["subjects"]) for g in e["groups"])
    out = [
        f"{who} agreed to release {_labels('category', e['categories'])}"
        f" from request {e['request']}, about {_n(n)}."
    ]
    corrected = int(e["corrected"])
    return [*out, f"The reviewer corrected the facts about {_n(corrected)}."] if corrected else out


def _release(e: Mapping[str, Any]) -> list[str]:
    n = int(e["subjects"])
    return [
        f"The holder {e['holder']} sent {_labels('category', e['categories'])} about {_n(n)}"
        f" to {_org(e['recipient'], e['recipient_function'])} for request {e['request']},"
        f" for {_lc(label('purpose', e['purpose']))}.",
        *_some(n if e["is_child"] else 0, n, "a child", "children"),
        *_some(n if e["is_victim_or_witness"] else 0, n, _VICTIM, _VICTIMS),
        *(["They agreed to the sharing."] if e["consent"] else []),
        f"Reviewer {e['reviewer']} released it.",
        *_law(e),
    ]


def _appeal(e: Mapping[str, Any]) -> list[str]:
    by = {"requester": "the requesting organisation", "subject": "the person the data is about"}
    who = by.get(e["by"], "someone")
    if e["stage"] == "lodged":
        return [
            f"{who[:1].upper()}{who[1:]} appealed against the decision on request {e['request']}."
        ]
    reviewer = f"Appeal reviewer {e['reviewer']}" if e["reviewer"] else "An appeal reviewer"
    did = "kept" if e["stage"] == "upheld" else "changed"
    return [f"{reviewer} {did} the decision on request {e['request']}, after an appeal by {who}."]


def _deferral(e: Mapping[str, Any]) -> list[str]:
    did = {"lifted": "stopped delaying", "renewed": "kept delaying"}.get(e["action"], "delayed")
    on = f", with a review on {e['review_date']}" if e["review_date"] else ""
    return [
        f"Reviewer {e['reviewer']} {did} telling {_n(int(e['subjects']))}"
        f" about request {e['request']}{on}."
    ]


def _agreement(e: Mapping[str, Any]) -> list[str]:
    a = f"Agreement {e['agreement']}"
    parties = (
        f"from the holder {e['holder']} to {_org(e['recipient'], e['recipient_function'])}"
        f" for {_lc(label('purpose', e['purpose']))}"
    )
    if e["action"] == "refused":
        rules = "; ".join(label("rule", r) for r in e["rules"])
        return [f"{a} {parties} was refused: the pledge forbids it.", f"Rules: {rules}."]
    if e["action"] == "registered":
        until = f" to {e['end']}" if e["end"] else ""
        return [
            f"{a} {parties} was registered, from {e['start']}{until}.",
            f"It covers {_labels('category', e['categories'])}.",
        ]
    n = int(e["releases"] or 0)
    went = f"{_n(n, 'release', 'releases')} about {_n(int(e['subjects'] or 0))}"
    if e["action"] == "withdrawn":
        due = f" Destruction was asked for by {e['due']}." if e["due"] else ""
        return [f"{a} {parties} was withdrawn after {went}.{due}"]
    return [f"The recipient {e['recipient']} destroyed what it got under {a[:1].lower()}{a[1:]}."]


_DESCRIBE: Mapping[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "policy": _policy,
    "organisation": _organisation,
    "reviewer": _reviewer,
    "request": _request,
    "decision": _decision,
    "review": _review,
    "release": _release,
    "appeal": _appeal,
    "notice": lambda e: [
        f"A person was told that their data was shared in request {e['request']}."
    ],
    "deferral": _deferral,
    "withdrawal": lambda e: [f"The requester {e['by']} withdrew request {e['request']}."],
    "deletion": lambda e: [
        f"The holder {e['holder']} deleted {_n(int(e['records']), 'record', 'records')}"
        f" ({_labels('category', e['categories'])}).",
        "It logged a certificate of the deletion.",
    ],
    "agreement": _agreement,
}


def describe_entry(entry: Mapping[str, Any]) -> str:
    """One log entry in plain words, from its public fields only; never raises.

    A notice's subject commitment, a request's subjects root and the policy hashes are
    never said: they mean nothing to a reader and could be mistaken for a person's id.
    """
    kind = entry.get("kind")
    if not isinstance(kind, str) or kind not in _DESCRIBE:
        return "An entry of an unknown kind."
    try:
        return " ".join(_DESCRIBE[kind](entry))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return f"{label('entry', kind)}: an entry that could not be read."
