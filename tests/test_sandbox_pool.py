"""A warm pool that cannot replace a broken sandbox says so (it used to shrink silently until
"no warm sandbox became free"). Real bwrap pool; the replacement's start is made to fail."""

from __future__ import annotations

import logging

import pytest

from rewardkit.sandbox import Program
from rewardkit.sandbox.select import select_backend, unavailable_reason


def test_failed_replacement_is_logged(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    reason = unavailable_reason("bwrap")
    if reason:
        pytest.skip(f"bwrap backend unavailable: {reason}")
    sb = select_backend("bwrap", pool_size=2)
    try:
        assert sb.run(Program(("python3", "-c", "print(1)"))).stdout.strip() == "1"

        def no_more_sandboxes() -> None:
            raise OSError("no more sandboxes")

        monkeypatch.setattr(sb, "_start_worker", no_more_sandboxes)
        caplog.set_level(logging.WARNING, logger="rewardkit.sandbox")
        sb._replace(sb._pool.get(timeout=30))  # what `run` does with a worker whose runner died
        messages = [r.getMessage() for r in caplog.records if r.name == "rewardkit.sandbox"]
        assert any("could not be replaced (OSError: no more sandboxes); 1 of 2 left" in m for m in messages)
        assert sb.run(Program(("python3", "-c", "print(2)"))).stdout.strip() == "2"  # the other one serves
    finally:
        sb.close()
