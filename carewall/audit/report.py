"""What one audit run found, and the statement a person can quote (contract §7).

A :class:`Finding` names the log index of the entry at fault, its kind and what is wrong
(and, for a release that breaks the pledge, the pledge rule ids). Messages hold ids, counts
and field names only: never a value that could be free text from the log.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AuditReport", "Finding", "Totals"]


@dataclass(frozen=True)
class Finding:
    """One failure: the entry at ``index`` (of ``kind``) and what is wrong with it.

    ``index`` equal to the tree size means "the entry that should have come next".
    """

    index: int
    kind: str
    message: str
    rules: tuple[str, ...] = ()

    def line(self) -> str:
        """One readable line, always starting with the entry's index."""
        rules = f" [{', '.join(self.rules)}]" if self.rules else ""
        return f"entry {self.index} ({self.kind}): {self.message}{rules}"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "message": self.message,
            "rules": list(self.rules),
        }

    @classmethod
    def from_json(cls, obj: Any) -> Finding:
        return cls(
            int(obj["index"]),
            str(obj["kind"]),
            str(obj["message"]),
            tuple(str(r) for r in obj["rules"]),
        )


@dataclass
class Totals:
    """Running counts over the whole log (carried between incremental runs)."""

    entries: int = 0
    requests: int = 0
    decisions_replayed: int = 0
    decisions_matched: int = 0
    releases: int = 0
    releases_to_immigration: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, obj: Any) -> Totals:
        return cls(**{k: int(obj[k]) for k in cls().__dict__})


@dataclass
class AuditReport:
    """The outcome of one run. ``ok`` is false when anything failed, now or in earlier runs."""

    origin: str
    size: int
    root: bytes
    previous_size: int
    checked: int = 0
    totals: Totals = field(default_factory=Totals)
    findings: list[Finding] = field(default_factory=list)
    earlier_findings: list[Finding] = field(default_factory=list)
    replayed: bool = True
    # Whether the statistics published for this checkpoint match the log (None: not checked)
    statistics_match: bool | None = None
    # Notices due (a release, or a lifted deferral) that the log does not hold yet: a
    # release's notices are logged by a job after it, so some may be on their way
    notices_owed: int = 0
    # Appeals lodged and not yet decided (each has APPEAL_DAYS from its lodging)
    appeals_open: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings and not self.earlier_findings

    # Counts over the whole log, by the names the issue uses.
    @property
    def entries(self) -> int:
        return self.totals.entries

    @property
    def requests(self) -> int:
        return self.totals.requests

    @property
    def releases(self) -> int:
        return self.totals.releases

    @property
    def releases_to_immigration(self) -> int:
        return self.totals.releases_to_immigration

    @property
    def decisions_replayed(self) -> int:
        return self.totals.decisions_replayed

    def statement(self) -> str:
        """What was checked and what was found, in words a person can quote."""
        t = self.totals
        root = base64.b64encode(self.root).decode()
        if self.previous_size == 0:
            what = f"Checked {self.checked:,} entries of log {self.origin}"
        else:
            what = (
                f"Checked entries {self.previous_size:,} to {self.size - 1:,} of log "
                f"{self.origin} (entries 0 to {self.previous_size - 1:,} in earlier audits)"
            )
        head = f"{what} up to the signed checkpoint of size {self.size:,} (root {root})"
        if not self.replayed:
            return f"{head}: signatures, consistency and inclusion only; nothing was replayed."
        whole = "" if self.previous_size == 0 else " Over the whole log:"
        stats = {
            True: "the published statistics match the log; ",
            False: "the published statistics failed their check; ",
            None: "",
        }[self.statistics_match]
        owed = (
            f" {self.notices_owed:,} notice(s) are due and not yet in the log."
            if self.notices_owed
            else ""
        )
        if self.appeals_open:
            owed += f" {self.appeals_open:,} appeal(s) are lodged and not yet decided."
        if self.ok:
            return (
                f"{head}:{whole} {t.requests:,} requests decided again with the logged policy "
                f"and all matched; {stats}{t.releases:,} releases, "
                f"{t.releases_to_immigration:,} to immigration enforcement.{owed}"
            )
        failures = len(self.findings) + len(self.earlier_findings)
        return (
            f"{head}: FAILED with {failures:,} finding{'s' if failures != 1 else ''}.{whole} "
            f"{t.requests:,} requests, {t.decisions_matched:,} of them decided again with the "
            f"logged policy and matched; {stats}{t.releases:,} releases, "
            f"{t.releases_to_immigration:,} to immigration enforcement.{owed}"
        )
