"""The ``carewall`` command: a thin click group over the service.

Each area registers its commands from its own module. Every :class:`CarewallError` becomes
one readable line on stderr and the error's exit code; nothing else ever shows a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console

from carewall import __version__
from carewall.errors import CarewallError

__all__ = ["err_console", "main", "out_console"]

out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="carewall")
def main() -> None:
    """carewall: a verifiable data firewall for public services."""


def _register() -> None:
    # Imported for their side effect of adding commands; each module holds one area.
    import importlib

    for name in (
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
    ):
        try:
            importlib.import_module(f"carewall.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"carewall.cli.{name}":
                raise


_register()
