"""Facts the holder owns (contract §3): the reviewer confirms or corrects each subject's facts.

Every case runs through the command line (``carewall review`` in-process with click's
runner) and through the HTTP API, and asserts both the result and the public log: the
``review`` entry's ``corrected`` count and holder's record, one ``release`` entry per group
carrying the holder's facts, and one ``notice`` per subject told. A refusal logs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from api_support import HOLDER, api, example, init_service, reviewable
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carewall.api.admin import issue_token
from carewall.cli import main
from carewall.errors import InputError
from carewall.policy import parse_request
from carewall.policy.facts import SubjectFacts, facts_of
from carewall.service import RequestRecord, Service
from carewall.service.logentries import group_counts
from carewall.service.releasing import parse_corrections

RELEASE = "dpo-islington"  # release reviewer at islington-council, the police requests' holder
VS_RELEASE = "disclosure-met"  # release reviewer at met-police, the victim-support holder
APPEAL = "appeals-islington"


def subject(
    i: int, *, child: bool = False, victim: bool = False, consent: bool | None = None
) -> dict[str, Any]:
    s: dict[str, Any] = {"ref": f"SUBJ-{i:04d}", "is_child": child, "is_victim_or_witness": victim}
    if consent is not None:
        s["consent"] = consent
    return s


def police(*subjects: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Police crime request held by islington-council: name and address are releasable."""
    return reviewable(subjects=list(subjects), **changes)


def victim_support(*subjects: dict[str, Any]) -> dict[str, Any]:
    """A charity's ``consent``-basis request held by met-police: name and contact details."""
    return example("12-victim-support-consent.json", subjects=list(subjects))


def logged(svc: Service, start: int) -> list[dict[str, Any]]:
    return [json.loads(e) for e in svc.ledger.entries(start, svc.ledger.size())]


# ----- one review, through the CLI or over HTTP ------------------------------------------


@dataclass
class Outcome:
    ok: bool
    status: int | None  # HTTP status (None through the CLI: exit 2 for every refusal)
    error: str  # the CLI's one line, or the HTTP body's message
    field: str | None
    text: str  # everything the caller saw (checked for personal data)


class Via:
    """Review a request as ``reviewer`` through one interface."""

    name: str
    svc: Service

    def review(
        self, rid: str, reviewer: str, *, release: bool = True, facts: Any = None, **kw: Any
    ) -> Outcome:
        raise NotImplementedError

    def decide_appeal(self, rid: str, reviewer: str, *, uphold: bool, facts: Any) -> Outcome:
        raise NotImplementedError


@dataclass
class CliVia(Via):
    svc: Service
    db: list[str]
    name: str = "cli"
    runner: CliRunner = field(default_factory=CliRunner)

    def run(self, args: list[str], stdin: str | None = None) -> Outcome:
        res = self.runner.invoke(main, [*args, *self.db], input=stdin, catch_exceptions=False)
        text = res.stdout + res.stderr
        assert "Traceback" not in text
        if res.exit_code == 0:
            return Outcome(True, None, "", None, text)
        assert res.exit_code == 2, text
        (line,) = res.stderr.strip().splitlines()  # one readable line, no stack trace
        assert line.startswith("error: ")
        head = line[len("error: ") :]
        fld = head.split(": ", 1)[0] if ": " in head else None
        return Outcome(False, None, line, fld, text)

    def _facts_args(self, facts: Any, shorthand: list[str] | None) -> tuple[list[str], str | None]:
        if shorthand is not None:
            return shorthand, None
        if facts is None:
            return [], None
        return ["--facts", "-"], json.dumps(facts)

    def review(
        self,
        rid: str,
        reviewer: str,
        *,
        release: bool = True,
        facts: Any = None,
        shorthand: list[str] | None = None,
        defer_until: str | None = None,
        no_defer: bool = False,
    ) -> Outcome:
        args, stdin = self._facts_args(facts, shorthand)
        args = [
            "review",
            rid,
            "--reviewer",
            reviewer,
            "--release" if release else "--refuse",
            *args,
        ]
        if defer_until is not None:
            args += ["--defer-until", defer_until]
        if no_defer:
            args.append("--no-defer")
        return self.run(args, stdin)

    def decide_appeal(
        self,
        rid: str,
        reviewer: str,
        *,
        uphold: bool,
        facts: Any,
        shorthand: list[str] | None = None,
    ) -> Outcome:
        args, stdin = self._facts_args(facts, shorthand)
        verdict = "--uphold" if uphold else "--overturn"
        lodge = ["--by", "requester", "--grounds", "x"]
        return self.run(["appeal", rid, *lodge, "--decide", reviewer, verdict, *args], stdin)


@dataclass
class HttpVia(Via):
    svc: Service
    client: TestClient
    name: str = "http"
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, reviewer: str, role: str = "release_reviewer") -> dict[str, str]:
        if reviewer not in self.tokens:
            org = self.svc.register().reviewers[reviewer].organisation
            self.tokens[reviewer] = issue_token(self.svc, org, role, reviewer).secret
        return {"Authorization": f"Bearer {self.tokens[reviewer]}"}

    def post(self, path: str, body: Any, headers: dict[str, str]) -> Outcome:
        r = self.client.post(path, json=body, headers=headers)
        assert r.status_code < 500, r.text
        if r.status_code == 200:
            return Outcome(True, 200, "", None, r.text)
        return Outcome(False, r.status_code, r.json()["message"], r.json().get("field"), r.text)

    def review(
        self,
        rid: str,
        reviewer: str,
        *,
        release: bool = True,
        facts: Any = None,
        shorthand: list[str] | None = None,
        defer_until: str | None = None,
        no_defer: bool = False,
    ) -> Outcome:
        body: dict[str, Any] = {"release": release}
        if facts is not None:
            body["facts"] = facts
        if defer_until is not None:
            body["defer_until"] = defer_until
        if no_defer:
            body["no_defer"] = True
        return self.post(f"/api/requests/{rid}/review", body, self.auth(reviewer))

    def decide_appeal(
        self,
        rid: str,
        reviewer: str,
        *,
        uphold: bool,
        facts: Any,
        shorthand: list[str] | None = None,
    ) -> Outcome:
        lodged = self.client.post(
            f"/api/requests/{rid}/appeal",
            json={"grounds": "x"},
            headers={
                "Authorization": f"Bearer {issue_token(self.svc, 'met-police', 'requester').secret}"
            },
        )
        assert lodged.status_code == 200, lodged.text
        body = {"uphold": uphold, "facts": facts or []}
        return self.post(
            f"/api/requests/{rid}/appeal/decision", body, self.auth(reviewer, "appeal_reviewer")
        )


@pytest.fixture(params=["cli", "http"])
def via(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Via]:
    url = f"sqlite:///{tmp_path / 'cw.db'}"
    if request.param == "cli":
        svc = init_service(url, tmp_path)
        try:
            yield CliVia(svc, ["--db", url, "--key", str(tmp_path / "log.key")])
        finally:
            svc.close()
    else:
        with api(url, tmp_path) as (client, svc, _tokens):
            yield HttpVia(svc, client)


# ----- releases decided again on the holder's record ---------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    doc: dict[str, Any]
    reviewer: str
    facts: list[dict[str, Any]] | None  # over HTTP, and through the CLI when no shorthand
    shorthand: list[str] | None  # the same statements as CLI shorthands
    released: list[tuple[list[int], list[str]]] | None  # None: nothing may go (409)
    corrected: int = 0
    # (is_child, is_victim_or_witness, consent, subjects) of each release entry
    entries: list[tuple[bool, bool, bool, int]] = field(default_factory=list)
    message: str = ""


CASES = [
    Case(
        "holder says a subject the requester called a suspect is a victim",
        police(subject(0), subject(1)),
        RELEASE,
        [{"subject": 1, "is_victim_or_witness": True}],
        ["--victim", "1"],
        released=[([0], ["address", "name"])],
        corrected=1,
        entries=[(False, False, False, 1)],
    ),
    Case(
        "holder says the only subject is a victim: nothing goes to the police",
        police(subject(0)),
        RELEASE,
        [{"subject": 0, "is_victim_or_witness": True}],
        ["--victim", "0"],
        released=None,
        message="permits nothing to be released",
    ),
    Case(
        "consent claimed per subject, not confirmed",
        police(subject(0, victim=True, consent=True)),
        RELEASE,
        None,
        None,
        released=None,
        message="which the reviewer has not confirmed",
    ),
    Case(
        "consent claimed per subject, confirmed",
        police(subject(0, victim=True, consent=True)),
        RELEASE,
        [{"subject": 0, "consent": True}],
        ["--consent", "0"],
        released=[([0], ["address", "name"])],
        entries=[(False, True, True, 1)],
    ),
    Case(
        "consent claimed by a consent basis, not confirmed",
        victim_support(subject(0, victim=True)),
        VS_RELEASE,
        None,
        None,
        released=None,
        message="1 subject(s) were claimed to consent, which the reviewer has not confirmed",
    ),
    Case(
        "consent claimed by a consent basis, confirmed for one of two subjects",
        victim_support(subject(0, victim=True), subject(1, victim=True)),
        VS_RELEASE,
        [{"subject": 1, "consent": True}],
        ["--consent", "1"],
        released=[([1], ["contact_details", "name"])],
        corrected=1,
        entries=[(False, True, True, 1)],
    ),
    Case(
        "holder withdraws a consent the requester claimed",
        police(subject(0, victim=True, consent=True), subject(1, victim=True, consent=True)),
        RELEASE,
        [{"subject": 0, "consent": True}, {"subject": 1, "consent": False}],
        None,
        released=[([0], ["address", "name"])],
        corrected=1,
        entries=[(False, True, True, 1)],
    ),
    Case(
        "holder says one subject is a child and another is not: one entry per group",
        police(subject(0), subject(1), subject(2, child=True)),
        RELEASE,
        [{"subject": 0, "is_child": True}, {"subject": 2, "is_child": False}],
        ["--child", "0", "--not-child", "2"],
        # groups in the order of their facts (false before true), not of their subjects
        released=[([1, 2], ["address", "name"]), ([0], ["address", "name"])],
        corrected=2,
        entries=[(False, False, False, 2), (True, False, False, 1)],
    ),
]


def held_of(rec: RequestRecord) -> list[SubjectFacts]:
    out = []
    for s in rec.subjects:
        assert s.held is not None
        out.append(SubjectFacts(s.held.is_child, s.held.is_victim_or_witness, s.held.consent))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_release_is_decided_on_the_holders_record(via: Via, case: Case) -> None:
    svc = via.svc
    rid = svc.submit(case.doc).id
    size = svc.ledger.size()
    got = via.review(rid, case.reviewer, facts=case.facts, shorthand=case.shorthand)
    rec = svc.get(rid)
    if case.released is None:
        assert not got.ok
        assert got.status in (None, 409)
        assert case.message in got.error
        assert logged(svc, size) == []  # a refusal to release logs nothing
        assert (rec.stage, rec.outcome) == ("decided", "review")
        return
    assert got.ok, got.text
    assert rec.release is not None and (rec.stage, rec.outcome) == ("reviewed", "released")
    assert [(g.subjects, g.categories) for g in rec.release.groups] == case.released
    told = sorted(p for g in rec.release.groups for p in g.subjects)
    held = held_of(rec)
    log = logged(svc, size)
    assert [e["kind"] for e in log] == (
        ["review"] + ["release"] * len(case.entries) + ["notice"] * len(told)
    )
    review = log[0]
    assert review["reviewer"] == case.reviewer and review["corrected"] == case.corrected
    assert review["groups"] == group_counts(held)  # the holder's record, never the claim
    releases = log[1 : 1 + len(case.entries)]
    assert [
        (e["is_child"], e["is_victim_or_witness"], e["consent"], e["subjects"]) for e in releases
    ] == case.entries
    for e in releases:
        assert e["victims_or_witnesses"] == (e["subjects"] if e["is_victim_or_witness"] else 0)
    commitments = {rec.subjects[p].commitment for p in told}
    assert {e["subject"] for e in log[1 + len(case.entries) :]} == commitments
    if via.name == "cli":
        assert f"{case.corrected} of {len(rec.subjects)} subjects' facts corrected" in got.text
        assert "none deferred" in got.text


def test_the_corrected_victim_is_refused_by_the_pledge(via: Via) -> None:
    """Decided again on the holder's record, the victim's data is refused by the pledge rule."""
    svc = via.svc
    doc = police(subject(0), subject(1))
    rid = svc.submit(doc).id
    assert via.review(rid, RELEASE, facts=[{"subject": 1, "is_victim_or_witness": True}]).ok
    register = svc.register()
    facts, _ = facts_of(parse_request(doc, register))
    decision = svc.engine().decide_facts(facts, held_of(svc.get(rid)), register).to_json()
    (victim,) = [g for g in decision["groups"] if 1 in g["subjects"]]
    for cat in ("name", "address"):
        assert victim["categories"][cat] == {
            "outcome": "refused",
            "rules": ["pledge/no-victim-witness-referral"],
        }


# ----- malformed statements: refused, naming the item, logging nothing ---------------------


INVALID: list[tuple[str, Any, str]] = [
    ("subject out of range", [{"subject": 2, "consent": True}], "facts[0].subject"),
    ("negative subject", [{"subject": -1, "is_child": True}], "facts[0].subject"),
    ("subject not an integer", [{"subject": "0", "is_child": True}], "facts[0].subject"),
    ("subject is a boolean", [{"subject": True, "consent": True}], "facts[0].subject"),
    (
        "subject named twice",
        [{"subject": 0, "is_child": True}, {"subject": 0, "consent": True}],
        "facts[1].subject",
    ),
    ("fact not a boolean", [{"subject": 0, "consent": "Pat Example"}], "facts[0].consent"),
    (
        "number for a boolean",
        [{"subject": 0, "is_victim_or_witness": 1}],
        "facts[0].is_victim_or_witness",
    ),
    ("null for a boolean", [{"subject": 0, "is_child": None}], "facts[0].is_child"),
    ("unknown field", [{"subject": 0, "nationality": True}], "facts[0].nationality"),
    ("empty item", [{}], "facts[0].subject"),
    ("item states nothing", [{"subject": 1}], "facts[0]"),
    ("item not an object", [[0, True]], "facts[0]"),
    (
        "second item malformed",
        [{"subject": 0, "consent": True}, {"subject": 1, "child": True}],
        "facts[1].child",
    ),
    ("not a list", {"subject": 0, "consent": True}, "facts"),
]


@pytest.mark.parametrize(("facts", "where"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_malformed_facts_are_refused_naming_the_item(via: Via, facts: Any, where: str) -> None:
    svc = via.svc
    rid = svc.submit(police(subject(0), subject(1))).id
    size = svc.ledger.size()
    got = via.review(rid, RELEASE, facts=facts)
    assert not got.ok and got.status in (None, 422)
    assert got.field == where, got.text
    assert "Pat Example" not in got.text and "SUBJ-" not in got.text  # no personal data
    assert logged(svc, size) == []
    assert svc.get(rid).stage == "decided"


def test_facts_or_deferral_with_a_refusal_are_refused(via: Via) -> None:
    svc = via.svc
    rid = svc.submit(police(subject(0), prejudice=True)).id
    size = svc.ledger.size()
    one = [{"subject": 0, "is_victim_or_witness": True}]
    got = via.review(rid, RELEASE, release=False, facts=one)
    assert not got.ok and got.status in (None, 422)
    assert got.field == ("--facts" if via.name == "cli" else "facts")
    got = via.review(rid, RELEASE, release=False, no_defer=True)
    assert got.field == ("--no-defer" if via.name == "cli" else "no_defer")
    got = via.review(rid, RELEASE, release=False, defer_until="2999-01-01")
    assert got.field == ("--defer-until" if via.name == "cli" else "defer_until")
    assert logged(svc, size) == []
    # the refusal itself still works
    assert via.review(rid, RELEASE, release=False).ok
    assert [e["kind"] for e in logged(svc, size)] == ["review"]


def test_an_overturn_that_releases_takes_the_holders_facts(via: Via) -> None:
    svc = via.svc
    rid = svc.submit(police(subject(0), subject(1))).id
    assert via.review(rid, RELEASE, release=False).ok
    size = svc.ledger.size()
    victim = [{"subject": 1, "is_victim_or_witness": True}]
    got = via.decide_appeal(rid, APPEAL, uphold=False, facts=victim, shorthand=["--victim", "1"])
    assert got.ok, got.text
    rec = svc.get(rid)
    assert rec.release is not None and (rec.stage, rec.outcome) == ("overturned", "released")
    assert [(g.subjects, g.categories) for g in rec.release.groups] == [([0], ["address", "name"])]
    log = logged(svc, size)
    assert [(e["kind"], e.get("stage")) for e in log] == [
        ("appeal", "lodged"),
        ("appeal", "overturned"),
        ("review", None),  # the holder's record, signed by the appeal reviewer
        ("release", None),
        ("notice", None),
    ]
    assert (log[2]["reviewer"], log[2]["corrected"]) == (APPEAL, 1)
    assert (log[3]["is_victim_or_witness"], log[3]["reviewer"]) == (False, APPEAL)


def test_an_upheld_appeal_takes_no_facts(via: Via) -> None:
    svc = via.svc
    rid = svc.submit(police(subject(0))).id
    assert via.review(rid, RELEASE, release=False).ok
    facts = [{"subject": 0, "is_child": True}]
    got = via.decide_appeal(rid, APPEAL, uphold=True, facts=facts, shorthand=["--child", "0"])
    assert not got.ok and got.status in (None, 422)
    assert got.field == ("--child" if via.name == "cli" else "facts")
    assert svc.get(rid).appeal is None or svc.get(rid).stage == "appealed"
    assert "upheld" not in [e.get("stage") for e in logged(svc, 0)]


# ----- the command line's own options -------------------------------------------------------


CLI_INVALID: list[tuple[str, list[str], str | None, str]] = [
    ("--facts not JSON", ["--facts", "-"], "{not json", "--facts"),
    ("--facts file missing", ["--facts", "/nonexistent/facts.json"], None, "--facts"),
    ("--consent not positions", ["--consent", "first"], None, "--consent"),
    ("--consent trailing comma", ["--consent", "0,"], None, "--consent"),
    ("--consent negative", ["--consent", "-1"], None, "--consent"),
    ("--victim out of range", ["--victim", "5"], None, "--victim"),
    ("--victim and --not-victim", ["--victim", "1", "--not-victim", "1"], None, "--not-victim"),
    (
        "--consent contradicts --facts",
        ["--facts", "-", "--consent", "0"],
        '[{"subject": 0, "consent": false}]',
        "--consent",
    ),
    ("--refuse with --victim", ["--refuse", "--victim", "0"], None, "--victim"),
]


@pytest.mark.parametrize(
    ("args", "stdin", "where"), [c[1:] for c in CLI_INVALID], ids=[c[0] for c in CLI_INVALID]
)
def test_cli_options_are_checked(
    tmp_path: Path, args: list[str], stdin: str | None, where: str
) -> None:
    url = f"sqlite:///{tmp_path / 'cw.db'}"
    svc = init_service(url, tmp_path)
    cli = CliVia(svc, ["--db", url, "--key", str(tmp_path / "log.key")])
    rid = svc.submit(police(subject(0), subject(1))).id
    size = svc.ledger.size()
    verdict = [] if "--refuse" in args else ["--release"]
    got = cli.run(["review", rid, "--reviewer", RELEASE, *verdict, *args], stdin)
    assert not got.ok and got.field == where, got.text
    assert logged(svc, size) == []
    svc.close()


def test_cli_merges_a_facts_file_with_shorthands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cw.db'}"
    svc = init_service(url, tmp_path)
    cli = CliVia(svc, ["--db", url, "--key", str(tmp_path / "log.key")])
    rid = svc.submit(police(subject(0, victim=True, consent=True), subject(1))).id
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps([{"subject": 0, "is_child": True}]))
    size = svc.ledger.size()
    got = cli.run(
        ["review", rid, "--reviewer", RELEASE, "--release", "--facts", str(facts), "--consent", "0"]
    )
    assert got.ok, got.text
    held = held_of(svc.get(rid))
    assert held == [SubjectFacts(True, True, True), SubjectFacts(False, False, False)]
    review = logged(svc, size)[0]
    assert review["corrected"] == 1  # subject 0 is a child; the consent was confirmed


# ----- the HTTP API accepts exactly what the service's parser accepts ------------------------


_values = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(-2, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
_keys = st.sampled_from(["subject", "is_child", "is_victim_or_witness", "consent", "other"])
_items = st.one_of(
    st.dictionaries(_keys, _values, max_size=4),
    st.fixed_dictionaries(
        {"subject": st.integers(0, 1)},
        optional={"is_child": st.booleans(), "consent": st.booleans()},
    ),
    _values,
)


@pytest.fixture(scope="module")
def frozen_api(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, str, dict[str, str]]]:
    """A request awaiting review, under a local policy that permits nothing now.

    So any acceptable statement ends in 409 (nothing may go) and the request stays
    reviewable: each example is judged on its statements alone.
    """
    tmp = tmp_path_factory.mktemp("fuzz")
    with api(f"sqlite:///{tmp / 'cw.db'}", tmp) as (client, svc, tok):
        rid = svc.submit(police(subject(0), subject(1))).id
        svc.set_local_policy("// nothing is permitted\n")
        yield client, rid, tok.auth("release")


@settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(facts=st.lists(_items, max_size=3))
def test_http_refuses_exactly_what_the_parser_refuses(
    frozen_api: tuple[TestClient, str, dict[str, str]], facts: list[Any]
) -> None:
    client, rid, auth = frozen_api
    try:
        parse_corrections(facts, 2)
        accepted = True
    except InputError as e:
        accepted = False
        assert e.field is not None and e.field.startswith("facts[")
    r = client.post(
        f"/api/requests/{rid}/review", json={"release": True, "facts": facts}, headers=auth
    )
    if accepted:
        assert r.status_code == 409, r.text
    else:
        assert r.status_code == 422, r.text
        assert r.json()["field"].startswith("facts[")


def test_only_the_holder_states_facts(tmp_path: Path) -> None:
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, tok):
        rid = svc.submit(police(subject(0))).id
        size = svc.ledger.size()
        body = {"release": True, "facts": [{"subject": 0, "is_victim_or_witness": False}]}
        for who in ("requester", "other_requester", "appeal", "admin"):
            r = client.post(f"/api/requests/{rid}/review", json=body, headers=tok.auth(who))
            assert r.status_code == 403, (who, r.text)
        # a release reviewer elsewhere cannot see the request at all
        r = client.post(f"/api/requests/{rid}/review", json=body, headers=tok.auth("other_release"))
        assert r.status_code == 404
        assert logged(svc, size) == []
        assert svc.get(rid).subjects[0].held is None
        assert svc.get(rid).holder == HOLDER
