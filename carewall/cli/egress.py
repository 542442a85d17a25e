"""``carewall egress plan | run | release | show | check``: the firewall on bulk data (issue 10).

- ``plan``: the dry run. Decides the request (without logging it) for every combination of
  facts in the source and shows, per column and per group, what would go and what would
  not, and why (the rule ids). Writes and logs nothing.
- ``run``: logs the request (its subjects are the source's rows), decides it, and filters
  the source to a held file in ``--hold-dir`` (default beside the database). Nothing is
  written when nothing may go (a request to an immigration-enforcement body).
- ``release ID --reviewer R --out FILE``: a named release reviewer releases the held file:
  its hash is checked, one ``release`` entry per group records rows and the file's SHA-256,
  and the file is copied to FILE.
- ``check FILE ID``: is FILE exactly the file released for request ID? (from the log.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, cast

import click

from carewall.cli import main, out_console
from carewall.cli.options import db_and_key
from carewall.cli.options import db_option as _db
from carewall.errors import InputError

__all__ = ["egress"]


def _source(spec: str, table: str | None) -> Any:
    from carewall.egress import Source

    if spec.startswith(("postgresql://", "postgres://")):
        if not table:
            raise InputError("a database source needs a table", field="--table")
        return Source.postgres(spec, table)
    if spec.startswith("sqlite:///"):
        if not table:
            raise InputError("a database source needs a table", field="--table")
        return Source.sqlite(spec.removeprefix("sqlite:///"), table)
    path = Path(spec)
    if not path.is_file():
        raise InputError("is not a file", field="--source", fix="a CSV or Parquet file, or a URL")
    if path.suffix.lower() == ".csv":
        return Source.csv(path)
    if path.suffix.lower() == ".parquet":
        return Source.parquet(path)
    raise InputError(
        "is neither .csv nor .parquet",
        field="--source",
        fix="a .csv or .parquet file, or sqlite:///file.db or postgresql://… with --table",
    )


def _doc(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("is not JSON", field="--request", fix="give a §3 request") from None
    if not isinstance(doc, dict):
        raise InputError("must be a JSON object", field="--request")
    return doc


def _inputs(f: Any) -> Any:
    f = click.option("--table", default=None, help="The table, for a database source.")(f)
    f = click.option(
        "--mapping",
        "mapping_path",
        required=True,
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="TOML: columns to categories, flag columns to facts (docs/egress.md).",
    )(f)
    f = click.option(
        "--source", required=True, help="A .csv or .parquet file, sqlite:///… or postgresql://…"
    )(f)
    return click.option(
        "--request",
        "request_path",
        required=True,
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="The request document (§3), without subjects: the rows are the subjects.",
    )(f)


@main.group()
def egress() -> None:
    """The firewall on bulk data: filter an extract by the policy, hold it, release it."""


@egress.command("plan")
@_inputs
@db_and_key
@click.option("--json", "as_json", is_flag=True, help="Print the dry run as JSON.")
def plan_cmd(
    request_path: Path,
    source: str,
    mapping_path: Path,
    table: str | None,
    db: str | None,
    key: str | None,
    as_json: bool,
) -> None:
    """Dry run: what would go, per column and per group, and why; nothing is written."""
    from carewall.egress import count_groups, dry_run, load_mapping, render_dry_run
    from carewall.policy import parse_request
    from carewall.policy.facts import facts_of
    from carewall.service import Service
    from carewall.service.extracts import plan_extract

    src = _source(source, table)
    mapping = load_mapping(mapping_path)
    doc = _doc(request_path)
    counts = count_groups(src, mapping)
    present = [f for f, n in counts.items() if n]
    svc = Service.open(db, key)
    try:
        register = svc.register()
        probe = dict(
            doc, subjects=[{"ref": f"row-{k}", **f.to_json()} for k, f in enumerate(present)]
        )
        facts, subjects = facts_of(parse_request(probe, register))
        decision = svc.engine().decide_facts(facts, subjects, register, count=len(present))
    finally:
        svc.close()
    plan = plan_extract(doc, decision.to_json(), mapping, src)
    dry = dry_run(plan, counts)
    if as_json:
        click.echo(json.dumps(dry.to_json(), indent=2))
    else:
        out_console.print(render_dry_run(dry))


@egress.command("run")
@_inputs
@db_and_key
@click.option(
    "--hold-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where held files are kept (default: a 'held' folder beside a SQLite database).",
)
@click.option("--engine", type=click.Choice(["duckdb", "spark", "postgres"]), default="duckdb")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet")
def run_cmd(
    request_path: Path,
    source: str,
    mapping_path: Path,
    table: str | None,
    db: str | None,
    key: str | None,
    hold_dir: Path | None,
    engine: str,
    fmt: str,
) -> None:
    """Log the request, decide it, and filter the source to a held file."""
    from carewall.egress import load_mapping
    from carewall.service import Service
    from carewall.service.extracts import make_extract

    src = _source(source, table)
    mapping = load_mapping(mapping_path)
    doc = _doc(request_path)
    svc = Service.open(db, key)
    try:
        where = hold_dir or _default_hold(svc.store.url)
        with out_console.status("making the extract…"):
            rec = make_extract(
                svc,
                doc,
                src,
                mapping,
                where,
                engine=cast(Literal["duckdb", "spark", "postgres"], engine),
                fmt=cast(Literal["parquet", "csv"], fmt),
            )
        svc.publish_pending()
    finally:
        svc.close()
    click.echo(json.dumps(rec.to_json(), indent=2))
    if rec.state == "refused":
        click.echo("nothing may go: no file was written (the refusal is logged)", err=True)
        raise click.exceptions.Exit(1)


def _default_hold(url: str) -> Path:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent / "held"
    raise InputError(
        "has no default for a database server", field="--hold-dir", fix="give --hold-dir"
    )


@egress.command("release")
@click.argument("request_id")
@click.option("--reviewer", required=True, help="The named release reviewer at the holder.")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="New file."
)
@db_and_key
def release_cmd(request_id: str, reviewer: str, out: Path, db: str | None, key: str | None) -> None:
    """Release the held file of extract ID to --out, logging its hash per group."""
    from carewall.service import Service
    from carewall.service.extracts import release_extract

    svc = Service.open(db, key)
    try:
        rec = release_extract(svc, request_id, reviewer, out)
        svc.publish_pending()
    finally:
        svc.close()
    click.echo(json.dumps(rec.to_json(), indent=2))


@egress.command("show")
@click.argument("request_id")
@_db
def show_cmd(request_id: str, db: str | None) -> None:
    """An extract: its state, rows per group, the held file's hash."""
    from carewall.service import Service
    from carewall.service.extracts import get_extract

    svc = Service.open(db)
    try:
        rec = get_extract(svc, request_id)
    finally:
        svc.close()
    click.echo(json.dumps(rec.to_json(), indent=2))


@egress.command("check")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("request_id")
@_db
def check_cmd(file: Path, request_id: str, db: str | None) -> None:
    """Is FILE exactly what the log says was released for request ID? Exit 0 yes, 1 no."""
    from carewall.service import Service
    from carewall.service.extracts import logged_files, sha256_of

    digest = sha256_of(file)
    svc = Service.open(db)
    try:
        logged = logged_files(svc, request_id)
    finally:
        svc.close()
    if digest in logged:
        click.echo(f"{digest}: released for {request_id} at log entries {logged[digest]}")
        return
    click.echo(
        f"{digest}: NOT the file released for {request_id}"
        + (f" (the log names {', '.join(logged)})" if logged else " (no file released)"),
        err=True,
    )
    raise click.exceptions.Exit(1)
