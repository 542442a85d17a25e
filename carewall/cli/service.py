"""``carewall init | submit | review | appeal | withdraw | serve``.

Thin commands over :class:`carewall.service.Service`. Output is ids, codes and counts:
no command prints a subject's reference, a name or free text unless asked for one record.

At a release the holder's reviewer states each subject's facts (contract §3, "Facts the
holder owns"): ``--facts FILE`` holds ``[{"subject": i, "is_child"?: bool,
"is_victim_or_witness"?: bool, "consent"?: bool}, …]`` and ``--consent 0,2``, ``--victim``,
``--not-victim``, ``--child``, ``--not-child`` are shorthands that add to it. Consent counts
only where the reviewer states it. ``--defer-until DATE`` / ``--no-defer`` decide a request
to defer the subjects' notices.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from carewall.api.server import ServeSettings, serve_app
from carewall.cli import err_console, main
from carewall.cli.options import db_option as _db
from carewall.cli.options import key_option as _key
from carewall.cli.options import log_key_options
from carewall.cli.policy import read_limited
from carewall.cli.port import check_port
from carewall.cli.serve_options import client_options, settings_from
from carewall.errors import CarewallError, InputError
from carewall.ledger import pin
from carewall.service import RequestRecord, Service
from carewall.service.jobs import startup_sweep

__all__ = ["appeal", "init", "review", "serve", "submit", "withdraw"]


def _open(db: str | None, key: str | None) -> Service:
    return Service.open(db, key)


@contextmanager
def _opened(db: str | None, key: str | None) -> Iterator[Service]:
    """The instance, closed when the command is done (not left to the garbage collector:
    on SQLite an open connection keeps the -wal and -shm files beside the database)."""
    svc = Service.open(db, key)
    try:
        yield svc
    finally:
        svc.close()


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
@click.option(
    "--operator",
    default=None,
    help="The organisation running the instance (its admin may set the policy over HTTP).",
)
@_key
@click.option(
    "--vkey-out",
    "vkey_out",
    default=None,
    type=click.Path(dir_okay=False),
    help="Where to write the verifier key to publish and pin (default: beside the key file, "
    "<db>.vkey).",
)
def init(
    db: str | None,
    orgs: str | None,
    origin: str,
    operator: str | None,
    key: str | None,
    vkey_out: str | None,
) -> None:
    """Create an instance: schema, the pledge policy as ledger entry 0, an Ed25519 log key.

    The verifier key is printed and written to a file: publish it, and pin it when you
    serve or verify (--log-key-file), so nothing trusts the copy kept in the database.
    """
    vkey_path = pin.vkey_out_path(db, key, vkey_out)
    pin.check_vkey_out(vkey_path)  # before anything is created
    svc = Service.init(db, orgs, origin, key, operator=operator)
    # Closed here, not left to the collector: on SQLite an open connection keeps the
    # database's -wal and -shm files beside it until a collection happens to free it.
    try:
        origin_made, verifier_key = svc.ledger.origin, svc.ledger.verifier_key
    finally:
        svc.close()
    pin.publish_vkey(vkey_path, verifier_key)
    click.echo(f"created carewall instance; log origin {origin_made}")
    click.echo(f"verifier key: {verifier_key}")
    click.echo(
        f"verifier key written to {vkey_path}: publish it, and pin it with "
        f"--log-key-file {vkey_path} (or ${pin.ENV_KEY}) for `carewall serve` and "
        "`carewall ledger verify`"
    )


@main.command()
@_db
@_key
@click.option(
    "--idempotency-key",
    "idempotency_key",
    default=None,
    metavar="KEY",
    help="Any unique string (e.g. a UUID): run again with the same KEY and document "
    "within 24 hours, it prints the first result and records nothing twice.",
)
@click.argument("request", default="-", required=False)
def submit(db: str | None, key: str | None, idempotency_key: str | None, request: str) -> None:
    """Record REQUEST.json (or - for stdin) and the policy's decision; print id and outcome."""
    data = read_limited(request, what="request")
    try:
        with _opened(db, key) as svc:
            got = svc.submit(data, idempotency_key=idempotency_key)
    except CarewallError as e:
        if e.field != "idempotency_key":
            raise
        raise type(e)(e.message, field="--idempotency-key", fix=e.fix) from e
    _print_json(got.model_dump())


# ----- the holder's record of the subjects, and the deferral decision -------------------

_F = TypeVar("_F", bound=Callable[..., Any])
_FACTS_EXAMPLE = '[{"subject": 0, "is_victim_or_witness": true, "consent": true}]'
# (option, fact, value): each adds {"subject": i, fact: value} for the listed positions
_SHORTHANDS: tuple[tuple[str, str, bool], ...] = (
    ("--consent", "consent", True),
    ("--victim", "is_victim_or_witness", True),
    ("--not-victim", "is_victim_or_witness", False),
    ("--child", "is_child", True),
    ("--not-child", "is_child", False),
)
_SHORTHAND_HELP = {
    "--consent": "Subject positions (0 = first, comma-separated) whose consent you confirm.",
    "--victim": "Subject positions you record as a victim or witness of crime.",
    "--not-victim": "Subject positions you record as not a victim or witness.",
    "--child": "Subject positions you record as a child.",
    "--not-child": "Subject positions you record as not a child.",
}
_OPTION_NAMES = {"--facts": "facts", "--defer-until": "defer_until", "--no-defer": "no_defer"} | {
    opt: opt[2:].replace("-", "_") for opt, _, _ in _SHORTHANDS
}


def _holder_options(f: _F) -> _F:
    """The options with which a reviewer states the holder's facts and decides deferral."""
    f = click.option(
        "--no-defer",
        "no_defer",
        is_flag=True,
        help="Send the notices now, although the requester asked to defer them.",
    )(f)
    f = click.option(
        "--defer-until",
        "defer_until",
        default=None,
        metavar="YYYY-MM-DD",
        help="Defer the subjects' notices until this review date (after today, <= 90 days).",
    )(f)
    for opt, _, _ in reversed(_SHORTHANDS):
        f = click.option(
            opt,
            opt[2:].replace("-", "_"),
            default=None,
            metavar="POSITIONS",
            help=_SHORTHAND_HELP[opt],
        )(f)
    return click.option(
        "--facts",
        "facts",
        default=None,
        metavar="FILE|-",
        help="JSON list of your statements per subject, e.g. " + _FACTS_EXAMPLE,
    )(f)


def _positions(value: str, option: str) -> list[int]:
    out: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if not part.isascii() or not part.isdigit() or len(part) > 6:
            raise InputError(
                "must be subject positions separated by commas",
                field=option,
                fix="e.g. 0,2 (the first subject in the request is 0)",
            )
        out.append(int(part))
    return out


class HolderFacts:
    """The reviewer's statements as given on the command line, merged into one list.

    ``origins[k]`` says where item k came from (``facts[k]`` or a shorthand option), so an
    error the service reports about ``facts[k]`` names what the reviewer actually typed.
    """

    def __init__(self, opts: dict[str, Any]) -> None:
        self.given = [o for o, name in _OPTION_NAMES.items() if opts.get(name)]
        self.defer_until: str | None = opts.get("defer_until")
        self.no_defer = bool(opts.get("no_defer"))
        self.items: list[Any] | None = None
        self.origins: list[str] = []
        if opts.get("facts") is not None:
            self.items = self._read(opts["facts"])
            self.origins = [f"facts[{k}]" for k in range(len(self.items))]
        for opt, fact, value in _SHORTHANDS:
            raw = opts.get(opt[2:].replace("-", "_"))
            if raw is not None:
                for pos in _positions(raw, opt):
                    self._add(opt, pos, fact, value)

    @staticmethod
    def _read(source: str) -> list[Any]:
        data = read_limited(source, what="--facts")
        try:
            items = json.loads(data)
        except ValueError as e:  # includes UnicodeDecodeError
            raise InputError(
                "is not valid JSON", field="--facts", fix="give a JSON list, e.g. " + _FACTS_EXAMPLE
            ) from e
        if not isinstance(items, list):
            raise InputError(
                "must be a JSON list of statements, one per subject",
                field="facts",
                fix="e.g. " + _FACTS_EXAMPLE,
            )
        return items

    def _add(self, opt: str, pos: int, fact: str, value: bool) -> None:
        items = self.items if self.items is not None else []
        self.items = items
        for item in items:
            said = item.get("subject") if isinstance(item, dict) else None
            if isinstance(said, int) and not isinstance(said, bool) and said == pos:
                if item.get(fact, value) != value:
                    raise InputError(
                        f"contradicts another statement of subject {pos}'s {fact}",
                        field=opt,
                        fix="state each fact of a subject once",
                    )
                item[fact] = value
                return
        items.append({"subject": pos, fact: value})
        self.origins.append(opt)

    def refuse_unless(self, allowed: bool, when: str) -> None:
        """An InputError naming the first option given, unless these options apply here."""
        if self.given and not allowed:
            raise InputError(
                f"the subjects' facts and the deferral are decided only {when}",
                field=self.given[0],
                fix="leave these options out",
            )

    def named(self, e: InputError) -> InputError:
        """``e`` with its field named as typed: an option, or the ``facts[k]`` it came from."""
        if e.field in ("defer_until", "no_defer"):
            return InputError(e.message, field="--" + e.field.replace("_", "-"), fix=e.fix)
        m = re.fullmatch(r"facts\[(\d+)\](.*)", e.field or "")
        if m is None or int(m.group(1)) >= len(self.origins):
            return e
        origin = self.origins[int(m.group(1))]
        field = origin + m.group(2) if origin.startswith("facts[") else origin
        return InputError(e.message, field=field, fix=e.fix)

    def apply(self, call: Callable[..., RequestRecord]) -> RequestRecord:
        try:
            return call(facts=self.items, defer_until=self.defer_until, no_defer=self.no_defer)
        except InputError as e:
            named = self.named(e)
            if named is e:
                raise
            raise named from e


def _corrected(rec: RequestRecord) -> int:
    """How many subjects' facts the holder's record changed from the requester's claim."""
    return sum(
        1
        for s in rec.subjects
        if s.held is not None
        and (s.held.is_child, s.held.is_victim_or_witness, s.held.consent)
        != (s.is_child, s.is_victim_or_witness, s.consent)
    )


def _deferred_until(rec: RequestRecord) -> str | None:
    return next((n.review_date for n in rec.notices if n.status == "deferred"), None)


def _say_release(rec: RequestRecord) -> None:
    """On stderr: how many subjects' facts were corrected, and what became of the notices."""
    if rec.release is None:
        return
    n = len(rec.subjects)
    click.echo(f"holder's record: {_corrected(rec)} of {n} subjects' facts corrected", err=True)
    until = _deferred_until(rec)
    if until is not None:
        held = sum(1 for x in rec.notices if x.status == "deferred")
        click.echo(f"notices: {held} deferred until {until} (review by then)", err=True)
    else:
        click.echo(f"notices: {len(rec.notices)} sent, none deferred", err=True)


@main.command()
@click.argument("id")
@click.option("--reviewer", required=True, help="Reviewer id from the register.")
@click.option(
    "--release/--refuse",
    "release",
    default=None,
    help="Release what the policy permits on the holder's record, or refuse.",
)
@click.option("--note", default=None, help="The reviewer's reasons (kept in the DPO record only).")
@_holder_options
@_db
@_key
def review(
    id: str,
    reviewer: str,
    release: bool | None,
    note: str | None,
    db: str | None,
    key: str | None,
    **holder: Any,
) -> None:
    """Record the human decision on request ID.

    With --release, state the subjects' facts as the holder knows them (--facts, --consent,
    --victim …): a fact not stated is confirmed as claimed, except consent, which counts only
    where you state it. Decide a request to defer the notices with --defer-until or --no-defer.
    """
    if release is None:
        raise click.UsageError("say --release or --refuse")
    stated = HolderFacts(holder)
    stated.refuse_unless(release, "with --release")
    with _opened(db, key) as svc:
        if release:
            rec = stated.apply(lambda **kw: svc.review(id, reviewer, True, note, **kw))
        else:
            rec = svc.review(id, reviewer, False, note)
    _say_release(rec)
    released = rec.release.categories if rec.release else []
    _print_json(
        {
            "id": rec.id,
            "stage": rec.stage,
            "outcome": rec.outcome,
            "released": released,
            "notices": len(rec.notices),
            "corrected": _corrected(rec),
            "deferred_until": _deferred_until(rec),
        }
    )


@main.command()
@click.argument("id")
@click.option("--by", type=click.Choice(["requester", "subject"]), required=True)
@click.option("--grounds", required=True, help="Why the decision is wrong (DPO record only).")
@click.option(
    "--subject",
    "position",
    type=click.IntRange(min=0),
    default=None,
    help="With --by subject: the appealing subject's position in the request (each subject "
    "may appeal a release once).",
)
@click.option(
    "--decide", "decider", default=None, help="Decide the lodged appeal as this appeal reviewer."
)
@click.option(
    "--uphold/--overturn", default=True, help="With --decide: uphold (default) or overturn."
)
@_holder_options
@_db
@_key
def appeal(
    id: str,
    by: str,
    grounds: str,
    position: int | None,
    decider: str | None,
    uphold: bool,
    db: str | None,
    key: str | None,
    **holder: Any,
) -> None:
    """Lodge an appeal on request ID (and, with --decide, decide it).

    With --decide on a request already appealed, the oldest appeal waiting is decided and
    nothing new is lodged. Overturning a refusal releases what the policy permits on the
    holder's record: state the subjects' facts and the deferral with the same options as
    `carewall review`.
    """
    stated = HolderFacts(holder)
    stated.refuse_unless(decider is not None and not uphold, "with --decide … --overturn")
    with _opened(db, key) as svc:
        rec = svc.get(id)
        # checked before anything is recorded: lodging records the outcome appealed against
        prior = rec.appeal.prior_outcome if rec.stage == "appealed" and rec.appeal else rec.outcome
        stated.refuse_unless(prior == "refused", "when overturning a refusal releases data")
        if rec.stage != "appealed" or not decider:
            rec = svc.appeal(id, by, grounds, subject=position)  # type: ignore[arg-type]
        if decider:
            who = decider
            rec = stated.apply(lambda **kw: svc.decide_appeal(id, who, uphold, **kw))
            _say_release(rec)
    _print_json({"id": rec.id, "stage": rec.stage, "outcome": rec.outcome})


@main.command()
@click.argument("id")
@click.option("--by", "by_org", required=True, help="The requesting organisation's id.")
@_db
@_key
def withdraw(id: str, by_org: str, db: str | None, key: str | None) -> None:
    """Withdraw request ID before it is reviewed."""
    with _opened(db, key) as svc:
        rec = svc.withdraw(id, by_org)
    _print_json({"id": rec.id, "stage": rec.stage, "outcome": rec.outcome})


def _default_public_url(host: str, port: int) -> str:
    """``http://HOST:PORT/`` from serve's own options (an IPv6 host in brackets)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def _retry_notices(svc: Service) -> None:
    """Free notice claims a dead worker left (older than the lease) and send what is due.

    A large backlog is left to the server's background worker, so the server answers at
    once; `carewall jobs` shows its progress.
    """
    if not svc.ledger.writable:
        return
    try:
        done, left = startup_sweep(svc)
    except CarewallError as e:
        err_console.print(f"notices not retried at start: {e.human()}")
        return
    if done.freed or done.sent or left:
        later = f", {left} left to the background worker (see `carewall jobs`)" if left else ""
        click.echo(f"notices: {done.freed} stale claim(s) freed, {done.sent} sent{later}")


def _serve(
    svc: Service,
    host: str,
    port: int,
    public_url: str | None = None,
    settings: ServeSettings | None = None,
    witnesses_file: str | None = None,
    max_request_mb: int = 16,
) -> None:
    check_port(host, port)  # one line, not uvicorn's traceback, when the port is taken
    try:
        module = importlib.import_module("carewall.api.app")
        index = importlib.import_module("carewall.api.index")
    except ModuleNotFoundError as e:
        if e.name not in ("carewall.api.app", "carewall.api.index"):
            raise
        raise CarewallError(
            "the HTTP API is not installed in this build (carewall.api.app is missing)",
            fix="use the CLI commands, or install a build with the API",
        ) from e
    # Checked before anything else happens, so a bad --public-url changes nothing.
    url = index.check_public_url(public_url or _default_public_url(host, port), "--public-url")
    witnesses = None
    if witnesses_file:
        from carewall.witness.config import load_config

        witnesses = load_config(Path(witnesses_file))
    _retry_notices(svc)
    app = module.create_app(
        svc, public_url=url, witnesses=witnesses, max_request_body=max_request_mb << 20
    )
    click.echo(f"serving on http://{host}:{port}/  (public URL {url}; Ctrl-C to stop)")
    serve_app(app, host, port, settings or ServeSettings())


@main.command()
@_db
@_key
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--public-url",
    envvar="CAREWALL_PUBLIC_URL",
    default=None,
    metavar="URL",
    help="The http(s) address auditors reach this instance at, named in the audit "
    "command on / (default http://HOST:PORT/; never taken from a request's Host header).",
)
@click.option(
    "--witnesses",
    "witnesses_file",
    envvar="CAREWALL_WITNESSES",
    default=None,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="TOML file of the witnesses asked to cosign each new checkpoint (name, verifier "
    "key, URL; see docs/witnesses.md); default $CAREWALL_WITNESSES.",
)
@click.option(
    "--max-request-mb",
    default=16,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Largest request document accepted by POST /api/requests, in MiB (16 MiB holds "
    "about 230,000 subjects); every other body is limited to 1 MiB.",
)
@log_key_options
@client_options
def serve(
    db: str | None,
    key: str | None,
    host: str,
    port: int,
    public_url: str | None,
    witnesses_file: str | None,
    max_request_mb: int,
    log_key: str | None,
    log_key_file: str | None,
    **client: Any,
) -> None:
    """Serve the HTTP API, the pages and /log/.

    Pin the log's published verifier key (--log-key-file, --log-key or $CAREWALL_LOG_VKEY):
    the server then refuses to start unless the database, the signing key file and the
    latest checkpoint are all that key's. Without a pin it warns, and trusts the database.

    At start it frees notice claims older than the worker lease (a worker died
    mid-delivery) and sends the notices that are due; a background worker then delivers
    large releases' notices as jobs (see `carewall jobs`).
    """
    settings = settings_from(client)  # checked before anything is opened
    pinned = pin.resolve_pin(log_key, log_key_file)
    if pinned is not None:
        pin.check_database(db, pinned)  # a re-keyed database is named, not the key file
    svc = _open(db, key)
    if pinned is not None:
        pin.check_ledger(svc.ledger, pinned, pin.signing_key_path(db, key))
    check_port(host, port)  # a taken port is the one line to show, before any warning
    if pinned is None:
        click.echo(pin.unpinned_warning("this server"), err=True)
    _serve(svc, host, port, public_url, settings, witnesses_file, max_request_mb)
