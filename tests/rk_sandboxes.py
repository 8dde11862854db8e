"""A sandbox wrapper the code-verifier tests share: a real backend that counts what it ran."""

from __future__ import annotations

import threading
from typing import Any

from rewardkit.sandbox import Program, RunResult, Sandbox


class Counting(Sandbox):
    """A real backend, with a count of the programs it was asked to run, their wall limits and
    their measured wall times (thread-safe)."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner, self.name, self.runs = inner, inner.name, 0
        self.limits: list[tuple[str, float]] = []  # (program, wall limit) per run
        self.walls: list[tuple[str, float]] = []  # (program, measured wall time) per run
        self.lock = threading.Lock()

    def run(self, program: Program) -> RunResult:
        return self.run_batch([program])[0]

    def run_batch(self, programs: Any, workers: int | None = None) -> list[RunResult]:
        with self.lock:
            self.runs += len(programs)
            self.limits += [(p.files.get("solution.py", ""), p.limits.wall_s) for p in programs]
        results = self.inner.run_batch(programs, workers)
        with self.lock:
            self.walls += [(p.files.get("solution.py", ""), r.wall_s)
                           for p, r in zip(programs, results, strict=True)]
        return results

    def isolation(self) -> str:
        return self.inner.isolation()

    def close(self) -> None:
        self.inner.close()
