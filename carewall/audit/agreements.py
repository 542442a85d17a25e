"""``agreement`` entries: standing agreements decided again, followed to their destruction.

- ``registered`` / ``refused``: the terms name active organisations with their registered
  functions; the replay applies the pledge to them with the policy in force
  (:func:`carewall.policy.agreements.pledge_breaches`, the same function the holder
  calls). A registered agreement that any pledge rule forbids is a finding naming the
  rules; a refusal must name exactly the rules that refuse it. An id is put forward once.
- ``withdrawn``: follows its registration with the same terms; its counts MUST equal
  what the log released under it before this entry (:class:`ReleaseIndex`), and a
  destruction is due (a ``due`` date after the entry's day) exactly when something went.
- ``destroyed``: follows a withdrawal that asked for destruction, repeats its counts, and
  names a certificate whose ``deletion`` entry is the entry just before it (the service
  writes the two in one transaction, deletion first: docs/clean.md, Agreements), by the
  recipient, covering every category released, dated no earlier than the withdrawal's
  day. A claim of destruction without one is a finding, and so is a certificate that an
  earlier ``destroyed`` entry already registered (a certificate answers one request to
  destroy).

Overdue destruction is not a finding (the log is honest about it): it is a statistic.

An agreement that has reached its ``end`` with data released under it is withdrawn within
:data:`~carewall.deadlines.AGREEMENT_END_GRACE_DAYS` after it, since no destruction is
asked for until then (docs/contract-notes.md, Agreements). A ``withdrawn`` entry logged
later is a finding, and so is an agreement still registered that long after its end at the
end of the signed log, by the replay's clock (:mod:`.clock`); each agreement's lateness
is reported once, across incremental runs too. An agreement under which nothing went ends
without a finding: there is nothing to destroy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from carewall.audit.certificates import Owed
from carewall.audit.clock import clock
from carewall.deadlines import AGREEMENT_END_GRACE_DAYS, MAX_DESTRUCTION_DAYS, agreement_withdraw_by
from carewall.errors import CarewallError
from carewall.ledger.note import Verifier
from carewall.policy.agreements import TERM_FIELDS, ReleaseIndex, pledge_breaches
from carewall.policy.offences import public_offence
from carewall.statistics import Tally

if TYPE_CHECKING:
    from carewall.audit.replay import Replay

__all__ = ["AgreementReplay", "check_ended", "on_agreement"]

_SAME = (*TERM_FIELDS, "holder_function", "recipient_function", "text")
_TERM_KEYS = ("holder", "recipient", "purpose", "start")  # with "end": what the tally keeps


class AgreementReplay:
    """Agreements as the log states them, the releases to count, and the deletions."""

    def __init__(self) -> None:
        self.agreements: dict[str, dict[str, Any]] = {}  # id -> its latest entry
        self.releases = ReleaseIndex()
        # certificate -> [index, holder, categories, time, records] of its latest deletion
        # entry (a state file written before times, or records, were kept has shorter rows)
        self.deletions: dict[str, list[Any]] = {}
        # A deletion entry whose certificate an earlier one holds: [its index, certificate,
        # the earlier one's index]. Only
        # a destruction registered by the very next entry may log a certificate again
        # (within one run: checkpoints never split the two).
        self.repeated: list[Any] | None = None
        self.certificates: dict[str, str] = {}  # certificate -> the agreement it destroyed
        # Agreements whose late withdrawal after their end has been reported (once each).
        self.ended_reported: set[str] = set()
        # agreement id -> the recipient's verifier key its registration pinned (if any)
        self.keys: dict[str, str] = {}
        # Destructions accepted in this run whose certificates the audit fetches at its end
        # (carewall.audit.certificates); never saved: a run that fails saves no state.
        self.published: list[Owed] = []

    def observe(self, index: int, e: Mapping[str, Any]) -> None:
        """Remember what later agreement entries are checked against."""
        if e["kind"] == "release":
            self.releases.feed(e)
        elif e["kind"] == "deletion":
            # The latest: a certificate's deletion may be logged by its holder's own purge
            # before the holder of an agreement registers it (and logs it again).
            self.deletions[e["certificate"]] = [
                index,
                e["holder"],
                e["categories"],
                e["time"],
                e["records"],
            ]

    def to_json(self) -> dict[str, Any]:
        return {
            "agreements": self.agreements,
            "releases": self.releases.to_json(),
            "deletions": self.deletions,
            "certificates": self.certificates,
            "ended_reported": sorted(self.ended_reported),
            "keys": self.keys,
        }

    @classmethod
    def from_json(cls, obj: Any) -> AgreementReplay:
        out = cls()
        if obj is None:  # a state written before agreements were replayed
            return out
        out.agreements = {str(k): dict(v) for k, v in dict(obj["agreements"]).items()}
        out.releases = ReleaseIndex.from_json(obj["releases"])
        out.deletions = {str(k): list(v) for k, v in dict(obj["deletions"]).items()}
        # absent from states written before registrations pinned keys in the log
        out.keys = {str(k): str(v) for k, v in dict(obj.get("keys") or {}).items()}
        if "certificates" in obj:
            out.certificates = {str(k): str(v) for k, v in dict(obj["certificates"]).items()}
        else:  # a state written before they were remembered: its destroyed agreements
            out.certificates = {
                str(a["certificate"]): ag
                for ag, a in out.agreements.items()
                if a["action"] == "destroyed" and a["certificate"] is not None
            }
        # absent in a state written before ended agreements were judged: none reported yet
        out.ended_reported = {str(a) for a in obj.get("ended_reported", [])}
        return out

    def complete(self, tally: Tally) -> None:
        """Give ``tally``, saved with this replay before the statistics kept agreements'
        terms and releases (``needs_terms``: before 2026-12-04), what it lacks, from the
        same entries: each agreement's terms, and a copy of this replay's release index
        (the same release entries; a copy, since each goes on being fed)."""
        for agreement, e in self.agreements.items():
            holder, recipient, purpose, start = (str(e[f]) for f in _TERM_KEYS)
            tally.agreement_terms[agreement] = (holder, recipient, purpose, start, e["end"] or "")
        tally.release_index = self.releases.copy()
        tally.needs_terms = False


def _dates(e: Mapping[str, Any]) -> list[str]:
    problems = []
    for name in ("start", "end", "due"):
        if e[name] is not None:
            try:
                date.fromisoformat(e[name])
            except ValueError:
                problems.append(f"field {name!r} is not a real date")
    if problems:
        return problems
    if e["end"] is not None and e["end"] < e["start"]:
        problems.append("the agreement ends before it starts")
    if e["due"] is not None and e["due"] <= e["time"][:10]:
        problems.append("the destruction is due on or before the day it was asked for")
    day = date.fromisoformat(e["time"][:10])
    if e["due"] is not None and date.fromisoformat(e["due"]) > day + timedelta(
        days=MAX_DESTRUCTION_DAYS
    ):
        problems.append(
            f"the destruction is due more than {MAX_DESTRUCTION_DAYS} days after the day it "
            "was asked for; it could be put off for ever"
        )
    return problems


def _decided(rp: Replay, e: Mapping[str, Any]) -> list[str]:
    """A registration or refusal: parties, and the pledge applied again."""
    problems = []
    for who in ("holder", "recipient"):
        problem = rp.register.check_org(e[who], e[f"{who}_function"], who)
        if problem:
            problems.append(problem)
    if e["offence"] is not None and public_offence(e["offence"]) != e["offence"]:
        problems.append("field 'offence' names an Act that is not on the packaged list")
    if (
        any(e[f] is not None for f in ("releases", "subjects", "due", "certificate"))
        or e["released"]
    ):
        problems.append(f"a {e['action']} agreement has no releases, due date or certificate")
    engine = rp.policy.engine
    if engine is None:
        return [*problems, "no policy is in force to decide the agreement"]
    if e["policy"] != engine.policy_hash:
        problems.append("field 'policy' is not the policy in force")
    if problems:
        return problems
    try:
        rules = pledge_breaches(engine, rp.register.register(), e)
    except CarewallError as err:
        return [f"the agreement cannot be decided again: {err.message}"]
    if e["action"] == "registered" and rules:
        return [f"registers an agreement that the pledge forbids ({', '.join(rules)})"]
    if e["action"] == "refused" and not rules:
        return ["refuses an agreement that the pledge allows: a refusal names its rules"]
    if e["rules"] != rules:
        shown = ", ".join(rules) or "none"
        return [f"names the rules {e['rules']}, but the pledge refuses it by: {shown}"]
    return []


def _followed(
    rp: Replay, index: int, e: Mapping[str, Any], before: Mapping[str, Any] | None
) -> list[str]:
    """A withdrawal or destruction: it follows the right step, with the same terms."""
    action = e["action"]
    wanted = "registered" if action == "withdrawn" else "withdrawn"
    if before is None or before["action"] != wanted:
        was = "not in the log before it" if before is None else before["action"]
        return [f"is {action}, but the agreement is {was}; it must be {wanted} first"]
    changed = [f for f in _SAME if e[f] != before[f]]
    if changed:
        return [f"changes the agreement's terms ({', '.join(changed)})"]
    engine = rp.policy.engine
    if engine is not None and e["policy"] != engine.policy_hash:
        return ["field 'policy' is not the policy in force"]
    if e["rules"]:
        return ["names pledge rules, but only a refusal does"]
    if action == "withdrawn":
        went = rp.agreements.releases.under(e)
        counted = (went.releases, went.subjects, list(went.categories))
        if (e["releases"], e["subjects"], e["released"]) != counted:
            return [
                f"counts {e['releases']} release(s) about {e['subjects']} people, of "
                f"{e['released']}; the log released {counted[0]} about {counted[1]}, of "
                f"{counted[2]} under it"
            ]
        if (e["due"] is None) != (went.releases == 0) or e["certificate"] is not None:
            return ["asks for destruction exactly when something was released, with no certificate"]
        return []
    if e["due"] is None:
        return ["claims a destruction that was never asked for"]
    if [e[f] for f in ("releases", "subjects", "released", "due")] != [
        before[f] for f in ("releases", "subjects", "released", "due")
    ]:
        return ["changes the counts or due date of its withdrawal"]
    return _certificate(rp, index, e, before)


def _certificate(
    rp: Replay, at: int, e: Mapping[str, Any], withdrawal: Mapping[str, Any]
) -> list[str]:
    """The destroyed entry at ``at`` against its certificate's deletion entry."""
    if e["certificate"] is None:
        return ["claims the data destroyed without a deletion certificate"]
    used = rp.agreements.certificates.get(e["certificate"])
    if used is not None:
        return [
            f"field 'certificate' is already registered for agreement {used!r}; a certificate "
            "answers one request to destroy"
        ]
    logged = rp.agreements.deletions.get(e["certificate"])
    if logged is None:
        return ["claims the data destroyed, but no deletion entry before it holds its certificate"]
    index, holder, categories = logged[:3]
    if index != at - 1:
        return [
            f"field 'certificate' names the deletion at entry {index}, but the deletion a "
            "destruction registers is written with it, as the entry just before it"
        ]
    if holder != e["recipient"]:
        return [f"names the deletion at entry {index}, made by {holder!r}, not the recipient"]
    missing = sorted(set(e["released"]) - set(categories))
    if missing:
        return [f"names the deletion at entry {index}, which does not cover {', '.join(missing)}"]
    if len(logged) > 4 and not logged[4]:
        return [f"names the deletion at entry {index}, which deleted no records"]
    logged_time = logged[3] if len(logged) > 3 else None
    if logged_time is not None and str(logged_time)[:10] < withdrawal["time"][:10]:
        return [
            f"names the deletion at entry {index}, dated before the withdrawal's day; an "
            "older deletion does not answer the request to destroy"
        ]
    return []


def _late(rp: Replay, e: Mapping[str, Any], now: str) -> tuple[str, int] | None:
    """For the registered agreement ``e``, not reported yet: the day it was to be withdrawn
    by and the releases made under it, when that day is before ``now``'s (a time) and
    something was released under it; else None."""
    if e["end"] is None or e["agreement"] in rp.agreements.ended_reported:
        return None
    try:
        by = agreement_withdraw_by(e["end"])
    except ValueError:  # not a real date: a finding of its own (_dates)
        return None
    if by >= now[:10]:
        return None
    went = rp.agreements.releases.under(e).releases
    return (by, went) if went else None


def check_ended(rp: Replay, size: int) -> None:
    """At the end of the signed log: an agreement still registered more than
    AGREEMENT_END_GRACE_DAYS after its end, with releases under it, is a finding (once)."""
    for agreement, e in rp.agreements.agreements.items():
        late = _late(rp, e, rp.latest_time) if e["action"] == "registered" else None
        if late is None:
            continue
        rp.find(
            size,
            "agreement",
            f"agreement {agreement!r} ended on {e['end']} with {late[1]} release(s) made "
            f"under it, and is still not withdrawn on {rp.latest_time[:10]}, the log's latest "
            f"day: it was to be withdrawn by {late[0]} ({AGREEMENT_END_GRACE_DAYS} days after "
            "its end), asking the recipient to destroy that data",
        )
        rp.agreements.ended_reported.add(agreement)


def _withdrawn_late(
    rp: Replay, index: int, e: Mapping[str, Any], before: Mapping[str, Any]
) -> None:
    """A withdrawal of the registered agreement ``before`` logged after its withdraw-by day."""
    now = clock(rp.latest_time, e)
    late = _late(rp, before, now)
    if late is None:
        return
    rp.find(
        index,
        "agreement",
        f"withdraws agreement {e['agreement']!r} on {now[:10]}, but it ended on "
        f"{before['end']} with {late[1]} release(s) made under it and was to be withdrawn by "
        f"{late[0]} ({AGREEMENT_END_GRACE_DAYS} days after its end)",
    )
    rp.agreements.ended_reported.add(e["agreement"])


def _pinned_key(e: Mapping[str, Any]) -> list[str]:
    """A registration's ``recipient_key``, if it pins one, must be a verifier key."""
    if "recipient_key" not in e:
        return []
    if e["action"] != "registered":
        return ["pins a recipient's key, which only a registration does"]
    try:
        Verifier.from_vkey(e["recipient_key"])
    except Exception:  # any way a key fails to parse is the same finding
        return ["field 'recipient_key' is not a verifier key"]
    return []


def _owe_certificate(
    rp: Replay, index: int, e: Mapping[str, Any], withdrawal: Mapping[str, Any] | None
) -> None:
    """The destruction at ``index`` passed: its certificate is to be fetched and judged."""
    deletion = rp.agreements.deletions[e["certificate"]]
    holder, categories = deletion[1], deletion[2]
    records = deletion[4] if len(deletion) > 4 else None
    day = str(withdrawal["time"])[:10] if withdrawal is not None else ""
    logged = {"holder": holder, "categories": list(categories), "records": records}
    key = rp.agreements.keys.get(e["agreement"])
    rp.agreements.published.append(Owed(index, e["certificate"], logged, day, key))


def on_agreement(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    problems = _dates(e)
    before = rp.agreements.agreements.get(e["agreement"])
    if e["action"] == "withdrawn" and before is not None and before["action"] == "registered":
        _withdrawn_late(rp, index, e, before)
    if e["action"] in ("registered", "refused"):
        if before is not None:
            problems.append("puts forward an agreement id already in the log; ids are never reused")
        problems += _decided(rp, e)
        if e["text"] is not None and not isinstance(e["text"], str):
            problems.append("field 'text' is not a hash")
    else:
        problems += _followed(rp, index, e, before)
    problems += _pinned_key(e)
    for p in problems:
        rules = tuple(r for r in e["rules"] if r.startswith("pledge/"))
        rp.find(index, "agreement", p, rules)
    if before is None or not problems:
        rp.agreements.agreements[e["agreement"]] = dict(e)
        if e["action"] == "registered" and "recipient_key" in e:
            rp.agreements.keys[e["agreement"]] = e["recipient_key"]
    if e["action"] == "destroyed" and not problems:
        rp.agreements.certificates[e["certificate"]] = e["agreement"]
        _owe_certificate(rp, index, e, before)
    repeated = rp.agreements.repeated
    if (
        repeated is not None
        and e["action"] == "destroyed"
        and repeated[:2] == [index - 1, e["certificate"]]
    ):
        rp.agreements.repeated = None  # the destruction that logs it again
