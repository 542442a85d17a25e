"""``carewall decide``, ``carewall policy check`` and ``carewall examples``.

``decide`` changes nothing: it prints the contract §4 decision. Invalid input is one
readable line on stderr and exit 2 (see :mod:`carewall.cli`), never a traceback.

Requests are read with :func:`carewall.policy.parse_document`, which accepts and refuses
exactly what the service's pydantic models do (a differential test holds them equal) but
does not import pydantic, so ``decide`` starts quickly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from carewall.cli import main
from carewall.cli.options import db_and_key, db_option
from carewall.errors import CarewallError, InputError
from carewall.policy import (
    DEFAULT_REGISTER_PATH,
    MAX_REQUEST_BYTES,
    Engine,
    Register,
    load_register,
    parse_document,
)
from carewall.policy.facts import facts_of_document

__all__ = ["check", "decide", "examples", "read_limited"]


def read_limited(source: str, *, what: str, limit: int = MAX_REQUEST_BYTES) -> bytes:
    """Read a file (or ``-`` for stdin) up to ``limit`` bytes; InputError beyond."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(source, "rb") as f:
                data = f.read(limit + 1)
    except OSError as e:
        raise InputError(
            f"cannot read {source!r}: {e.strerror or e}",
            field=what,
            fix="give the path of a readable file, or - for standard input",
        ) from e
    if len(data) > limit:
        raise InputError(
            f"the input is larger than {limit // (1024 * 1024)} MiB",
            field=what,
            fix="split it into smaller requests",
        )
    return data


def _engine(policy: str | None) -> Engine:
    if policy is None:
        return Engine.load()
    text = read_limited(policy, what="policy")
    try:
        return Engine.load(text.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError("not valid UTF-8", field="policy", fix="save it as UTF-8") from e


def _register(orgs: str | None) -> Register:
    return load_register(orgs if orgs is not None else DEFAULT_REGISTER_PATH)


@main.command()
@click.option("--orgs", type=str, default=None, help="Organisations register (TOML).")
@click.option("--policy", type=str, default=None, help="Local Cedar policy (default: packaged).")
@click.argument("request", default="-", required=False)
def decide(orgs: str | None, policy: str | None, request: str) -> None:
    """Decide REQUEST.json (or - for stdin) and print the decision; changes nothing."""
    register = _register(orgs)
    engine = _engine(policy)
    doc = parse_document(read_limited(request, what="request"), register)
    facts, subjects = facts_of_document(doc)
    click.echo(json.dumps(engine.decide_facts(facts, subjects, register).to_json(), indent=2))


@main.group("policy")
def policy_group() -> None:
    """Inspect, check and set Cedar policies."""


@policy_group.command("set")
@click.argument("file")
@db_and_key
def set_(file: str, db: str | None, key: str | None) -> None:
    """Make FILE the instance's local policy; the change and its full text are logged."""
    from carewall.service import Service  # the service is needed only by this command

    text = read_limited(file, what="policy").decode("utf-8")
    svc = Service.open(db, key)
    try:
        before = svc.ledger.size()
        digest = svc.set_local_policy(text)
    finally:
        svc.close()
    click.echo(f"policy {digest} is in force; logged as a policy entry at index {before}")


@policy_group.command("show")
@db_option
def show(db: str | None) -> None:
    """Print the instance's local policy text (the pledge is always loaded before it)."""
    from carewall.service import Service

    svc = Service.open(db)
    try:
        engine = svc.engine()
    finally:
        svc.close()
    click.echo(f"// {engine.policy_hash}", err=True)
    click.echo(engine.local_text, nl=False)


@policy_group.command()
@click.argument("file")
def check(file: str) -> None:
    """Validate a local policy against the schema and the pledge, and list its rules."""
    engine = _engine(file)
    from rich.table import Table  # only the commands that print a table load Rich

    from carewall.cli import out_console

    table = Table(title=f"{file}: valid ({engine.policy_hash})")
    for col in ("rule", "effect", "legal basis", "rationale"):
        table.add_column(col, overflow="fold")
    for r in engine.rules:
        effect = f"{r.effect} (pledge)" if r.pledge else r.effect
        table.add_row(r.id, effect, r.legal_basis or "", r.rationale or "")
    out_console.print(table)


def _run_examples(directory: str, orgs: str | None, policy: str | None) -> None:
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{directory!r} is not a directory", field="dir", fix="give a directory")
    orgs_path = orgs or (
        str(root / "organisations.toml") if (root / "organisations.toml").exists() else None
    )
    register = _register(orgs_path)
    engine = _engine(policy)
    from rich.table import Table

    from carewall.cli import out_console

    table = Table(title=f"carewall examples ({engine.policy_hash[:19]}…)")
    for col in ("file", "requester", "purpose", "categories", "outcome", "deciding rules"):
        table.add_column(col, overflow="fold")
    failures: list[str] = []
    for path in sorted(root.glob("*.json")):
        try:
            doc = parse_document(read_limited(str(path), what="request"), register)
        except CarewallError as e:
            failures.append(f"{path.name}: {e.human()}")
            table.add_row(path.name, "", "", "", "[red]invalid[/red]", e.message)
            continue
        facts, subjects = facts_of_document(doc)
        d = engine.decide_facts(facts, subjects, register)
        colour = "green" if d.outcome == "review" else "red"
        cats = ", ".join(
            f"{c}{'✓' if cd.outcome == 'review' else '✗'}" for c, cd in d.categories.items()
        )
        table.add_row(
            path.name,
            facts.requester,
            facts.purpose,
            cats,
            f"[{colour}]{d.outcome}[/{colour}]",
            "\n".join(d.rules),
        )
    out_console.print(table)
    if failures:
        for line in failures:
            click.echo(line, err=True)
        sys.exit(2)


@main.command()
@click.option("--orgs", type=str, default=None, help="Register (default DIR/organisations.toml).")
@click.option("--policy", type=str, default=None, help="Local Cedar policy.")
@click.argument("directory", default="examples", required=False)
def examples(orgs: str | None, policy: str | None, directory: str) -> None:
    """Decide every *.json request in DIRECTORY and print a table of the outcomes."""
    _run_examples(directory, orgs, policy)


@main.command("run-examples", hidden=True)
@click.option("--orgs", type=str, default=None)
@click.option("--policy", type=str, default=None)
@click.argument("directory", default="examples", required=False)
def run_examples(orgs: str | None, policy: str | None, directory: str) -> None:
    """Alias of ``examples`` (used by ``make run``)."""
    _run_examples(directory, orgs, policy)
