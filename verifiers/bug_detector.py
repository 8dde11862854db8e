"""`bug_detector`: the GDPO paper's "bug ratio" reward for code, as a per-sample 1/0.

1 when the program compiles and runs every test input without an uncaught exception, a crash,
a timeout, or a kill at a memory/output limit, whatever its answers are; 0 otherwise, with the
first bug in test order as the reason. A syntax error is found by compiling, without running.
Wrong answers are not bugs: for assert-style tests the harness tells a failing assertion of the
test apart from an exception raised inside the program. With the same args as `code_tests` on
the same samples, the runs are shared through `ctx.cache` rather than repeated.
"""

from __future__ import annotations

from collections.abc import Sequence

from rewardkit.verifiers.code_cases import TestCase
from rewardkit.verifiers.code_runs import (
    CodeRunArgs,
    Outcome,
    Plan,
    RunCache,
    SandboxUser,
    build_plan,
    failure_text,
    run_plans,
)
from rewardkit.verifiers.textutil import one_line

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier


class BugDetectorArgs(CodeRunArgs):
    """`bug_detector` args: the same as `code_tests` (same values share the runs), no scoring."""


class BugDetector(SandboxUser, Verifier):
    """1 when the program compiles and runs every test input without an uncaught exception,
    crash, timeout or memory/output kill, whatever its answers; 0 otherwise, with the first bug.

    The GDPO paper's "bug ratio" reward for code. A failing assertion of the test is a wrong
    answer, not a bug. Syntax errors are found by compiling, without running; with the same args
    as a `code_tests` reward of the spec, the runs are shared rather than repeated.
    """

    name = "bug_detector"
    Args = BugDetectorArgs
    args: BugDetectorArgs

    def required_fields(self) -> list[str]:
        fields = [self.args.tests] if isinstance(self.args.tests, str) else list(self.args.tests)
        return fields + [f for f in (self.args.prefix, self.args.test_setup) if f]

    def score_batch(self, samples: Sequence[Sample], ctx: ScoringContext) -> list[Score]:
        plans = [build_plan(s, self.args, self.name) for s in samples]
        outcomes: list[list[Outcome]] = [[] for _ in plans]
        if any(p.compile_error is None and p.data_error is None for p in plans):
            try:
                runner = RunCache(ctx, self._sandbox(ctx))
                stop = _is_bug if self.args.stop_at_first_failure else None
                outcomes = run_plans(plans, runner, self.args, stop)
            except Exception as exc:  # noqa: BLE001 - no sandbox: every sample is unjudged, none raises
                error = f"sandbox unavailable: {one_line(f'{type(exc).__name__}: {exc}')}"
                return [_static(p) or Score.failed(error) for p in plans]
        scores = []
        for plan, outs in zip(plans, outcomes, strict=True):
            try:
                scores.append(_static(plan) or _judge(plan, outs))
            except Exception as exc:  # noqa: BLE001 - one odd sample never sinks the batch
                scores.append(Score.failed(f"{type(exc).__name__}: {one_line(str(exc))}"))
        return scores


def _is_bug(case: TestCase, outcome: Outcome) -> bool:
    return outcome.fault == "program"


def _static(plan: Plan) -> Score | None:
    if plan.data_error is not None:
        return Score.failed(plan.data_error)
    if plan.compile_error is not None:
        return Score(0.0, plan.compile_error)
    return None


def _judge(plan: Plan, outs: list[Outcome]) -> Score:
    wrong = 0
    for number, outcome in enumerate(outs, start=1):
        if outcome.error is not None:
            return Score.failed(f"test {number}: {outcome.error}")
        if outcome.fault == "program":
            return Score(0.0, failure_text(number, outcome))
        if outcome.fault == "test":
            wrong += 1
    total = len(plan.cases)
    note = f" ({wrong} failed an assertion)" if wrong else ""
    return Score(1.0, f"ran all {total} test{'s' if total != 1 else ''} without an error{note}")
