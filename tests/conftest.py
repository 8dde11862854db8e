"""Sandbox fixtures shared by the code-verifier tests: every backend (absent ones skip with the
reason), or the always-present `process` backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rewardkit.sandbox import Sandbox
from rewardkit.sandbox.select import select_backend, unavailable_reason

CODE_BACKENDS = ["process", "bwrap", "docker"]


@pytest.fixture(scope="module", params=CODE_BACKENDS)
def any_backend(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    reason = unavailable_reason(request.param)
    if reason:
        pytest.skip(f"{request.param} backend unavailable: {reason}")
    sb = select_backend(request.param)
    yield sb
    sb.close()


@pytest.fixture(scope="module")
def process() -> Iterator[Sandbox]:
    sb = select_backend("process")
    yield sb
    sb.close()


@pytest.fixture(autouse=True)
def _fresh_verdict_cache() -> Iterator[None]:
    """Each test starts with an empty code-verdict cache, so run counts do not depend on order."""
    from rewardkit.verifiers._code.verdicts import VERDICTS

    VERDICTS.clear()
    yield
