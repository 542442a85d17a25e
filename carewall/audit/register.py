"""The organisations register as the log states it (contract §2), rebuilt entry by entry.

``organisation`` and ``reviewer`` entries are replayed in order: an organisation is added
once under an id never used before (its function never changes: a body that changes
function is retired and registered anew), its name may not name immigration enforcement
unless its function is ``immigration_enforcement`` (nor, with any other function, hold
letters carewall cannot read as Latin, nor be blank or unprintable: such a body counts as
named for immigration enforcement, failing closed); a name an immigration-enforcement body
has had is never another function's, nor the other way round (both bodies then count as
immigration enforcement); and it is retired as it was added, after its reviewers. A
reviewer is added at an active organisation, updated there, and retired. The active part
is handed to the policy engine as a :class:`carewall.policy.Register`, rebuilt only when
the register changes (the engine caches its entities per Register object).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carewall.errors import InputError
from carewall.policy import Organisation, Register, Reviewer
from carewall.policy.register import (
    check_name,
    crosses_the_line,
    has_unreadable_letters,
    names_immigration_enforcement,
)

__all__ = ["IMMIGRATION", "OrgRecord", "RegisterReplay", "ReviewerRecord"]

IMMIGRATION = "immigration_enforcement"


@dataclass
class OrgRecord:
    name: str
    function: str
    active: bool
    index: int  # the entry that added it
    names_immigration: bool = False


@dataclass
class ReviewerRecord:
    organisation: str
    roles: tuple[str, ...]
    active: bool
    index: int  # the entry that last changed it


class RegisterReplay:
    """Organisations and reviewers ever logged, and which are active now."""

    def __init__(self) -> None:
        self.orgs: dict[str, OrgRecord] = {}
        self.reviewers: dict[str, ReviewerRecord] = {}
        self.version = 0
        self._built: tuple[int, Register] | None = None

    # ----- replay ----------------------------------------------------------------------

    def organisation(self, entry: Mapping[str, Any], index: int) -> list[str]:
        """Apply an ``organisation`` entry; return what is wrong with it (empty if nothing)."""
        org_id, name, function = entry["id"], entry["name"], entry["function"]
        known = self.orgs.get(org_id)
        if entry["change"] == "add":
            if known is not None:
                return [
                    f"adds organisation {org_id!r} again (first added at entry {known.index}); "
                    "an organisation's function never changes: a body that changes function "
                    "is retired and registered under a new id"
                ]
            problems = self._name_problems(org_id, name, function)
            immigration_name = bool(problems) and function != IMMIGRATION
            if names_immigration_enforcement(name) and function != IMMIGRATION:
                immigration_name = True
                problems.append(
                    f"organisation {org_id!r} has a name that names immigration enforcement "
                    f"but the function {function!r}; such a body must have the function "
                    f"{IMMIGRATION!r}"
                )
            elif function != IMMIGRATION and has_unreadable_letters(name):
                # Fail closed: a name that cannot be checked counts as naming immigration.
                immigration_name = True
                problems.append(
                    f"organisation {org_id!r} has the function {function!r} and a name with "
                    "letters carewall cannot read as Latin, so the name cannot be checked "
                    "against the immigration-enforcement terms; it is treated as naming "
                    "immigration enforcement"
                )
            self.orgs[org_id] = OrgRecord(name, function, True, index, immigration_name)
            self._changed()
            return problems
        if known is None or not known.active:
            return [f"retires organisation {org_id!r}, which is not active in the register"]
        if (known.name, known.function) != (name, function):
            return [
                f"retires organisation {org_id!r} with a name or function other than those "
                f"it was added with at entry {known.index}"
            ]
        known.active = False
        problems = []
        staying = sorted(
            k for k, r in self.reviewers.items() if r.active and r.organisation == org_id
        )
        if staying:
            # The service retires them first, in the same transaction; retire them here so
            # that none of them acts for a retired body.
            problems.append(
                f"retires organisation {org_id!r} while its reviewer(s) "
                f"{', '.join(repr(k) for k in staying)} are active; reviewers are retired "
                "before their organisation"
            )
            for k in staying:
                self.reviewers[k].active = False
        self._changed()
        return problems

    def _name_problems(self, org_id: str, name: str, function: str) -> list[str]:
        """What is wrong with a new organisation's name: not a readable name at all, or
        the name of a body of the other side of the immigration-enforcement line. Either
        way a body that is not registered as immigration enforcement then counts as one
        (fail closed)."""
        try:
            check_name(name, field="name")
        except InputError as e:
            return [
                f"organisation {org_id!r} has no readable name (the name {e.message}), so it "
                "cannot be checked against the immigration-enforcement terms; it is treated "
                "as naming immigration enforcement"
            ]
        problems = []
        for other_id, other in self.orgs.items():
            if not crosses_the_line(name, function, other.name, other.function):
                continue
            problems.append(
                f"organisation {org_id!r} ({function!r}) has the name of {other_id!r} "
                f"({other.function!r}, entry {other.index}); a body registered again under a "
                f"new id stays an immigration-enforcement body, and it is treated as one"
            )
            if other.function != IMMIGRATION:
                other.names_immigration = True  # fail closed for the earlier body too
        return problems

    def reviewer(self, entry: Mapping[str, Any], index: int) -> list[str]:
        """Apply a ``reviewer`` entry; return what is wrong with it (empty if nothing)."""
        rev_id, org, roles = entry["id"], entry["organisation"], tuple(sorted(entry["roles"]))
        known = self.reviewers.get(rev_id)
        change = entry["change"]
        if change == "add":
            if known is not None:
                return [f"adds reviewer {rev_id!r} again (first added at entry {known.index})"]
            if not self.is_active(org):
                return [f"adds reviewer {rev_id!r} at {org!r}, which is not an active organisation"]
            self.reviewers[rev_id] = ReviewerRecord(org, roles, True, index)
            self._changed()
            return []
        if known is None or not known.active:
            return [f"{change}s reviewer {rev_id!r}, who is not active in the register"]
        if known.organisation != org:
            return [
                f"{change}s reviewer {rev_id!r} at {org!r}, but the reviewer was registered at "
                f"{known.organisation!r} (entry {known.index}); a reviewer never moves"
            ]
        if change == "update":
            if not self.is_active(org):
                return [f"updates reviewer {rev_id!r} at {org!r}, which is not active"]
            known.roles = roles
        elif roles != known.roles:
            return [
                f"retires reviewer {rev_id!r} with roles other than those of entry {known.index}"
            ]
        else:
            known.active = False
        known.index = index
        self._changed()
        return []

    def _changed(self) -> None:
        self.version += 1

    # ----- reading -----------------------------------------------------------------------

    def is_active(self, org_id: str) -> bool:
        rec = self.orgs.get(org_id)
        return rec is not None and rec.active

    def check_org(self, org_id: str, function: str, what: str) -> str | None:
        """What is wrong with naming ``org_id`` as ``what`` with ``function``, if anything."""
        rec = self.orgs.get(org_id)
        if rec is None:
            return f"{what} {org_id!r} is not in the register"
        if not rec.active:
            return f"{what} {org_id!r} was retired (added at entry {rec.index})"
        if rec.function != function:
            return (
                f"{what}_function {function!r} differs from the function {rec.function!r} that "
                f"{org_id!r} was registered with at entry {rec.index}"
            )
        return None

    def check_reviewer(self, rev_id: str, holder: str, role: str) -> str | None:
        """What stops ``rev_id`` acting in ``role`` for ``holder`` now, if anything."""
        rec = self.reviewers.get(rev_id)
        if rec is None:
            return f"reviewer {rev_id!r} is not in the register"
        if not rec.active:
            return f"reviewer {rev_id!r} was retired at entry {rec.index}"
        if rec.organisation != holder:
            return (
                f"reviewer {rev_id!r} works for {rec.organisation!r} (entry {rec.index}), "
                f"not for the holder {holder!r}"
            )
        if role not in rec.roles:
            return f"reviewer {rev_id!r} does not hold the {role} role (entry {rec.index})"
        return None

    def is_immigration(self, org_id: str) -> bool:
        """Registered as immigration enforcement, or named as such whatever its function."""
        rec = self.orgs.get(org_id)
        return rec is not None and (rec.function == IMMIGRATION or rec.names_immigration)

    def register(self) -> Register:
        """The active register for the engine; the same object until the register changes."""
        built = self._built
        if built is None or built[0] != self.version:
            orgs = {
                k: Organisation(k, r.name, r.function) for k, r in self.orgs.items() if r.active
            }
            revs = {
                k: Reviewer(k, k, r.organisation, frozenset(r.roles))
                for k, r in self.reviewers.items()
                if r.active
            }
            built = (self.version, Register(orgs, revs))
            self._built = built
        return built[1]

    # ----- state file --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "organisations": {
                k: [r.name, r.function, r.active, r.index, r.names_immigration]
                for k, r in self.orgs.items()
            },
            "reviewers": {
                k: [r.organisation, list(r.roles), r.active, r.index]
                for k, r in self.reviewers.items()
            },
        }

    @classmethod
    def from_json(cls, obj: Any) -> RegisterReplay:
        out = cls()
        out.version = int(obj["version"])
        for k, (name, function, active, index, imm) in obj["organisations"].items():
            out.orgs[str(k)] = OrgRecord(
                str(name), str(function), bool(active), int(index), bool(imm)
            )
        for k, (org, roles, active, index) in obj["reviewers"].items():
            out.reviewers[str(k)] = ReviewerRecord(
                str(org), tuple(str(r) for r in roles), bool(active), int(index)
            )
        return out
