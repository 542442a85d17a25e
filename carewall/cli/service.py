"""``carewall init | submit | review | appeal | withdraw | requests | demo | serve``.

Thin commands over :class:`carewall.service.Service`. Output is ids, codes and counts:
no command prints a subject's reference, a name or free text unless asked for one record.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from carewall.cli import err_console, main, out_console
from carewall.cli.policy import read_limited
from carewall.errors import CarewallError
from carewall.service import Service
from carewall.service.demo import fill_year

__all__ = ["appeal", "demo", "init", "requests", "review", "serve", "submit", "withdraw"]

_db = click.option(
    "--db", "db", default=None, help="Database URL or path (default $CAREWALL_DB or ./carewall.db)."
)
_key = click.option(
    "--key",
    "key",
    default=None,
    type=click.Path(dir_okay=False),
    help="Log signing key file (default $CAREWALL_KEY or <db>.key).",
)


def _open(db: str | None, key: str | None) -> Service:
    return Service.open(db, key)


def _print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


@main.command()
@_db
@click.option(
    "--orgs",
    type=click.Path(dir_okay=False),
    default=None,
    help="Organisations register (TOML); default: the packaged one.",
)
@click.option(
    "--origin",
    default="carewall.example/log",
    show_default=True,
    help="The log's origin (its key name).",
)
@_key
def init(db: str | None, orgs: str | None, origin: str, key: str | None) -> None:
    """Create an instance: schema, the pledge policy as ledger entry 0, an Ed25519 log key."""
    svc = Service.init(db, orgs, origin, key)
    click.echo(f"created carewall instance; log origin {svc.ledger.origin}")
    click.echo(f"verifier key: {svc.ledger.verifier_key}")


@main.command()
@_db
@_key
@click.argument("request", default="-", required=False)
def submit(db: str | None, key: str | None, request: str) -> None:
    """Record REQUEST.json (or - for stdin) and the policy's decision; print id and outcome."""
    data = read_limited(request, what="request")
    got = _open(db, key).submit(data)
    _print_json(got.model_dump())


@main.command()
@click.argument("id")
@click.option("--reviewer", required=True, help="Reviewer id from the register.")
@click.option(
    "--release/--refuse",
    "release",
    default=None,
    help="Release what the policy permits, or refuse.",
)
@click.option("--note", default=None, help="The reviewer's reasons (kept in the DPO record only).")
@_db
@_key
def review(
    id: str, reviewer: str, release: bool | None, note: str | None, db: str | None, key: str | None
) -> None:
    """Record the human decision on request ID."""
    if release is None:
        raise click.UsageError("say --release or --refuse")
    rec = _open(db, key).review(id, reviewer, release, note)
    released = rec.release.categories if rec.release else []
    _print_json(
        {
            "id": rec.id,
            "stage": rec.stage,
            "outcome": rec.outcome,
            "released": released,
            "notices": len(rec.notices),
        }
    )


@main.command()
@click.argument("id")
@click.option("--by", type=click.Choice(["requester", "subject"]), required=True)
@click.option("--grounds", required=True, help="Why the decision is wrong (DPO record only).")
@click.option(
    "--decide", "decider", default=None, help="Decide the lodged appeal as this appeal reviewer."
)
@click.option(
    "--uphold/--overturn", default=True, help="With --decide: uphold (default) or overturn."
)
@_db
@_key
def appeal(
    id: str,
    by: str,
    grounds: str,
    decider: str | None,
    uphold: bool,
    db: str | None,
    key: str | None,
) -> None:
    """Lodge an appeal on request ID (and, with --decide, decide it)."""
    svc = _open(db, key)
    rec = svc.get(id)
    if rec.stage != "appealed":
        rec = svc.appeal(id, by, grounds)  # type: ignore[arg-type]
    if decider:
        rec = svc.decide_appeal(id, decider, uphold)
    _print_json({"id": rec.id, "stage": rec.stage, "outcome": rec.outcome})


@main.command()
@click.argument("id")
@click.option("--by", "by_org", required=True, help="The requesting organisation's id.")
@_db
@_key
def withdraw(id: str, by_org: str, db: str | None, key: str | None) -> None:
    """Withdraw request ID before it is reviewed."""
    rec = _open(db, key).withdraw(id, by_org)
    _print_json({"id": rec.id, "stage": rec.stage, "outcome": rec.outcome})


@main.command()
@_db
@click.option("--holder", default=None)
@click.option("--requester", default=None)
@click.option(
    "--state",
    default=None,
    help="A stage (decided, reviewed, …) or an outcome (refused, released, …).",
)
@click.option("--limit", type=int, default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def requests(
    db: str | None,
    holder: str | None,
    requester: str | None,
    state: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List requests (ids, organisations, purposes and outcomes; no personal data)."""
    rows = Service.open(db).list_requests(holder, requester, state, limit=limit)
    if as_json:
        for r in rows:
            click.echo(json.dumps(r.model_dump()))
        return
    table = Table(title=f"{len(rows)} requests")
    # The id is what people copy into `carewall review`, so it is never shortened; the other
    # columns wrap instead of being cut on a narrow terminal.
    table.add_column("id", no_wrap=True, min_width=21)
    for col in ("received", "requester", "holder", "purpose", "subjects", "stage", "outcome"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r.id,
            r.received_at.replace("T", " ")[:16],
            r.requester,
            r.holder,
            r.purpose,
            str(r.subjects),
            r.stage,
            r.outcome,
        )
    out_console.print(table)


def _serve(svc: Service, host: str, port: int) -> None:
    try:
        module = importlib.import_module("carewall.api.app")
    except ModuleNotFoundError as e:
        if e.name != "carewall.api.app":
            raise
        raise CarewallError(
            "the HTTP API is not installed in this build (carewall.api.app is missing)",
            fix="use the CLI commands, or install a build with the API",
        ) from e
    import uvicorn

    app = module.create_app(svc)
    click.echo(f"serving on http://{host}:{port}/  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@main.command()
@_db
@_key
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(db: str | None, key: str | None, host: str, port: int) -> None:
    """Serve the HTTP API, the pages and /log/."""
    _serve(_open(db, key), host, port)


def _outcome_chart(svc: Service, width: int = 40) -> Table:
    """Who asked, and what they got: one bar per requester function, released part in green."""
    functions = {o.id: o.function for o in svc.register().organisations.values()}
    asked: Counter[str] = Counter()
    released: Counter[str] = Counter()
    for (requester, outcome), n in svc.outcome_counts().items():
        fn = functions.get(requester, "other_public_body")
        asked[fn] += n
        released[fn] += n if outcome == "released" else 0
    top = max(asked.values(), default=1)
    chart = Table(title="requests by who asked (green: released after review)", box=None)
    chart.add_column("requester function")
    chart.add_column("", min_width=width)
    chart.add_column("asked", justify="right")
    chart.add_column("released", justify="right")
    for fn, n in asked.most_common():
        full = max(1, round(n / top * width))
        green = round(released[fn] / top * width)
        bar = f"[green]{'█' * green}[/green][red]{'█' * (full - green)}[/red]"
        chart.add_row(fn, bar, str(n), str(released[fn]))
    return chart


@main.command()
@click.option(
    "--db", default="carewall-demo.db", show_default=True, help="SQLite file for the demo instance."
)
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option(
    "--scale", default=1.0, show_default=True, type=float, help="Fraction of a full year's volume."
)
@click.option("--serve/--no-serve", "do_serve", default=True, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(db: str, seed: int, scale: float, do_serve: bool, host: str, port: int) -> None:
    """Build a synthetic, reproducible year of requests on SQLite, then serve it."""
    if "://" in db and not db.startswith("sqlite"):
        raise click.BadParameter("the demo runs on a SQLite file", param_hint="--db")
    if not 0 < scale <= 2:
        raise click.BadParameter("between 0 and 2", param_hint="--scale")
    path = Path(db.split(":///", 1)[-1])
    if path.exists():
        err_console.print(f"using the existing demo instance in {path}")
        svc = Service.open(db)
    else:
        svc = Service.init(db, None, "demo.carewall.example/log", None)
        with Progress(
            TextColumn("[bold]synthetic year"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
        ) as bar:
            task = bar.add_task("requests", total=None)

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            stats = fill_year(svc, seed, scale, step)
        table = Table(title="the demo year")
        table.add_column("")
        table.add_column("count", justify="right")
        for name, value in (
            ("requests", stats.submitted),
            ("refused by the policy", stats.refused),
            ("released after review", stats.released),
            ("refused on review", stats.review_refused),
            ("withdrawn", stats.withdrawn),
            ("appeals", stats.appeals),
            ("notices sent", stats.notices),
            ("notices deferred", stats.deferred),
            ("ledger entries", svc.ledger.size()),
        ):
            table.add_row(name, str(value))
        err_console.print(table)
        err_console.print(_outcome_chart(svc))
    if do_serve:
        click.echo(f"open http://{host}:{port}/")
        _serve(svc, host, port)
    else:
        click.echo(f"demo instance ready in {path}; run `carewall serve --db {path}`")
