"""`code_tests`: run the completion's program against the sample's tests, in the sandbox.

Score: the share of tests passed (`scoring: fraction`) or 1/0 for all passed (`scoring: all`).
A program that does not compile scores 0 without running; tests the sandbox could not run make
the sample an error (not a 0), since the program was never judged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rewardkit.verifier import Score, Verifier
from rewardkit.verifiers._code.cases import TestCase, compare_stdout, show_value, values_equal
from rewardkit.verifiers._code.runs import (
    CodeRunArgs,
    Outcome,
    Plan,
    ProgramVerifier,
    failure_text,
)
from rewardkit.verifiers._text import one_line


class CodeTestsArgs(CodeRunArgs):
    """`code_tests` args: where the program and tests come from, limits, and how to score."""

    scoring: Literal["fraction", "all"] = Field("fraction", description="share of tests passed, or all-or-nothing")
    float_tolerance: float | None = Field(
        None, ge=0, description="numbers in outputs match within this absolute-or-relative tolerance")


class CodeTests(ProgramVerifier, Verifier):
    """Runs the completion's program (last fenced block of the language, else the whole text)
    against the sample's tests in the sandbox: stdin/stdout, assert-style or call-based; scores
    the share passed or all-or-nothing.

    The reason names the first failing test and why (expected vs got, the exception, the limit
    hit). A program that does not compile scores 0 without running; a sample whose tests cannot
    be read, or that the sandbox failed to run, is an error rather than a 0.
    """

    name = "code_tests"
    Args = CodeTestsArgs
    args: CodeTestsArgs

    def _stop(self, case: TestCase, outcome: Outcome) -> bool:
        return self._mismatch(case, outcome) is not None

    def _mismatch(self, case: TestCase, outcome: Outcome) -> str | None:
        """None when the test passed, else why it did not."""
        if outcome.fault is not None or outcome.error is not None:
            return outcome.detail
        if case.kind == "stdio":
            return compare_stdout(outcome.stdout, str(case.expected), self.args.float_tolerance)
        if case.kind == "call":
            result = outcome.result if isinstance(outcome.result, dict) else {}
            if "json" in result:
                if values_equal(result["json"], case.expected, self.args.float_tolerance):
                    return None
                return f"expected {show_value(case.expected)}, got {show_value(result['json'])}"
            return f"expected {show_value(case.expected)}, got {one_line(str(result.get('repr')), 40)}"
        return None

    def _judge(self, plan: Plan, outs: list[Outcome]) -> Score:
        total = len(plan.cases)
        passed = 0
        first: str | None = None
        for number, (case, outcome) in enumerate(zip(plan.cases, outs, strict=False), start=1):
            if outcome.error is not None:
                return Score.failed(f"test {number}: {outcome.error}")
            why = self._mismatch(case, outcome)
            if why is None:
                passed += 1
            elif first is None:
                first = failure_text(number, outcome) if outcome.fault else f"test {number}: {why}"
        reason = f"{passed}/{total} tests passed"
        if first:
            reason += f"; {first}"
        if len(outs) < total:
            reason += f"; stopped at the first failure ({total - len(outs)} not run)"
        if self.args.scoring == "all":
            return Score(1.0 if passed == total else 0.0, reason)
        return Score(passed / total, reason)
