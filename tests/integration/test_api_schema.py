"""Schemathesis against the served OpenAPI document: no 500s, responses match the schema.

Each operation is exercised with generated (valid and invalid) inputs under several roles'
tokens, so both the authorised and the refused paths are checked for shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from api_support import Tokens, api, reviewable
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from carewall.api.app import create_app
from carewall.service import Service


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, Tokens]]:
    tmp: Path = tmp_path_factory.mktemp("schema")
    with api(f"sqlite:///{tmp / 'cw.db'}", tmp) as (_, service, tok):
        service.submit(reviewable())
        yield create_app(service), tok


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
]


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms(instance: tuple[FastAPI, Tokens], mode: GenerationMode) -> None:
    # Schemathesis's own pytest plugin does not run under pytest 9, so drive hypothesis here.
    app, tok = instance
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @settings(
            max_examples=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            for role in ("admin", "requester", "release", "none"):
                headers = dict(case.headers or {})
                if role != "none":
                    headers.update(tok.auth(role))
                case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # An operation without parameters has no invalid input to generate.
            assert mode is GenerationMode.NEGATIVE


def test_service_type(instance: tuple[FastAPI, Tokens]) -> None:
    app, _ = instance
    assert isinstance(app.state.service, Service)
