"""The server's budget of file handles and its bounded log, without a server."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.api.logbound import BoundedFormatter, RepeatLimitFilter
from carewall.api.server import RESERVED_FDS, plan_connections
from carewall.errors import CarewallError, InputError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, *args: object, name: str = "uvicorn.error") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_repeats_pass_up_to_the_burst_then_are_counted() -> None:
    clock = Clock()
    bound = RepeatLimitFilter(burst=3, total=100, window=60, clock=clock)
    records = [_record("slow client %d closed", i) for i in range(10)]
    passed = [r for r in records if bound.filter(r)]
    assert [r.getMessage() for r in passed] == [
        "slow client 0 closed",
        "slow client 1 closed",
        "slow client 2 closed [more like this in the next 60 s will not be logged]",
    ]
    assert bound.filter(_record("another kind"))  # each kind has its own burst
    clock.now = 61
    after = _record("slow client %d closed", 10)
    assert bound.filter(after)
    assert after.getMessage().startswith(
        "slow client 10 closed [7 more like this in the previous window were not logged"
    )


def test_all_kinds_together_are_bounded_too() -> None:
    clock = Clock()
    bound = RepeatLimitFilter(burst=5, total=4, window=60, clock=clock)
    passed = sum(bound.filter(_record(f"kind {i}")) for i in range(10))
    assert passed == 4
    clock.now = 60
    first = _record("kind 0")
    assert bound.filter(first)
    assert "6 log records in all were dropped before this" in first.getMessage()


def test_a_record_is_cut_at_the_formatter_bound() -> None:
    text = BoundedFormatter("%(message)s", max_chars=100).format(_record("x" * 10_000))
    assert len(text) < 150 and text.endswith("[cut: the record was too long]")


def test_a_low_file_limit_gets_a_small_cap() -> None:
    plan = plan_connections(256, None)
    assert plan.max_connections == 80
    assert RESERVED_FDS + plan.max_connections + plan.linger_slots + plan.backlog <= 256
    assert plan_connections(1 << 20, None).max_connections == 1000  # the default


@settings(deadline=None)
@given(st.integers(min_value=256, max_value=1 << 22))
def test_the_budget_never_exceeds_the_limit(open_files: int) -> None:
    plan = plan_connections(open_files, None)
    assert RESERVED_FDS + plan.max_connections + plan.linger_slots + plan.backlog <= open_files
    assert plan.max_connections >= 16 and plan.backlog >= 8 and plan.linger_slots >= 8


def test_more_connections_than_the_limit_allows_is_refused_by_name() -> None:
    with pytest.raises(InputError) as e:
        plan_connections(256, 200)
    assert e.value.field == "--max-connections" and "at most 80" in (e.value.fix or "")
    with pytest.raises(CarewallError, match="too low"):
        plan_connections(64, None)
