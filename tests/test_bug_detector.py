"""bug_detector: bugs (compile errors, exceptions, crashes, limits) versus wrong answers, and the
runs it shares with code_tests (counted at the sandbox) when both judge the same programs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from rk_sandboxes import Counting

from rewardkit.registry import resolve
from rewardkit.sandbox import Sandbox
from rewardkit.spec import load_spec
from rewardkit.verifier import Score, ScoringContext
from rewardkit.verifiers._code import runs as code_runs
from rewardkit.verifiers._code.verdicts import VERDICTS
from rewardkit.verifiers.bug_detector import BugDetector
from rewardkit.verifiers.code_tests import CodeTests


def detect(sandbox: Sandbox, samples: list[dict[str, Any]], **args: Any) -> list[Score]:
    verifier = BugDetector(BugDetector.Args(**({"time_limit_s": 2.0} | args)))
    return verifier.score_batch(samples, ScoringContext(sandbox=sandbox))


STDIO = {"inputs": ["3\n", "0\n", "5\n"], "outputs": ["1\n", "0\n", "1\n"]}
HE = {"prompt": 'def first(xs):\n    """the first item, or None"""\n', "entry_point": "first",
      "test": ("def check(candidate):\n    assert candidate([1, 2]) == 1\n"
               "    assert candidate([]) is None\n    assert sorted(candidate([[3, 1]])) == [1, 3]\n")}


def test_stdio_bugs_versus_wrong_answers(any_backend: Sandbox) -> None:
    programs = {
        "right": "n = int(input())\nprint(1 if n else 0)",
        "wrong": "print(7)",                                   # wrong answers are not bugs
        "raises": "n = int(input())\nprint(10 // n)",          # ZeroDivisionError on test 2
        "syntax": "print(1",
        "exit": "import sys\nn = int(input())\nsys.exit(0 if n else 2)",
        "loop": "n = int(input())\nwhile n == 5:\n    pass\nprint(1)",
        "memory": "n = int(input())\nx = [0] * (10**9 if n == 5 else 1)\nprint(1)",
        "flood": "print('x' * (1 << 21))",
    }
    scores = detect(any_backend, [{"completion": c, "tests": STDIO} for c in programs.values()])
    # a busy loop reaches its CPU and wall limits (both 2 s) together: either may be the one reported
    got = {name: (s.value, s.reason.replace("(CPU limit", "(wall limit")) for name, s in zip(programs, scores, strict=True)}
    assert got == {
        "right": (1.0, "ran all 3 tests without an error"),
        "wrong": (1.0, "ran all 3 tests without an error"),
        "raises": (0.0, "test 2: ZeroDivisionError: integer division or modulo by zero"),
        "syntax": (0.0, "does not compile: SyntaxError: '(' was never closed (line 1)"),
        "exit": (0.0, "test 2: exit code 2"),
        "loop": (0.0, "timeout on test 3 (wall limit 2s)"),
        "memory": (0.0, "memory limit on test 3 (512 MB)"),
        "flood": (0.0, "output limit on test 1 (over 1,048,576 bytes)"),
    }


def test_assert_style_tells_the_program_raising_from_the_test_failing(any_backend: Sandbox) -> None:
    bodies = {
        "right": "    return xs[0] if xs else None\n",
        "wrong": "    return 2\n",                  # AssertionError in the test: wrong answer
        "none_used": "    return None if not xs or xs[0] != 1 else 1\n",  # sorted(None) raises in the test
        "raises": "    return xs[0]\n",             # IndexError inside the candidate
        "exits": "    raise SystemExit(0)\n",
        "hard_exit": "    import os\n    os._exit(0)\n",
        "segfault": "    import ctypes\n    return ctypes.string_at(0)\n",
        "recursion": "    return first(xs)\n",
        "not_plain": "    class Yes:\n        def __eq__(self, other):\n            return True\n    return Yes()\n",
    }
    samples = [dict(HE, completion=b) for b in bodies.values()]
    scores = detect(any_backend, samples, tests="test", prefix="prompt")
    got = {name: (s.value, s.reason) for name, s in zip(bodies, scores, strict=True)}
    assert got == {
        "right": (1.0, "ran the 1 test without an error"),
        "wrong": (1.0, "ran the 1 test without an error (1 failed an assertion)"),
        "none_used": (1.0, "ran the 1 test without an error (1 failed an assertion)"),
        "raises": (0.0, "test 1: IndexError: list index out of range"),
        "exits": (0.0, "test 1: SystemExit: 0"),
        "hard_exit": (0.0, "test 1: the program ended the interpreter (exit code 0)"),
        "segfault": (0.0, "killed on test 1 (SIGSEGV)"),
        "recursion": (0.0, "test 1: RecursionError: maximum recursion depth exceeded"),
        "not_plain": (1.0, "ran the 1 test without an error (1 failed an assertion)"),
    }


def test_call_based_and_mbpp(process: Sandbox) -> None:
    call = {"fn_name": "div", "inputs": [[4, 2], [1, 0]], "outputs": [2, 0]}
    mbpp = {"test_list": ["assert div(4, 2) == 2", "assert div(1, 0) == 0"]}
    ok, bug, missing = detect(process, [
        {"completion": "def div(a, b):\n    return a // b if b else 0", "tests": call},
        {"completion": "def div(a, b):\n    return a // b", "tests": call},
        {"completion": "def mul(a, b):\n    return a * b", "tests": call},
    ])
    assert (ok.value, bug.value, missing.value) == (1.0, 0.0, 0.0)
    assert bug.reason == "test 2: ZeroDivisionError: integer division or modulo by zero"
    assert missing.reason == "test 1: NameError: the program defines no function 'div'"
    [mb] = detect(process, [{"completion": "def div(a, b):\n    return a // b", **mbpp}], tests="test_list")
    assert mb.reason == "test 2: ZeroDivisionError: integer division or modulo by zero"


def test_syntax_errors_are_found_without_running(process: Sandbox) -> None:
    counting = Counting(process)
    samples = [{"completion": c, "tests": STDIO} for c in ("def (:", "x = '\ud800'", "", "if x\n  y")]
    scores = BugDetector().score_batch(samples, ScoringContext(sandbox=counting))
    assert [s.value for s in scores] == [0.0] * 4 and all("not run" in s.reason or "compile" in s.reason
                                                          for s in scores)
    assert counting.runs == 0


SHARED_SAMPLES = [
    {"completion": c, "tests": STDIO}
    for c in ("n = int(input())\nprint(1 if n else 0)", "print(1)", "print(10 // int(input()))",
              "print(1)", "print(1")  # a duplicate (runs once) and a syntax error (never runs)
]
UNIQUE_RUNS = 3 * 3


def test_code_tests_then_bug_detector_share_runs(process: Sandbox) -> None:
    counting = Counting(process)
    ctx = ScoringContext(sandbox=counting)
    tests = CodeTests().score_batch(SHARED_SAMPLES, ctx)
    assert counting.runs == UNIQUE_RUNS
    bugs = BugDetector().score_batch(SHARED_SAMPLES, ctx)
    assert counting.runs == UNIQUE_RUNS  # no run repeated
    assert [t.value for t in tests] == [1.0, pytest.approx(2 / 3), 0.0, pytest.approx(2 / 3), 0.0]
    assert [b.value for b in bugs] == [1.0, 1.0, 0.0, 1.0, 0.0]
    other_limits = BugDetector(BugDetector.Args(time_limit_s=7.0)).score_batch(SHARED_SAMPLES, ctx)
    assert counting.runs == 2 * UNIQUE_RUNS  # other limits: other runs
    assert [b.value for b in other_limits] == [1.0, 1.0, 0.0, 1.0, 0.0]


def test_concurrent_verifiers_share_runs(process: Sandbox) -> None:
    """The engine scores rewards of one gate level in threads: both claim, neither repeats."""
    for _ in range(3):
        VERDICTS.clear()  # sharing within one batch is the point here, not the cache across batches
        counting = Counting(process)
        ctx = ScoringContext(sandbox=counting)
        with ThreadPoolExecutor(2) as pool:
            a = pool.submit(CodeTests().score_batch, SHARED_SAMPLES, ctx)
            b = pool.submit(BugDetector().score_batch, SHARED_SAMPLES, ctx)
            assert [s.value for s in b.result()] == [1.0, 1.0, 0.0, 1.0, 0.0]
            assert a.result()[0].value == 1.0
        assert counting.runs == UNIQUE_RUNS


def test_a_spec_with_both_shares_runs(tmp_path: Path, process: Sandbox) -> None:
    spec_file = tmp_path / "code.yaml"
    spec_file.write_text(
        "version: 1\nname: code\nrewards:\n"
        "  - {name: pass_rate, verifier: code_tests, args: {tests: tests, time_limit_s: 2}}\n"
        "  - {name: no_bug, verifier: bug_detector, args: {tests: tests, time_limit_s: 2}}\n"
        "advantage: {method: gdpo}\n")
    spec = load_spec(spec_file)
    counting = Counting(process)
    try:
        table = spec.score([dict(s, prompt="p") for s in SHARED_SAMPLES], ScoringContext(sandbox=counting))
    finally:
        spec.close()
    assert table.reward_names == ["pass_rate", "no_bug"]
    assert table.values[:, 1].tolist() == [1.0, 1.0, 0.0, 1.0, 0.0]
    assert table.values[:, 0].tolist() == pytest.approx([1.0, 2 / 3, 0.0, 2 / 3, 0.0])
    assert counting.runs == UNIQUE_RUNS


def test_own_sandbox_is_opened_lazily_shared_and_closed() -> None:
    tests, bugs = CodeTests(CodeTests.Args(backend="process")), BugDetector(BugDetector.Args(backend="process"))
    ctx = ScoringContext()
    assert "_own_sandbox" not in tests.__dict__
    tests.score_batch(SHARED_SAMPLES[:1], ctx)
    bugs.score_batch(SHARED_SAMPLES[:1], ctx)
    shared = tests.__dict__["_own_sandbox"]
    assert bugs.__dict__["_own_sandbox"] is shared and shared.name == "process"
    tests.close()
    assert "process" in code_runs._SHARED  # still used by bug_detector
    bugs.close()
    assert "process" not in code_runs._SHARED


def test_registered() -> None:
    assert resolve("bug_detector") is BugDetector


CRASH_AFTER_ANSWER = {  # the right answer, then a crash hidden from the exit status (issue 13)
    "close_stderr": "import os\nn = int(input())\nprint(1 if n else 0, flush=True)\nos.close(2)\nraise ValueError",
    "atexit_exit_0": ("import atexit, os\nn = int(input())\nprint(1 if n else 0, flush=True)\n"
                      "atexit.register(lambda: os._exit(0))\nraise ValueError"),
    "excepthook_exit_0": ("import os, sys\nn = int(input())\nprint(1 if n else 0, flush=True)\n"
                          "sys.excepthook = lambda *a: os._exit(0)\nraise ValueError"),
}


def test_a_crash_after_the_right_answer_is_a_bug_and_a_failed_test_on_every_backend(any_backend: Sandbox) -> None:
    samples = [{"completion": c, "tests": STDIO} for c in CRASH_AFTER_ANSWER.values()]
    bugs = detect(any_backend, samples)
    passed = CodeTests(CodeTests.Args(time_limit_s=2.0)).score_batch(samples, ScoringContext(sandbox=any_backend))
    assert [s.value for s in bugs] == [0.0] * len(samples), [s.reason for s in bugs]
    assert [s.value for s in passed] == [0.0] * len(samples), [s.reason for s in passed]
    assert all("ValueError" in s.reason for s in bugs), [s.reason for s in bugs]
