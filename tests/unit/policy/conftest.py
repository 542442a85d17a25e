from __future__ import annotations

import pytest

from carewall.policy import DEFAULT_REGISTER_PATH, Engine, Register, load_register


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.load()


@pytest.fixture(scope="session")
def register() -> Register:
    return load_register(DEFAULT_REGISTER_PATH)
