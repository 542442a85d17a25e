"""An instance driven through the ``carewall`` command line, for the CLI tests."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from carewall.cli import main, out_console
from carewall.service import Service

__all__ = ["DOC", "Cli", "access_code", "one_line_error", "run", "wide_console"]

DOC: dict[str, Any] = {
    "reference": "MPS-2026-000777",
    "requester": "met-police",
    "officer": {"name": "DC Lee Marchetti", "role": "Detective Constable"},
    "holder": "whittington-health",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "offence": "theft_act_1968_s1",
    "subjects": [
        {
            "ref": "9434765919",
            "is_child": False,
            "is_victim_or_witness": False,
            "contact": "pat@example.org",
        }
    ],
    "categories": ["name", "address", "nationality"],
    "necessity": "Suspect in a burglary.",
    "received_at": "2026-11-21T10:00:00Z",
}
# The pledge refuses this whatever else it says.
HOME_OFFICE = {"requester": "home-office-ie", "purpose": "immigration_enforcement"}


def run(args: list[str], stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    """The command in-process; any exception that is not a clean exit fails the test."""
    return CliRunner().invoke(main, args, input=stdin, env=env, catch_exceptions=False)


@contextmanager
def wide_console(width: int = 200) -> Iterator[None]:
    """Rich sizes the shared console once, at import: widen it so table cells do not fold."""
    old = out_console.width
    out_console.width = width
    try:
        yield
    finally:
        out_console.width = old


def one_line_error(res: Result, field: str) -> str:
    """``res`` failed with exit 2 and one line on stderr that names ``field``."""
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"error: {field}:"), lines[0]
    return lines[0]


def access_code(letter: str) -> str:
    """The access code printed in a notice letter."""
    m = re.search(r"access code:\s+(\S+)", letter)
    assert m is not None, letter
    return m.group(1)


@dataclass
class Cli:
    """One instance in ``tmp``: ``db`` for every command, ``key`` where one signs."""

    tmp: Path
    url: str

    @classmethod
    def init(cls, tmp: Path, url: str | None = None) -> Cli:
        cli = cls(tmp, url or str(tmp / "cw.db"))
        res = run(["init", *cli.signing, "--origin", "cli.test/log"])
        assert res.exit_code == 0, res.output
        return cli

    @property
    def db(self) -> list[str]:
        return ["--db", self.url]

    @property
    def signing(self) -> list[str]:
        return [*self.db, "--key", str(self.tmp / "cw.key")]

    def service(self) -> Service:
        return Service.open(self.url, self.tmp / "cw.key")

    def submit(self, **changes: Any) -> str:
        doc = copy.deepcopy(DOC)
        doc.update(changes)
        res = run(["submit", *self.signing, "-"], stdin=json.dumps(doc))
        assert res.exit_code == 0, res.output
        return str(json.loads(res.stdout)["id"])

    def review(self, rid: str, *options: str) -> None:
        res = run(["review", rid, "--reviewer", "ig-whittington", *options, *self.signing])
        assert res.exit_code == 0, res.output

    def released(self, **changes: Any) -> str:
        rid = self.submit(**changes)
        self.review(rid, "--release")
        return rid

    def refused(self) -> str:
        return self.submit(**HOME_OFFICE)
