"""The ``carewall`` command: a thin click group over the service.

Each area registers its commands from its own module. Every :class:`CarewallError` becomes
one readable line on stderr and the error's exit code; nothing else ever shows a traceback.

Command modules are imported only when needed: ``carewall decide`` imports the policy
engine, never FastAPI or SQLAlchemy. :data:`_INDEX` says which module holds each command
and gives its one-line help, so ``carewall --help`` lists every command without importing
any of them (a test checks the index against the commands the modules really register).
A module named in :data:`_MODULES` but not in the index is simply imported up front.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

import click

from carewall import __version__
from carewall.errors import CarewallError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["err_console", "main", "out_console"]

# The modules that add commands, one a line (each module holds one area).
_MODULES: tuple[str, ...] = (
    "policy",
    "ledger",
    "service",
    "requests",
    "show",
    "notices",
    "demo",
    "deferral",
    "audit",
    "clean",
    "tokens",
    "register",
    "jobs",
    "agreements",
    "witness",
    "egress",
)

# command -> (module, one-line help); hidden commands have no help line.
_INDEX: dict[str, tuple[str, str | None]] = {
    "agreement": (
        "agreements",
        "Standing data-sharing agreements: register, list, show, withdraw, letter, destroyed.",
    ),
    "appeal": ("service", "Lodge an appeal on request ID (and, with --decide, decide it)."),
    "audit": (
        "audit",
        "Follow the carewall log at URL: check signatures, consistency and every entry, "
        "and replay it (register, policy, every decision made again, every release "
        "justified); then check that the statistics it publishes are the ones its log gives.",
    ),
    "certificate": ("clean", "Deletion certificates."),
    "decide": (
        "policy",
        "Decide REQUEST.json (or - for stdin) and print the decision; changes nothing.",
    ),
    "deferral": (
        "deferral",
        "Deferred notices: list those due for review, lift or renew a deferral.",
    ),
    "demo": ("demo", "Build a synthetic, reproducible year of requests on SQLite, then serve it."),
    "egress": (
        "egress",
        "The firewall on bulk data: filter an extract by the policy, hold it, release it.",
    ),
    "examples": (
        "policy",
        "Decide every *.json request in DIRECTORY and print a table of the outcomes.",
    ),
    "init": (
        "service",
        "Create an instance: schema, the pledge policy as ledger entry 0, an Ed25519 log key.",
    ),
    "jobs": (
        "jobs",
        "Background jobs (a large release's notices): list them with progress, or run them.",
    ),
    "ledger": (
        "ledger",
        "The public append-only log: verify it, read checkpoints and proofs, append entries.",
    ),
    "notices": ("notices", "Notices to the people whose data was released: list, print, resend."),
    "policy": ("policy", "Inspect, check and set Cedar policies."),
    "purge": ("clean", "Delete what `carewall scan` finds in SOURCE."),
    "register": (
        "register",
        "The organisations register: list it, add or retire organisations and reviewers.",
    ),
    "requests": (
        "requests",
        "List requests, oldest first (ids, organisations, purposes and outcomes; "
        "no personal data).",
    ),
    "review": ("service", "Record the human decision on request ID."),
    "run-examples": ("policy", None),
    "scan": (
        "clean",
        "Find personal data of the never-disclosed categories in SOURCE: a SQLite file, a "
        "postgresql:// URL, a CSV or Parquet file, or a folder of them.",
    ),
    "serve": ("service", "Serve the HTTP API, the pages and /log/."),
    "show": (
        "show",
        "Show request ID's full record: who asked for what, the decision and its rules, the "
        "review, release, appeal, notices and every event with its log index.",
    ),
    "submit": (
        "service",
        "Record REQUEST.json (or - for stdin) and the policy's decision; print id and outcome.",
    ),
    "token": ("tokens", "Bearer tokens for the HTTP API."),
    "withdraw": ("service", "Withdraw request ID before it is reviewed."),
    "witness": (
        "witness",
        "Witness other logs: cosign their checkpoints when they only ever grow.",
    ),
}


def _load(module: str) -> None:
    try:
        importlib.import_module(f"carewall.cli.{module}")
    except ModuleNotFoundError as e:
        if e.name != f"carewall.cli.{module}":
            raise


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CarewallError as e:
            click.echo(e.human(), err=True)
            sys.exit(e.exit_code)
        except UnicodeDecodeError:
            click.echo("error: input is not valid UTF-8 (save the file as UTF-8)", err=True)
            sys.exit(2)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            indexed = _INDEX.get(cmd_name)
            if indexed is not None:
                _load(indexed[0])
            else:  # not in the index: it can only be in a module not yet imported
                for module in _MODULES:
                    _load(module)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(_INDEX))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None:  # listed from the index, without importing its module
                help_line = _INDEX[name][1]
                cmd = click.Command(name, help=help_line, hidden=help_line is None)
            if not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="carewall")
def main() -> None:
    """carewall: a verifiable data firewall for public services."""


def load_all() -> None:
    """Import every command module (for tools that walk the whole command tree)."""
    for module in _MODULES:
        _load(module)


_consoles: dict[str, Console] = {}


def __getattr__(name: str) -> Console:
    # Rich is imported by the first command that prints through it, not by every command.
    if name in ("out_console", "err_console"):
        console = _consoles.get(name)
        if console is None:
            from rich.console import Console

            console = Console(stderr=name == "err_console", soft_wrap=True)
            _consoles[name] = console
        return console
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Modules that the index does not cover register their commands now, as before.
for _module in sorted(set(_MODULES) - {m for m, _ in _INDEX.values()}):
    _load(_module)
