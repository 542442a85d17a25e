"""``carewall notices list | print | resend`` through the command line."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import date, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cli_support import Cli, access_code, one_line_error, run, wide_console

from carewall.errors import AuthError
from carewall.service import Notice
from carewall.service.jobs import record_queued


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with wide_console():
        yield Cli.init(tmp_path)


def _notice_id(cli: Cli, rid: str) -> int:
    (notice,) = cli.service().notices(rid)
    return notice.id


def _listed(cli: Cli, *options: str) -> list[dict[str, Any]]:
    res = run(["notices", "list", *cli.db, "--json", *options])
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_list_shows_no_address_unless_asked(cli: Cli) -> None:
    rid = cli.released()
    nid = _notice_id(cli, rid)
    res = run(["notices", "list", *cli.db])
    assert res.exit_code == 0, res.output
    assert "1 notices" in res.stdout and rid in res.stdout
    assert "outbox" in res.stdout and "delivered" in res.stdout
    assert "pat@example.org" not in res.stdout and "9434765919" not in res.stdout
    res = run(["notices", "list", *cli.db, "--show-contact"])
    assert "pat@example.org" in res.stdout

    (row,) = _listed(cli)
    assert (row["id"], row["request_id"], row["channel"], row["delivered"]) == (
        nid,
        rid,
        "outbox",
        True,
    )
    assert "contact" not in row
    (row,) = _listed(cli, "--show-contact")
    assert row["contact"] == "pat@example.org"
    assert _listed(cli, "--undelivered") == []
    assert _listed(cli, "--request", "r-other") == []


def test_print_is_the_letter_and_resend_keeps_its_code(cli: Cli) -> None:
    rid = cli.released()
    nid = _notice_id(cli, rid)
    svc = cli.service()
    (kept,) = svc.outbox()

    res = run(["notices", "print", str(nid), *cli.db])
    assert res.exit_code == 0, res.output
    assert res.stdout == kept["body"]  # exactly what the person holds
    code = access_code(res.stdout)
    assert svc.subject_view(rid, code).categories == ["address", "name"]

    res = run(["notices", "resend", str(nid), *cli.db])
    assert res.exit_code == 0, res.output
    assert "same access code" in res.stdout and "outbox" in res.stdout
    first, again = svc.outbox()
    assert (again["notice_id"], again["recipient"], again["subject"], again["body"]) == (
        nid,
        first["recipient"],
        first["subject"],
        first["body"],
    )
    # the code in the letter the person already has still opens their record
    assert svc.subject_view(rid, code).request_id == rid
    assert run(["notices", "print", str(nid), *cli.db]).stdout == kept["body"]
    # the resend is in the DPO's record of the request (not in the log: nothing new went)
    assert "notice_resent" in run(["show", rid, *cli.db]).stdout
    events = svc.get(rid).events
    assert [(e.kind, e.log_index) for e in events][-1] == ("notice_resent", None)


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Collect, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    handler = _Collect()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield handler, port
    finally:
        ctl.stop()


def test_resend_by_mail_sends_the_same_letter(cli: Cli, smtp: tuple[_Collect, int]) -> None:
    handler, port = smtp
    rid = cli.released()
    nid = _notice_id(cli, rid)
    (kept,) = cli.service().outbox()
    env = {"CAREWALL_SMTP": f"127.0.0.1:{port}"}
    res = run(["notices", "resend", str(nid), *cli.db], env=env)
    assert res.exit_code == 0, res.output
    assert "by smtp" in res.stdout
    (mail,) = handler.messages
    assert mail["To"] == "pat@example.org" and mail["Subject"] == kept["subject"]
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert body.decode().replace("\r\n", "\n") == kept["body"]
    assert cli.service().subject_view(rid, access_code(kept["body"])).request_id == rid


class _Mailbag:
    """A channel that keeps no copy, as SMTP does."""

    name = "smtp"

    def __init__(self) -> None:
        self.sent: list[Notice] = []

    def send(self, notice: Notice) -> None:
        self.sent.append(notice)


def test_a_letter_that_was_not_kept_is_never_made_up(cli: Cli) -> None:
    rid = cli.submit()
    bag = _Mailbag()
    svc = cli.service()
    svc.channel = bag
    svc.review(rid, "ig-whittington", True)
    (letter,) = bag.sent
    nid = _notice_id(cli, rid)
    assert cli.service().outbox() == []
    for action in ("print", "resend"):
        line = one_line_error(run(["notices", action, str(nid), *cli.db]), "notice_id")
        assert "went by smtp and is not kept" in line
    # no new code was issued: the one in the mailed letter still works
    assert cli.service().subject_view(rid, access_code(letter.body)).request_id == rid


def test_a_notice_not_sent_yet_cannot_be_printed(cli: Cli) -> None:
    deferred = cli.submit(prejudice=True)
    until = (date.today() + timedelta(days=30)).isoformat()
    cli.review(deferred, "--release", "--defer-until", until)
    held = _notice_id(cli, deferred)

    svc = cli.service()
    svc.auto_publish = False  # nothing is delivered after the release commits
    waiting = cli.submit()
    svc.review(waiting, "ig-whittington", True)
    record_queued(svc)  # its notice written, not delivered
    due = _notice_id(cli, waiting)

    res = run(["notices", "list", *cli.db])
    assert "deferred" in res.stdout and f"review by {until}" in res.stdout
    assert "waiting" in res.stdout and "due since" in res.stdout
    assert [n["id"] for n in _listed(cli, "--undelivered")] == [due]
    for action in ("print", "resend"):
        line = one_line_error(run(["notices", action, str(held), *cli.db]), "notice_id")
        assert f"deferred until {until}" in line and "carewall deferral lift" in line
        line = one_line_error(run(["notices", action, str(due), *cli.db]), "notice_id")
        assert "not been sent yet" in line

    assert svc.deliver_pending() == 1
    assert _listed(cli, "--undelivered") == []
    res = run(["notices", "print", str(due), *cli.db])
    assert res.exit_code == 0 and waiting in res.stdout


def test_unknown_and_malformed_notice_ids(cli: Cli) -> None:
    cli.released()
    for action in ("print", "resend"):
        line = one_line_error(run(["notices", action, "999", *cli.db]), "notice_id")
        assert "no such notice" in line and "carewall notices list" in line
        for bad in ("0", "-1", "abc", "1.5", "99999999999999999999", ""):
            res = run(["notices", action, bad, *cli.db])
            assert res.exit_code == 2 and "NOTICE_ID" in res.stderr, (action, bad)
    # nothing was sent for any of them
    assert len(cli.service().outbox()) == 1


def test_a_wrong_code_still_fails_after_resend(cli: Cli) -> None:
    rid = cli.released()
    assert run(["notices", "resend", str(_notice_id(cli, rid)), *cli.db]).exit_code == 0
    with pytest.raises(AuthError):
        cli.service().subject_view(rid, "not-the-code")
