"""What each caller sees in each reply: a table of every API route, role by role.

Every private value in the world below is a distinct marker string. For each route and
each role (requester, another requester, release reviewer, appeal reviewer, admin, each of
two subjects, the public) the table lists the markers the reply MAY hold; every other
marker must be absent. So a field that leaks to a caller who should not read it (a
subject's appeal grounds to the requester, one subject's grounds to another, the
requester's grounds to a subject, an officer's details to an admin, an access code or
token secret anywhere) fails here by name. Some markers are also required, so the table
cannot pass by showing nothing.

The rules (contract §2, issue 13): the holder's reviewers read the whole DPO record; an
admin reads it redacted; a requester reads its own requests' status and its own appeal
grounds, never a subject's; a subject reads what was released about them and their own
appeal, never another subject's grounds nor the requester's; the public reads the log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from api_support import Tokens, api, refused, reviewable

from carewall.service import Service

# ----- the private values, each a marker --------------------------------------------------

REF_A = "REFA-MARK-1"  # the requester's reference of request A (its own)
REF_B = "REFB-MARK-2"
REF_C = "REFC-MARK-3"
SUBJ0 = "SUBJREF0-MARK"  # subjects' references (personal data)
SUBJ1 = "SUBJREF1-MARK"
SUBJ_C = "SUBJREFC-MARK"
CONTACT0 = "CONTACT0-MARK High Street"  # where each subject's notice goes
CONTACT1 = "CONTACT1-MARK Low Road"
CONTACT_C = "CONTACTC-MARK Mill Lane"
OFFICER = "OFFICER-MARK"
OFFICER_ROLE = "ROLE-MARK"
OFFICER_CONTACT = "officer-mark@police.example"
AUTHORISER = "AUTHORISER-MARK"
NECESSITY = "NECESSITY-MARK"
NOTE = "REVIEWNOTE-MARK"
SUBJ_GROUNDS = "SUBJECTGROUNDS-MARK"  # subject 0 of A appealed the release
REQ_GROUNDS = "REQUESTERGROUNDS-MARK"  # the requester appealed B's refusal
REQ_GROUNDS_C = "REQUESTERGROUNDSC-MARK"  # ... and C's, which was overturned and released
REVIEWER_NAME = "REVIEWERNAME-MARK"  # a reviewer's name: kept privately, never shown

OFFICER_DETAILS = {OFFICER, OFFICER_ROLE, OFFICER_CONTACT, AUTHORISER, NECESSITY}
A_RECORD = {REF_A, SUBJ0, SUBJ1, NOTE, SUBJ_GROUNDS} | OFFICER_DETAILS
B_RECORD = {REF_B, REQ_GROUNDS}
C_RECORD = {REF_C, SUBJ_C, REQ_GROUNDS_C}


@dataclass
class World:
    client: httpx.Client
    svc: Service
    tokens: Tokens
    a: str = ""
    b: str = ""
    c: str = ""
    codes: dict[str, str] = field(default_factory=dict)  # contact -> access code
    replies: dict[str, httpx.Response] = field(default_factory=dict)  # made while building

    def secrets(self) -> set[str]:
        """Values no reply may ever hold: access codes and token secrets."""
        t = self.tokens
        tokens = {t.requester, t.other_requester, t.release, t.appeal, t.other_release, t.admin}
        return set(self.codes.values()) | tokens

    def markers(self) -> set[str]:
        every = A_RECORD | B_RECORD | C_RECORD | {CONTACT0, CONTACT1, CONTACT_C, REVIEWER_NAME}
        return every | self.secrets()


def _doc_a() -> dict[str, object]:
    return reviewable(
        reference=REF_A,
        officer={"name": OFFICER, "role": OFFICER_ROLE, "contact": OFFICER_CONTACT},
        authorised_by={"name": AUTHORISER, "role": "Inspector"},
        necessity=NECESSITY,
        subjects=[
            {"ref": SUBJ0, "is_child": False, "is_victim_or_witness": False, "contact": CONTACT0},
            {"ref": SUBJ1, "is_child": False, "is_victim_or_witness": False, "contact": CONTACT1},
        ],
    )


def _codes(svc: Service) -> dict[str, str]:
    out = {}
    for message in svc.outbox():
        found = re.search(r"Your access code:\s+(\S+)", message["body"])
        assert found is not None
        out[message["recipient"]] = found.group(1)
    return out


def _ok(response: httpx.Response, status: int = 200) -> httpx.Response:
    assert response.status_code == status, response.text
    return response


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("privacy")
    with api(f"sqlite:///{tmp / 'cw.db'}", tmp) as (client, svc, tokens):
        w = World(client, svc, tokens)
        r = w.replies
        auth = tokens.auth
        body = {"id": "marked-reviewer", "name": REVIEWER_NAME, "roles": ["release_reviewer"]}
        r["admin adds a reviewer"] = _ok(
            client.post("/api/admin/reviewers", json=body, headers=auth("admin")), 201
        )
        # A: reviewed and released with a note; subject 0 appeals the release
        r["requester submits A"] = _ok(
            client.post("/api/requests", json=_doc_a(), headers=auth("requester")), 201
        )
        w.a = r["requester submits A"].json()["id"]
        r["release reviewer releases A"] = _ok(
            client.post(
                f"/api/requests/{w.a}/review",
                json={"release": True, "note": NOTE},
                headers=auth("release"),
            )
        )
        svc.deliver_pending()
        w.codes.update(_codes(svc))
        appeal = {"request": w.a, "code": w.codes[CONTACT0], "grounds": SUBJ_GROUNDS}
        r["subject 0 appeals A"] = _ok(client.post("/api/subject/appeal", json=appeal))
        # B: refused by the policy; the requester appeals
        w.b = svc.submit(refused(reference=REF_B)).id
        r["requester appeals B"] = _ok(
            client.post(
                f"/api/requests/{w.b}/appeal",
                json={"grounds": REQ_GROUNDS},
                headers=auth("requester"),
            )
        )
        # C: refused at review, appealed by the requester, overturned: released to subjects
        subject_c = {"ref": SUBJ_C, "is_child": False, "is_victim_or_witness": False}
        w.c = svc.submit(
            reviewable(reference=REF_C, subjects=[subject_c | {"contact": CONTACT_C}])
        ).id
        svc.review(w.c, "dpo-islington", False)
        svc.appeal(w.c, "requester", REQ_GROUNDS_C)
        r["appeal reviewer overturns C"] = _ok(
            client.post(
                f"/api/requests/{w.c}/appeal/decision",
                json={"uphold": False},
                headers=auth("appeal"),
            )
        )
        svc.deliver_pending()
        w.codes.update(_codes(svc))
        yield w


# ----- the table: (role, what it asks) -> the markers its reply may hold ------------------

Ask = tuple[str, str, str]  # method, path (with {a} {b} {c}), who: a token name, subject:N, public


def _subject(w: World, contact: str, request_id: str) -> httpx.Response:
    body = {"request": request_id, "code": w.codes[contact]}
    return w.client.post("/api/subject/view", json=body)


def _ask(w: World, method: str, path: str, who: str) -> httpx.Response:
    w.svc.publish_pending()
    path = path.format(a=w.a, b=w.b, c=w.c, size=w.svc.ledger.size())
    if who == "subject0":
        return _subject(w, CONTACT0, w.a)
    if who == "subject1":
        return _subject(w, CONTACT1, w.a)
    if who == "subjectC":
        return _subject(w, CONTACT_C, w.c)
    headers = {} if who == "public" else w.tokens.auth(who)
    return w.client.request(method, path, headers=headers)


SUBJECT_VIEW = ("POST", "/api/subject/view", "")
# (method, path, who, allowed markers, required markers, status)
TABLE: list[tuple[str, str, str, set[str], set[str], int]] = [
    # the requester: its own requests' status; its own appeal grounds; never a subject's
    ("GET", "/api/requests", "requester", set(), set(), 200),
    ("GET", "/api/requests/{a}", "requester", {REF_A}, {REF_A}, 200),
    ("GET", "/api/requests/{b}", "requester", {REF_B, REQ_GROUNDS}, {REQ_GROUNDS}, 200),
    ("GET", "/api/requests/{c}", "requester", {REF_C, REQ_GROUNDS_C}, {REQ_GROUNDS_C}, 200),
    ("GET", "/api/requests/{a}/record", "requester", set(), set(), 403),
    ("GET", "/api/queue", "requester", set(), set(), 403),
    ("GET", "/api/deferrals", "requester", set(), set(), 403),
    ("GET", "/api/admin/log", "requester", set(), set(), 403),
    # another requester: nothing of met-police's requests
    ("GET", "/api/requests", "other_requester", set(), set(), 200),
    ("GET", "/api/requests/{a}", "other_requester", set(), set(), 404),
    ("GET", "/api/requests/{b}", "other_requester", set(), set(), 404),
    # the holder's reviewers: the whole DPO record (never contacts, codes or names)
    ("GET", "/api/queue", "release", set(), set(), 200),
    ("GET", "/api/requests", "release", set(), set(), 200),
    ("GET", "/api/requests/{a}/record", "release", A_RECORD, A_RECORD, 200),
    ("GET", "/api/requests/{a}", "release", A_RECORD, {SUBJ_GROUNDS}, 200),
    ("GET", "/api/requests/{b}/record", "release", B_RECORD, B_RECORD, 200),
    ("GET", "/api/requests/{c}/record", "release", C_RECORD, C_RECORD, 200),
    ("GET", "/api/deferrals", "release", set(), set(), 200),
    ("GET", "/api/queue", "appeal", set(), set(), 200),
    ("GET", "/api/requests/{a}/record", "appeal", A_RECORD, A_RECORD, 200),
    ("GET", "/api/requests/{b}/record", "appeal", B_RECORD, B_RECORD, 200),
    ("GET", "/api/requests/{a}/record", "other_release", set(), set(), 404),
    # the admin: its organisation's records, redacted (contract §2)
    ("GET", "/api/requests", "admin", set(), set(), 200),
    ("GET", "/api/requests/{a}", "admin", {REF_A}, {REF_A}, 200),
    ("GET", "/api/requests/{a}/record", "admin", {REF_A}, {REF_A}, 200),
    ("GET", "/api/requests/{b}/record", "admin", {REF_B}, {REF_B}, 200),
    ("GET", "/api/deferrals", "admin", set(), set(), 200),
    ("GET", "/api/admin/organisations", "admin", set(), set(), 200),
    ("GET", "/api/admin/reviewers", "admin", set(), set(), 200),
    ("GET", "/api/admin/tokens", "admin", set(), set(), 200),
    ("GET", "/api/admin/log", "admin", set(), set(), 200),
    ("GET", "/api/admin/policy", "admin", set(), set(), 200),
    # the subjects: what was released about them, and their own appeal only
    (*SUBJECT_VIEW[:2], "subject0", {SUBJ_GROUNDS}, {SUBJ_GROUNDS}, 200),
    (*SUBJECT_VIEW[:2], "subject1", set(), set(), 200),
    (*SUBJECT_VIEW[:2], "subjectC", set(), set(), 200),
    # the public: the log and the counts
    ("GET", "/", "public", set(), set(), 200),
    ("GET", "/log/checkpoint", "public", set(), set(), 200),
    ("GET", "/log/entries?start=0&end={size}", "public", set(), set(), 200),
    ("GET", "/statistics.json", "public", set(), set(), 200),
    ("GET", "/api/requests", "public", set(), set(), 401),
]

# the replies to the changes made while building the world, and who got each
WRITES: dict[str, set[str]] = {
    "admin adds a reviewer": set(),
    "requester submits A": set(),
    "release reviewer releases A": A_RECORD - {SUBJ_GROUNDS},
    "subject 0 appeals A": {SUBJ_GROUNDS},
    "requester appeals B": {REF_B, REQ_GROUNDS},
    "appeal reviewer overturns C": C_RECORD,
}


def _id(row: tuple[str, str, str, set[str], set[str], int]) -> str:
    return f"{row[2]} {row[0]} {row[1]}"


@pytest.mark.parametrize("row", TABLE, ids=_id)
def test_each_reply_holds_only_what_its_caller_may_see(
    world: World, row: tuple[str, str, str, set[str], set[str], int]
) -> None:
    method, path, who, allowed, required, status = row
    response = _ask(world, method, path, who)
    assert response.status_code == status, response.text
    text = response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
    leaked = sorted(m for m in world.markers() - allowed if m in text)
    assert leaked == [], f"{who} {path} shows {leaked}"
    missing = sorted(m for m in required if m not in text)
    assert missing == [], f"{who} {path} should show {missing}"


@pytest.mark.parametrize("write", list(WRITES))
def test_each_write_replies_only_what_its_caller_may_see(world: World, write: str) -> None:
    response = world.replies[write]
    leaked = sorted(m for m in world.markers() - WRITES[write] if m in response.text)
    assert leaked == [], f"{write} replies {leaked}"


def test_the_appeals_each_subject_sees(world: World) -> None:
    """Subject 0 sees their own appeal; subject 1 no one's; C's subject the requester's
    appeal that released their data, without its grounds."""
    own = _subject(world, CONTACT0, world.a).json()["appeal"]
    assert own["by"] == "subject" and own["grounds"] == SUBJ_GROUNDS
    assert _subject(world, CONTACT1, world.a).json()["appeal"] is None
    theirs = _subject(world, CONTACT_C, world.c).json()["appeal"]
    assert theirs["by"] == "requester" and theirs["grounds"] is None
    assert theirs["result"] == "overturned"


def test_the_requester_learns_of_a_subjects_appeal_but_not_why(world: World) -> None:
    status = _ask(world, "GET", "/api/requests/{a}", "requester").json()
    assert status["stage"] == "appealed"
    assert status["appeal"]["by"] == "subject" and status["appeal"]["grounds"] is None
