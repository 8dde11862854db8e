"""`bug_detector`: the GDPO paper's "bug ratio" reward for code, as a per-sample 1/0.

1 when the program compiles and runs every test input without an uncaught exception, a crash,
a timeout, or a kill at a memory/output limit, whatever its answers are; 0 otherwise, with the
first bug in test order as the reason. A syntax error is found by compiling, without running.
Wrong answers are not bugs: for assert-style tests the harness tells a failing assertion of the
test apart from an exception raised inside the program. With the same args as `code_tests` on
the same samples, the runs are shared through `ctx.cache` rather than repeated.
"""

from __future__ import annotations

from rewardkit.verifier import Score, Verifier
from rewardkit.verifiers._code.cases import TestCase
from rewardkit.verifiers._code.runs import (
    CodeRunArgs,
    Outcome,
    Plan,
    ProgramVerifier,
    failure_text,
)


class BugDetectorArgs(CodeRunArgs):
    """`bug_detector` args: the same as `code_tests` (same values share the runs), no scoring."""


class BugDetector(ProgramVerifier, Verifier):
    """1 when the program compiles and runs every test input without an uncaught exception,
    crash, timeout or memory/output kill, whatever its answers; 0 otherwise, with the first bug.

    The GDPO paper's "bug ratio" reward for code. A failing assertion of the test is a wrong
    answer, not a bug. Syntax errors are found by compiling, without running; with the same args
    as a `code_tests` reward of the spec, the runs are shared rather than repeated.
    """

    name = "bug_detector"
    Args = BugDetectorArgs
    args: BugDetectorArgs

    def _stop(self, case: TestCase, outcome: Outcome) -> bool:
        return outcome.fault == "program"

    def _judge(self, plan: Plan, outs: list[Outcome]) -> Score:
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
        return Score(1.0, f"ran {'the 1 test' if total == 1 else f'all {total} tests'} without an error{note}")
