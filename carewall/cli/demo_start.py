"""Where each kind of user starts in the demo: the pages to open and the tokens to sign in.

The demo is synthetic, so it prints fresh tokens (issued now, recorded in the admin log as
any token is) and one subject's request id and access code from the outbox. A real
instance never prints either: tokens come from ``carewall token create`` and codes go only
in the subject's letter.
"""

from __future__ import annotations

import re
from collections import Counter

from carewall.api.admin import issue_token
from carewall.service import Service

__all__ = ["where_to_start"]

_CODE = re.compile(r"Your access code:\s+(\S+)")
_ID = re.compile(r"Request ID:\s+(\S+)")


def _busiest_holder(svc: Service) -> str | None:
    """The holder with most requests waiting for review (else most requests), with reviewers."""
    reviewed = {r.organisation for r in svc.register().reviewers.values()}
    for state in ("review", None):
        counts = Counter(r.holder for r in svc.list_requests(state=state))
        for holder, _n in counts.most_common():
            if holder in reviewed:
                return holder
    return None


def _subject_letter(svc: Service) -> tuple[str, str] | None:
    for message in reversed(svc.outbox()):
        body = str(message.get("body", ""))
        rid, code = _ID.search(body), _CODE.search(body)
        if rid and code:
            return rid.group(1), code.group(1)
    return None


def where_to_start(svc: Service, base: str) -> list[tuple[str, str, str]]:
    """One row per kind of user: who, the page to open, and what they need there."""
    rows = [("The public", base, "the firewall statement, then Statistics and Public log")]
    letter = _subject_letter(svc)
    if letter is not None:
        rows.append(
            (
                "A person with a letter",
                base + "my-data",
                f"Request ID {letter[0]}  Access code {letter[1]}",
            )
        )
    holder = _busiest_holder(svc)
    register = svc.register()
    if holder is not None:
        for role, who in (
            ("release_reviewer", "A reviewer"),
            ("appeal_reviewer", "An appeal reviewer"),
        ):
            reviewer = next(
                (
                    r
                    for r in register.reviewers.values()
                    if r.organisation == holder and role in r.roles
                ),
                None,
            )
            if reviewer is not None:
                token = issue_token(svc, holder, role, reviewer.id, actor="demo").secret
                rows.append((who, base + "sign-in", f"token {token}  ({reviewer.id} at {holder})"))
        token = issue_token(svc, holder, "admin", actor="demo").secret
        rows.append(
            ("A data protection officer", base + "sign-in", f"token {token}  (admin at {holder})")
        )
    rows.append(
        (
            "An outside auditor",
            "a terminal",
            f"carewall audit {base} --key {svc.ledger.verifier_key}",
        )
    )
    return rows
