"""``carewall audit``: follow a carewall log over HTTP as an outsider, trusting only its key.

One audit run:

1. fetches ``/log/checkpoint`` and opens it with the given verifier key; the checkpoint's
   origin MUST be the key's name (https://c2sp.org/tlog-checkpoint);
2. if a previous checkpoint is known (``--state``), checks the log only grew: a smaller size,
   or a different root at the same size, is a fork; otherwise the RFC 9162 §2.1.4.2
   consistency proof from the old tree to the new one MUST verify;
3. downloads every entry not seen before as C2SP tlog-tiles entry bundles
   (https://c2sp.org/tlog-tiles), checks each is an RFC 8785 canonical ``v: 1`` entry, and
   folds its leaf hash into a compact range kept from the last run. The range MUST rebuild
   the signed root, which proves every downloaded entry is the one the log committed to;
4. judges every ``release`` entry against the pledge and flags each broken rule.

Nothing here trusts the server: proofs and entries are checked against the signed root,
and the state is saved only after everything checked out.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from carewall.entries import KINDS
from carewall.errors import CarewallError, InputError, VerificationError
from carewall.ledger.canonical import canonical
from carewall.ledger.checkpoint import Checkpoint, open_checkpoint
from carewall.ledger.merkle import CompactRange, hash_leaf, verify_consistency
from carewall.ledger.note import Verifier
from carewall.ledger.tiles import decode_entry_bundle, entries_path, tile_path
from carewall.policy.pledge_check import pledge_violations

__all__ = [
    "AuditReport",
    "AuditState",
    "FetchError",
    "Finding",
    "audit_log",
    "load_state",
    "save_state",
]

TILE_WIDTH = 256
STATE_VERSION = 1
_HINT_LIMIT = 32 << 20  # bytes of leaf hashes kept for the hint (about a million entries)

Progress = Callable[[int, int], None]


class FetchError(CarewallError):
    """The log could not be fetched (network, HTTP status): nothing was judged."""

    status = 502
    exit_code = 2
    code = "fetch_failed"


@dataclass(frozen=True)
class Finding:
    """A release entry that breaks the pledge: its index and the rule ids it breaks."""

    index: int
    rules: tuple[str, ...]


@dataclass
class AuditState:
    """What an auditor remembers between runs: the last verified tree and its frontier."""

    origin: str
    size: int
    root: bytes
    frontier: list[bytes]
    checkpoint: str
    violations: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "frontier": [base64.b64encode(h).decode() for h in self.frontier],
            "checkpoint": self.checkpoint,
            "violations": [{"index": f.index, "rules": list(f.rules)} for f in self.violations],
        }

    @classmethod
    def from_json(cls, obj: Any) -> AuditState:
        try:
            if obj["version"] != STATE_VERSION:
                raise ValueError("unknown state version")
            return cls(
                origin=str(obj["origin"]),
                size=int(obj["size"]),
                root=base64.b64decode(obj["root"], validate=True),
                frontier=[base64.b64decode(h, validate=True) for h in obj["frontier"]],
                checkpoint=str(obj["checkpoint"]),
                violations=[
                    Finding(int(v["index"]), tuple(str(r) for r in v["rules"]))
                    for v in obj["violations"]
                ],
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise InputError(
                "the audit state file is malformed",
                field="--state",
                fix="point --state at a file written by `carewall audit`, or a new path",
            ) from e


@dataclass
class AuditReport:
    """The outcome of one run. ``ok`` is false when any release broke the pledge."""

    origin: str
    size: int
    root: bytes
    previous_size: int
    checked: int = 0
    releases: int = 0
    violations: list[Finding] = field(default_factory=list)
    earlier_violations: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations and not self.earlier_violations


def load_state(path: Path) -> AuditState | None:
    """The state saved at ``path``, or None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError("cannot read the audit state file", field="--state") from e
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise InputError("the audit state file is not JSON", field="--state") from e
    return AuditState.from_json(obj)


def save_state(path: Path, state: AuditState) -> None:
    """Write ``state`` so that a crash leaves either the old file or the new one."""
    data = json.dumps(state.to_json(), indent=2, sort_keys=True).encode() + b"\n"
    directory = path.resolve().parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".audit-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise InputError("cannot write the audit state file", field="--state") from e


def log_base(url: str) -> str:
    """Accept the server's base URL or its ``/log`` URL."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InputError("the log URL must start with http:// or https://", field="URL")
    return base if base.endswith("/log") else base + "/log"


def _get(client: httpx.Client, path: str, *, allow_404: bool = False) -> httpx.Response | None:
    try:
        r = client.get(path)
    except httpx.HTTPError as e:
        raise FetchError(
            f"could not fetch /log/{path} ({type(e).__name__})",
            fix="check the URL and that the server is reachable",
        ) from e
    if allow_404 and r.status_code == 404:
        return None
    if r.status_code != 200:
        raise FetchError(f"/log/{path} answered HTTP {r.status_code}", fix="try again later")
    return r


def _b64_list(values: Any, what: str) -> list[bytes]:
    try:
        return [base64.b64decode(v, validate=True) for v in values]
    except (TypeError, ValueError, binascii.Error) as e:
        raise VerificationError(f"the log served a malformed {what}") from e


def check_entry(index: int, data: bytes) -> dict[str, Any]:
    """The entry as an object, or VerificationError if it is not a canonical v1 entry."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise VerificationError(f"entry {index} is not JSON") from e
    try:
        canon = canonical(obj)
    except CarewallError as e:
        raise VerificationError(f"entry {index} cannot be put in canonical form") from e
    if canon != data:
        raise VerificationError(f"entry {index} is not in RFC 8785 canonical form")
    if not isinstance(obj, dict) or obj.get("v") != 1 or obj.get("kind") not in KINDS:
        raise VerificationError(f"entry {index} is not a v1 carewall entry of a known kind")
    return obj


def judge_release(index: int, entry: Mapping[str, Any]) -> Finding | None:
    """The pledge rules a release entry breaks, if any."""
    try:
        rules = pledge_violations(entry)
    except CarewallError as e:
        raise VerificationError(f"release entry {index} cannot be judged: {e.message}") from e
    except (KeyError, TypeError, ValueError) as e:
        raise VerificationError(f"release entry {index} lacks the facts the pledge needs") from e
    return Finding(index, tuple(rules)) if rules else None


def _open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    cp = open_checkpoint(note, [verifier])
    if cp.origin != verifier.name:
        raise VerificationError(
            "the checkpoint's origin is not the key's name",
            fix="check that --key is this log's verifier key",
        )
    return cp


def _check_growth(client: httpx.Client, state: AuditState, cp: Checkpoint) -> None:
    if cp.origin != state.origin:
        raise InputError(
            "the state file is for a different log",
            field="--state",
            fix="use a separate --state file per log",
        )
    if cp.size < state.size:
        raise VerificationError(
            f"fork: the log shrank from {state.size} to {cp.size} entries",
            fix="keep both checkpoints (the state file holds the old one) as evidence",
        )
    if cp.size == state.size:
        if cp.root != state.root:
            raise VerificationError(
                f"fork: two different roots signed for size {cp.size}",
                fix="keep both checkpoints (the state file holds the old one) as evidence",
            )
        return
    if state.size == 0:
        return
    r = _get(client, f"proof/consistency?from={state.size}&size={cp.size}")
    assert r is not None
    try:
        proof = _b64_list(r.json()["proof"], "consistency proof")
    except (ValueError, KeyError, TypeError) as e:
        raise VerificationError("the log served a malformed consistency proof") from e
    try:
        verify_consistency(state.size, cp.size, state.root, cp.root, proof)
    except VerificationError as e:
        raise VerificationError(
            f"fork: size {cp.size} is not consistent with the {state.size} seen before",
            fix="keep both checkpoints (the state file holds the old one) as evidence",
        ) from e


def _fetch_bundle(client: httpx.Client, n: int, width: int) -> list[bytes]:
    """Entry bundle ``n`` cut to ``width`` entries; a full bundle stands in for a partial."""
    full = width == TILE_WIDTH
    r = _get(client, entries_path(n, None if full else width).removeprefix("/"), allow_404=True)
    if r is None and not full:
        r = _get(client, entries_path(n, None).removeprefix("/"), allow_404=True)
    if r is None:
        raise FetchError(f"entry bundle {n} is missing from the log", fix="try again later")
    try:
        bundle = decode_entry_bundle(r.content)
    except (CarewallError, ValueError) as e:
        raise VerificationError(f"entry bundle {n} is malformed") from e
    if len(bundle) < width:
        raise VerificationError(f"entry bundle {n} holds fewer entries than the log's size")
    return bundle[:width]


def _first_bad_leaf(client: httpx.Client, start: int, leaves: bytes) -> int | None:
    """Best-effort hint: the first new entry whose hash differs from the log's own tiles."""
    count = len(leaves) // 32
    if count == 0:
        return None
    for k in range(start // TILE_WIDTH, (start + count - 1) // TILE_WIDTH + 1):
        lo = max(start, k * TILE_WIDTH)
        hi = min(start + count, (k + 1) * TILE_WIDTH)
        width = hi - k * TILE_WIDTH
        path = tile_path(0, k, None if width == TILE_WIDTH else width).removeprefix("/")
        try:
            r = _get(client, path, allow_404=True)
        except FetchError:
            return None
        if r is None:
            return None
        for i in range(lo, hi):
            off = (i - k * TILE_WIDTH) * 32
            if r.content[off : off + 32] != leaves[(i - start) * 32 : (i - start + 1) * 32]:
                return i
    return None


def audit_log(
    url: str,
    vkey: str,
    state: AuditState | None = None,
    *,
    client: httpx.Client | None = None,
    progress: Progress | None = None,
) -> tuple[AuditReport, AuditState]:
    """Audit the log at ``url`` with verifier key ``vkey``, continuing from ``state``.

    Raises VerificationError on any failure that shows the log misbehaving (bad signature,
    fork, an entry not committed to, a non-canonical entry), FetchError when the log cannot
    be fetched, InputError for a bad key or state. Pledge violations do not raise: they are
    in the report (``ok`` is false) and carried in the new state so they are never forgotten.
    """
    try:
        verifier = Verifier.from_vkey(vkey.strip())
    except (CarewallError, ValueError) as e:
        raise InputError(
            "the verifier key is malformed",
            field="--key",
            fix="pass the log's key as name+hex8+base64 (from /log/key, out of band)",
        ) from e
    own = client is None
    http = client or httpx.Client(base_url=log_base(url) + "/", timeout=30.0)
    try:
        return _audit(http, verifier, state, progress)
    finally:
        if own:
            http.close()


def _audit(
    client: httpx.Client,
    verifier: Verifier,
    state: AuditState | None,
    progress: Progress | None,
) -> tuple[AuditReport, AuditState]:
    r = _get(client, "checkpoint")
    assert r is not None
    note = r.text
    cp = _open_checkpoint(note, verifier)

    start = 0
    crange = CompactRange()
    if state is not None:
        start = state.size
        try:
            crange = CompactRange(state.size, state.frontier)
        except CarewallError as e:
            raise InputError("the audit state file is malformed", field="--state") from e
        if crange.root() != state.root:
            raise InputError(
                "the audit state file does not match its own root",
                field="--state",
                fix="the file was altered; start again with a new --state path",
            )
        _check_growth(client, state, cp)

    report = AuditReport(cp.origin, cp.size, cp.root, previous_size=start)
    earlier = list(state.violations) if state else []
    report.earlier_violations = earlier
    leaves = bytearray()  # kept only to name the first bad entry if the root fails
    total = cp.size - start
    if progress:
        progress(0, total)
    for k in range(start // TILE_WIDTH, -(-cp.size // TILE_WIDTH)):
        width = min(TILE_WIDTH, cp.size - k * TILE_WIDTH)
        bundle = _fetch_bundle(client, k, width)
        first = max(start, k * TILE_WIDTH)
        new_leaves: list[bytes] = []
        for i in range(first, k * TILE_WIDTH + width):
            data = bundle[i - k * TILE_WIDTH]
            entry = check_entry(i, data)
            new_leaves.append(hash_leaf(data))
            report.checked += 1
            if entry["kind"] == "release":
                report.releases += 1
                finding = judge_release(i, entry)
                if finding:
                    report.violations.append(finding)
        crange.extend(new_leaves, collect=False)
        if len(leaves) < _HINT_LIMIT:
            leaves += b"".join(new_leaves)
        if progress:
            progress(report.checked, total)

    if crange.root() != cp.root:
        bad = _first_bad_leaf(client, start, bytes(leaves))
        where = f" (first differing entry: {bad})" if bad is not None else ""
        raise VerificationError(
            "the entries served do not rebuild the signed root: an entry was altered "
            f"or left out{where}",
            fix="keep the checkpoint and the served entries as evidence",
        )

    new_state = AuditState(
        origin=cp.origin,
        size=cp.size,
        root=cp.root,
        frontier=list(crange.frontier()),
        checkpoint=note,
        violations=earlier + report.violations,
    )
    return report, new_state
