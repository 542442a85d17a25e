"""Notices through a real local SMTP server (aiosmtpd), and the outbox fallback."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from carewall.errors import InputError
from carewall.service import OutboxChannel, Service, SmtpChannel, channel_from_env
from carewall.storage import open_store


class Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Collect, int]]:
    handler = Collect()
    port = free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield handler, port
    finally:
        ctl.stop()


def test_release_notice_is_mailed(
    tmp_path: Path, smtp: tuple[Collect, int], make_doc: Callable[..., dict[str, Any]]
) -> None:
    handler, port = smtp
    svc = Service.init(
        f"sqlite:///{tmp_path / 'n.db'}",
        None,
        "n.test/log",
        tmp_path / "n.key",
        channel=SmtpChannel("127.0.0.1", port, "dpo@whittington.example"),
    )
    subjects = [
        {
            "ref": "9000000001",
            "is_child": False,
            "is_victim_or_witness": False,
            "contact": "pat@example.org",
        },
        {"ref": "9000000002", "is_child": False, "is_victim_or_witness": False},
    ]
    got = svc.submit(make_doc(subjects=subjects))
    rec = svc.review(got.id, "ig-whittington", release=True)
    (mail,) = handler.messages
    assert mail["To"] == "pat@example.org"
    body = mail.get_payload(decode=True).decode()
    assert rec.release is not None
    assert f"Log entry index:   {rec.release.groups[0].log_index}" in body
    assert "address, name" in body and "Metropolitan Police Service" in body
    # the subject with no address is not dropped: their letter waits in the outbox
    channels = sorted((n.subject, n.channel) for n in rec.notices)
    assert channels == [(0, "smtp"), (1, "outbox")]
    (letter,) = svc.outbox()
    assert letter["recipient"] is None and "access code" in letter["body"]


def test_unreachable_smtp_falls_back_to_outbox(
    tmp_path: Path, make_doc: Callable[..., dict[str, Any]]
) -> None:
    svc = Service.init(
        f"sqlite:///{tmp_path / 'n.db'}",
        None,
        "n.test/log",
        tmp_path / "n.key",
        channel=SmtpChannel("127.0.0.1", free_port()),
    )
    doc = make_doc()
    rec = svc.review(svc.submit(doc).id, "ig-whittington", release=True)
    assert [n.channel for n in rec.notices] == ["outbox"]
    assert svc.outbox()[0]["recipient"] == "pat@example.org"


def test_channel_from_env(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'e.db'}")
    assert isinstance(channel_from_env(store, {}), OutboxChannel)
    ch = channel_from_env(store, {"CAREWALL_SMTP": "mail.example:2525"})
    assert isinstance(ch, SmtpChannel) and (ch.host, ch.port) == ("mail.example", 2525)
    with pytest.raises(InputError):
        channel_from_env(store, {"CAREWALL_SMTP": "nonsense"})
