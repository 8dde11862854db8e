"""code_tests: extraction, compile check, test formats, comparison, scoring, limits, hostile input.

The first part needs no sandbox (pure functions). The rest runs real programs: the core cases
under every present backend, the finer points under the process backend (always present).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rk_sandboxes import Counting

from rewardkit.registry import resolve
from rewardkit.sandbox import Program, RunResult, Sandbox
from rewardkit.verifier import Score, ScoringContext
from rewardkit.verifiers._code.cases import (
    TestDataError,
    compare_stdout,
    parse_tests,
    values_equal,
)
from rewardkit.verifiers._code.extract import compile_problem, extract_program, fenced_blocks
from rewardkit.verifiers.bug_detector import BugDetector
from rewardkit.verifiers.code_tests import CodeTests

# --- extraction ------------------------------------------------------------------------------


def test_last_python_block_wins() -> None:
    text = "Draft:\n```python\nprint(1)\n```\nFinal:\n```py\nprint(2)\n```\nBye"
    assert extract_program(text) == "print(2)\n"


def test_python_block_preferred_over_other_languages_and_untagged() -> None:
    text = "```python\nx = 1\n```\n```\nplain\n```\n```bash\nls\n```"
    assert extract_program(text) == "x = 1\n"


def test_untagged_block_then_whole_text() -> None:
    assert extract_program("Here:\n```\nprint(3)\n```\n") == "print(3)\n"
    assert extract_program("print(4)") == "print(4)"
    assert extract_program("```bash\nls\n```") == "```bash\nls\n```"  # no Python: the whole text


def test_unclosed_block_is_a_cut_generation() -> None:
    assert extract_program("```python\nprint(5)\nprint(6") == "print(5)\nprint(6\n"
    assert extract_program("```python\na = 1\n```\n```python\nb = ") == "a = 1\n"  # closed one first


def test_fence_details() -> None:
    blocks = fenced_blocks("~~~~python\nx\n```\ny\n~~~~\n inline ```x``` here\n````\n```\n````")
    assert [(b.lang, b.text) for b in blocks] == [("python", "x\n```\ny\n"), ("", "```\n")]


def test_extraction_of_a_megabyte_is_fast() -> None:
    text = ("word " * 200_000) + "\n```python\nprint(1)\n```\n" + "```\n" * 1000
    t0 = time.perf_counter()
    extract_program(text)
    assert time.perf_counter() - t0 < 1.0


# --- compile check (in-process, executes nothing) ---------------------------------------------

@pytest.mark.parametrize("source, expected", [
    ("def f(:\n", "does not compile: SyntaxError: invalid syntax (line 1)"),
    ("if True:\nprint(1)\n", "does not compile: IndentationError: expected an indented block"),
    ("x = 1\0", "does not compile:"),
    ("x = '\ud800'", "program is not valid UTF-8 text (lone surrogate at character 5; not run)"),
    ("x = " + "(" * 100_000 + ")" * 100_000, "does not compile: SyntaxError: too many nested parentheses"),
    ("x = " + "-" * 50_000 + "1", "does not compile: MemoryError"),
    ("x = " + "+".join(["1"] * 30_000), "does not compile: RecursionError"),
    ("x = " + "9" * 5000, "does not compile: SyntaxError: Exceeds the limit"),
    ("return 1\n", "does not compile: SyntaxError: 'return' outside function"),
])
def test_compile_problems(source: str, expected: str) -> None:
    problem = compile_problem(source, 1_000_000)
    assert problem is not None and problem.startswith(expected), problem


def test_compile_ok_and_size_cap() -> None:
    assert compile_problem("import os\nos.system('false')\n", 1000) is None  # compiled, not run
    assert compile_problem("x = 1\n" * 100, 50) == "program is 600 characters, over the 50 cap (not run)"


# --- test formats ----------------------------------------------------------------------------

def test_stdio_formats() -> None:
    want = [("1 2\n", "3\n"), ("5 5\n", "10\n")]
    for raw in ({"inputs": ["1 2\n", "5 5\n"], "outputs": ["3\n", "10\n"]},
                {"input": ["1 2\n", "5 5\n"], "output": ["3\n", "10\n"]},
                [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n", "output": "10\n"}],
                json.dumps({"inputs": ["1 2\n", "5 5\n"], "outputs": ["3\n", "10\n"]})):
        cases = parse_tests(raw)
        assert [(c.kind, c.stdin, c.expected) for c in cases] == [("stdio", i, o) for i, o in want]
    lines = parse_tests({"inputs": [["1", "2"]], "outputs": [["3", "4"]]})
    assert (lines[0].stdin, lines[0].expected) == ("1\n2", "3\n4")


def test_call_assert_and_mbpp_formats() -> None:
    call = parse_tests({"fn_name": "add", "inputs": [[1, 2], 7], "outputs": [[3], 8]})
    assert [(c.kind, c.entry_point, c.args, c.expected) for c in call] == [
        ("call", "add", [1, 2], [3]), ("call", "add", [7], 8)]
    forced = parse_tests({"inputs": [[1]], "outputs": [1]}, "call", entry_point="f")
    assert forced[0].kind == "call" and forced[0].entry_point == "f"
    he = parse_tests("def check(candidate):\n    assert candidate(1) == 2\n", entry_point="inc")
    assert [(c.kind, c.entry_point) for c in he] == [("assert", "inc")]
    mbpp = parse_tests(["assert f(1) == 2", "assert f(2) == 3"], setup="import math")
    assert [(c.setup, c.code) for c in mbpp] == [("import math", "assert f(1) == 2"),
                                                  ("import math", "assert f(2) == 3")]
    assert all(c.entry_point == "" for c in mbpp)


@pytest.mark.parametrize("raw, fmt, message", [
    ({"inputs": ["1"], "outputs": []}, "auto", "1 test inputs but 0 outputs"),
    ({"cases": []}, "auto", "tests need inputs and outputs"),
    ("def check(candidate): pass", "auto", "no entry point"),
    ("{not json", "stdio", "not valid JSON"),
    ("assert f(1) == 1", "stdio", "stdio tests must be inputs/outputs"),
    ({"inputs": [[1]], "outputs": [1]}, "call", "need a function name"),
    (42, "auto", "cannot read tests of type int"),
    ("   ", "auto", "the test source is empty"),
])
def test_malformed_tests(raw: Any, fmt: str, message: str) -> None:
    with pytest.raises(TestDataError, match=message):
        parse_tests(raw, fmt)


# --- comparison ------------------------------------------------------------------------------

def test_stdout_comparison() -> None:
    assert compare_stdout("1 2\n3\n\n", "1  2\n3") is None
    assert compare_stdout("5\n", "4\n") == "expected '4', got '5'"
    assert compare_stdout("1\n2\n9\n", "1\n2\n3\n") == "line 3: expected '3', got '9'"
    assert compare_stdout("1\n", "1\n2\n") == "expected 2 lines, got 1"
    assert compare_stdout("0.3333333\n", "0.33333333333\n") is not None
    assert compare_stdout("0.3333333\n", "0.33333333333\n", 1e-6) is None
    assert compare_stdout("1000000.5\n", "1000000.0\n", 1e-6) is None  # relative for big values
    assert compare_stdout("1000002.5\n", "1000000.0\n", 1e-6) is not None
    assert compare_stdout("nan\n", "nan\n", 1e-6) is None  # same token
    assert compare_stdout("abc\n", "abd\n", 1e-6) is not None


def test_value_comparison() -> None:
    assert values_equal(3, [3])  # APPS wraps expected values in a list
    assert values_equal([1, 2], [1, 2]) and not values_equal([1, 2], [[1, 2, 3]])
    assert not values_equal(True, 1) and not values_equal(1, True)
    assert values_equal(0.1 + 0.2, 0.3, 1e-9) and not values_equal(0.1 + 0.2, 0.3)
    assert values_equal({"a": [1.0]}, {"a": [1]})
    assert not values_equal("1", 1)
    assert not values_equal(10**400, 1e308, 1e-6)


# --- values between the judge and the program process ----------------------------------------

def test_harness_values_cross_the_pipe_intact() -> None:
    from rewardkit.verifiers._code import harness

    values: list[Any] = [None, True, 0, -(10**30), 1.5, float("inf"), "é\n", b"\x00\xff", 1 + 2j, [1, (2, 3)],
                         (), {(1, "a"): {"x": [frozenset({1, 2})]}}, {3, 1, 2}, [[[]]]]
    for value in values:
        back = harness.decode(json.loads(json.dumps(harness.encode(value))))
        assert back == value and type(back) is type(value), value
    nan = harness.decode(json.loads(json.dumps(harness.encode(float("nan")))))
    assert nan != nan

    class Sneaky(int):
        def __eq__(self, other: object) -> bool:
            return True

    for bad in (Sneaky(1), [object()], {"k": Sneaky(2)}, _nested(300)):
        with pytest.raises(harness.Unencodable):
            harness.encode(bad)
    for wire in ({"$": "os.system", "v": []}, {"$": "list"}, [1], {"$": "dict", "v": [[1]]}):
        with pytest.raises(ValueError):
            harness.decode(wire)


def _nested(depth: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(depth):
        out = [out]
    return out


def test_harness_that_cannot_fork_reports_its_own_failure(tmp_path: Path) -> None:
    """Out of processes (the sandbox's limit, not the program's doing): the sample is unjudged,
    not a bug. Runs the harness itself with a fork that fails; the program is never loaded."""
    from rewardkit.verifiers._code import runs as code_runs

    case = parse_tests(["assert f() == 1"])[0]
    program, nonce = code_runs.to_program("def f():\n    return 1\n", case, code_runs.Limits())
    for name, text in program.files.items():
        (tmp_path / name).write_text(text)
    failing_fork = ("import os\ndef fork():\n    raise BlockingIOError(11, 'Resource temporarily unavailable')\n"
                    "os.fork = fork\n__file__ = 'harness.py'\nexec(open('harness.py').read())\n")
    proc = subprocess.run([sys.executable, "-c", failing_fork], input=program.stdin, capture_output=True,
                          text=True, cwd=tmp_path, timeout=30)
    result = RunResult("ok" if proc.returncode == 0 else "runtime_error", proc.returncode, proc.stdout,
                       proc.stderr, 0.1)
    outcome = code_runs.judge(result, nonce, program.limits)
    assert outcome.fault is None and outcome.error == (
        "the test harness failed: cannot start the program process: BlockingIOError: "
        "[Errno 11] Resource temporarily unavailable"), outcome


# --- running ---------------------------------------------------------------------------------

def score(sandbox: Sandbox, samples: list[dict[str, Any]], **args: Any) -> list[Score]:
    verifier = CodeTests(CodeTests.Args(**({"time_limit_s": 3.0} | args)))
    return verifier.score_batch(samples, ScoringContext(sandbox=sandbox))


ADD = {"inputs": ["1 2\n", "2 2\n", "10 -3\n"], "outputs": ["3\n", "4\n", "7\n"]}
HE = {"prompt": 'def inc(x):\n    """x + 1"""\n', "entry_point": "inc",
      "test": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n"}


def test_core_formats_under_every_backend(any_backend: Sandbox) -> None:
    samples = [
        {"completion": "Sure:\n```python\na, b = map(int, input().split())\nprint(a + b)\n```", "tests": ADD},
        {"completion": "a, b = map(int, input().split())\nprint(a * b)", "tests": ADD},
        {"completion": "print(1 / 0)", "tests": ADD},
        {"completion": "while True:\n    pass", "tests": {"inputs": [""], "outputs": [""]}},
        {"completion": "def add(a, b):\n    return a + b\n",
         "tests": {"fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [3, [7]]}},
        {"completion": "class Solution:\n    def add(self, a, b):\n        return a - b\n",
         "tests": {"fn_name": "add", "inputs": [[1, 0], [3, 4]], "outputs": [1, 7]}},
    ]
    # the busy loop reaches its CPU and wall limits (both 1 s) together: either may be reported
    got = [(s.value, s.reason.replace("(CPU limit", "(wall limit"))
           for s in score(any_backend, samples, time_limit_s=1.0)]
    assert got == [
        (1.0, "3/3 tests passed"),
        (pytest.approx(1 / 3), "1/3 tests passed; test 1: expected '3', got '2'"),
        (0.0, "0/3 tests passed; test 1: ZeroDivisionError: division by zero"),
        (0.0, "0/1 tests passed; timeout on test 1 (wall limit 1s)"),
        (1.0, "2/2 tests passed"),
        (0.5, "1/2 tests passed; test 2: expected 7, got -1"),
    ]
    he = score(any_backend, [dict(HE, completion=c) for c in ("    return x + 1\n", "    return x\n")],
               tests="test", prefix="prompt")
    assert [(s.value, s.reason) for s in he] == [
        (1.0, "1/1 tests passed"),
        (0.0, "0/1 tests passed; test 1: AssertionError in `assert candidate(1) == 2`"),
    ]


def test_mbpp_asserts_with_setup(process: Sandbox) -> None:
    row = {"test_list": ["assert sq(2) == 4", "assert sq(3) == 9", "assert sq(-1) == 2"],
           "test_setup_code": "import math"}
    [s] = score(process, [dict(row, completion="def sq(x):\n    return int(math.pow(x, 2))\n")],
                tests="test_list", test_setup="test_setup_code")
    assert (s.value, s.reason) == (pytest.approx(2 / 3), "2/3 tests passed; test 3: AssertionError in "
                                   "`assert sq(-1) == 2`")


def test_program_constants_the_test_names_cross_over(process: Sandbox) -> None:
    """The test runs apart from the program: constants it names are copied over (as plain
    values), others are not, so a big precomputed table costs nothing."""
    program = ("LIMIT = (10, 20)\nTABLE = list(range(3 * 10**6))\n"
               "def f(x):\n    return TABLE[x] * 2\n")
    row = {"test_list": ["assert f(LIMIT[0]) == LIMIT[1]", "assert 'TABLE' not in globals()"]}
    [s] = score(process, [dict(row, completion=program)], tests="test_list", time_limit_s=5.0)
    assert (s.value, s.reason) == (1.0, "2/2 tests passed")


def test_float_tolerance_and_all_or_nothing(process: Sandbox) -> None:
    tests = {"inputs": ["1\n", "3\n"], "outputs": ["1.0\n", "0.333333333\n"]}
    sample = {"completion": "print(1 / int(input()))", "tests": tests}
    assert score(process, [sample])[0].value == 0.5
    assert score(process, [sample], float_tolerance=1e-6)[0].value == 1.0
    assert score(process, [sample], scoring="all")[0].value == 0.0
    call = {"fn_name": "third", "inputs": [[1]], "outputs": [0.333333]}
    assert score(process, [{"completion": "def third(x): return x / 3", "tests": call}],
                 float_tolerance=1e-5)[0].value == 1.0


def test_several_test_fields_and_max_tests(process: Sandbox) -> None:
    row = {"public": {"input": ["1\n"], "output": ["1\n"]}, "private": {"input": ["2\n", "3\n"], "output": ["2\n", "4\n"]},
           "completion": "print(input())"}
    assert score(process, [row], tests=["public", "private"])[0].reason == "2/3 tests passed; test 3: expected '4', got '3'"
    assert score(process, [row], tests=["public", "private"], max_tests=2)[0].reason == "2/2 tests passed"


def test_stop_at_first_failure_runs_fewer_tests(process: Sandbox) -> None:
    tests = {"inputs": [str(i) for i in range(8)], "outputs": ["0"] + [str(i) for i in range(1, 8)]}
    samples = [{"completion": "print(int(input()) and 99)", "tests": tests},  # fails test 2
               {"completion": "print(input())", "tests": tests}]              # passes all
    counting = Counting(process)
    ctx = ScoringContext(sandbox=counting)
    first, good = CodeTests(CodeTests.Args(stop_at_first_failure=True)).score_batch(samples, ctx)
    assert (first.value, first.reason) == (
        0.125, "1/8 tests passed; test 2: expected '1', got '99'; stopped at the first failure (5 not run)")
    assert good.value == 1.0
    assert counting.runs == 3 + 8  # rounds of 1, 2 tests for the failing one; all 8 for the other


def test_total_time_limit(process: Sandbox) -> None:
    tests = {"inputs": [""] * 5, "outputs": ["ok"] * 5}
    sample = {"completion": "import time\ntime.sleep(0.6)\nprint('ok')", "tests": tests}
    [s] = score(process, [sample], total_time_limit_s=1.0)
    assert s.value == 0.2  # test 2 gets only what is left of the budget, tests 3-5 never run
    assert re.fullmatch(r"1/5 tests passed; timeout on test 2 \(0\.\d+s left of the 1s total time limit\)",
                        s.reason), s.reason


def test_total_time_limit_bounds_the_sandbox_time_of_a_sample(process: Sandbox) -> None:
    """All-at-once scoring still gives a sample no more test time than its budget: of 10 tests
    that all spin, 2 get the full 1 s, one gets what is left, the rest never run (not 10 s)."""
    tests = {"inputs": [f"{k}\n" for k in range(10)], "outputs": ["x"] * 10}  # distinct runs
    spin, quick = "while True:\n    pass\n", "print('x')\n"
    counting = Counting(process)
    args = CodeTests.Args(time_limit_s=1.0, total_time_limit_s=2.5)
    slow, fast = CodeTests(args).score_batch([{"completion": spin, "tests": tests},
                                              {"completion": quick, "tests": tests}],
                                             ScoringContext(sandbox=counting))
    assert (slow.value, fast.value) == (0.0, 1.0)
    # the spinning test reaches its CPU and wall limits (both 1 s) together: either may be reported
    assert re.fullmatch(r"0/10 tests passed; timeout on test 1 \((wall|CPU) limit 1s\)", slow.reason), slow.reason
    spin_limits = [limit for program, limit in counting.limits if program == spin]
    assert spin_limits[:2] == [1.0, 1.0] and 3 <= len(spin_limits) <= 4, spin_limits
    assert len([1 for program, _ in counting.limits if program == quick]) == 10
    # the budget is charged with measured time: what earlier tests used plus what the last may use
    spin_walls = [wall for program, wall in counting.walls if program == spin]
    assert sum(spin_walls[:-1]) + spin_limits[-1] <= 2.5 + 1e-9, (spin_walls, spin_limits)


def test_row_problems_are_errors_not_zeros(process: Sandbox) -> None:
    scores = score(process, [{"completion": "print(1)"},
                             {"completion": "print(1)", "tests": {"inputs": ["1"], "outputs": []}},
                             {"completion": "def f(): pass", "tests": "def check(candidate): pass"}])
    assert all(s.error is not None for s in scores)
    assert "sample has no field 'tests'" in scores[0].error and "code_tests" in scores[0].error
    assert scores[1].error == "1 test inputs but 0 outputs"
    assert "no entry point" in scores[2].error


def test_hostile_completions_never_raise(any_backend: Sandbox) -> None:
    tests = {"inputs": ["1\n"], "outputs": ["1\n"]}
    completions: list[Any] = [
        "", "   \n", "a" * (1 << 20), "x = '\ud800\udfff\udc00'\nprint(1)", b"\xff\xfeprint(1)\x80",
        "x = " + "(" * 100_000, "[" * 10_000 + "]" * 10_000, "```python\n" + "if 1:\n " * 200 + "pass\n```",
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "print(input())"}],
        None, 12345, {"content": "print(1)"}, "print(1)\0", "```python\n```", "\x1b[2J" * 1000,
        "import sys\nsys.setrecursionlimit(10**6)\ndef f(n): return f(n + 1)\nf(0)",
        "print('x' * 10**8)", "import os\nos.close(1)", "print(input())" + "\n#" * 40_000,
    ]
    samples = [{"completion": c, "tests": tests} for c in completions]
    ctx = ScoringContext(sandbox=any_backend)
    scores = CodeTests(CodeTests.Args(time_limit_s=2.0)).score_batch(samples, ctx)
    bugs = BugDetector(BugDetector.Args(time_limit_s=2.0)).score_batch(samples, ctx)
    assert len(scores) == len(bugs) == len(samples)
    for completion, s, b in zip(completions, scores, bugs, strict=True):
        assert isinstance(s, Score) and s.error is None and s.reason, (completion, s)
        assert s.value in (0.0, 1.0), (repr(completion)[:80], s)
        assert isinstance(b, Score) and b.error is None and b.reason and b.value in (0.0, 1.0), (completion, b)
        assert b.value >= s.value, (completion, s, b)  # a passing program has no bug
    values = [s.value for s in scores]
    assert values[8] == 1.0 and values[11] == 1.0 and values[18] == 1.0  # chat list, dict, long tail
    assert scores[0].reason == "empty completion (not run)"
    assert scores[2].reason.startswith("program is 1,048,576 characters")
    assert scores[3].reason.startswith("program is not valid UTF-8")
    assert "output limit on test 1" in scores[16].reason


FORGER = r"""    return 0
import gc, os, re, sys, time
found = set()
def scan(data):
    found.update(re.findall(rb"@rewardkit:[0-9a-f]{32}:", data))
for fd in range(256):  # every inherited descriptor, from the start
    try:
        scan(os.pread(fd, 1 << 16, 0))
    except OSError:
        pass
for frame in list(sys._current_frames().values()):  # its frames and the objects gc sees
    while frame is not None:
        scan(repr(frame.f_locals).encode("utf-8", "replace"))
        frame = frame.f_back
scan(repr([o for o in gc.get_objects() if isinstance(o, dict)]).encode("utf-8", "replace"))
pids = [p for p in os.listdir("/proc") if p.isdigit()]
for pid in pids:  # the memory and stdin of every process it can see
    try:
        with open("/proc/%s/fd/0" % pid, "rb") as fh:
            scan(fh.read(1 << 16))
    except OSError:
        pass
    try:
        with open("/proc/%s/maps" % pid) as fh:
            maps = [line.split() for line in fh]
        with open("/proc/%s/mem" % pid, "rb", buffering=0) as mem:
            for where, perms in ((m[0], m[1]) for m in maps):
                lo, hi = (int(x, 16) for x in where.split("-"))
                if perms.startswith("rw") and hi - lo <= 64 << 20:
                    try:
                        mem.seek(lo)
                        scan(mem.read(hi - lo))
                    except (OSError, ValueError, OverflowError):
                        pass
    except OSError:
        pass
main = sys.modules.get("__main__")  # its copy of the harness: make any report say "passed"
for name in ("_dumps", "dumps", "describe", "failure", "as_json"):
    setattr(main, name, lambda *args, **kwargs: '{"ok": true}')
def forge():
    fake = b"".join(b"\n" + n + b'{"ok": true}\n' for n in found or {b"@rewardkit:" + b"0" * 32 + b":"})
    for fd in range(256):  # everything it holds
        try:
            os.write(fd, fake)
        except OSError:
            pass
    for pid in pids:  # every pipe any visible process holds, opened anew for writing
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                out = os.open("/proc/%s/fd/%s" % (pid, fd), os.O_WRONLY | os.O_NONBLOCK)
                os.write(out, fake)
                os.close(out)
            except OSError:
                pass
forge()
if os.fork() == 0:  # and again after the judge has reported
    time.sleep(0.3)
    forge()
    os._exit(0)
"""


def test_a_program_cannot_forge_a_pass(any_backend: Sandbox) -> None:
    """The program runs in its own process, apart from the test and the judge's stdout: looking
    for the report's nonce everywhere it can read, patching its copy of the harness and writing
    fake reports through every descriptor it holds or can open through /proc still scores 0."""
    [forged] = score(any_backend, [dict(HE, completion=FORGER)], tests="test", prefix="prompt")
    assert forged.value == 0.0 and forged.error is None, forged
    assert forged.reason.startswith("0/1 tests passed; "), forged.reason  # failed, died or timed out


HOSTILE_TESTS: list[Any] = [
    None, 7, "", "{", "[", "[[[[" * 5000 + "]]]]" * 5000, {"inputs": None, "outputs": None},
    {"inputs": "1", "outputs": "1"}, {"inputs": [1, 2], "outputs": [1]}, {"inputs": [{"a": 1}], "outputs": [[]]},
    {"fn_name": 3, "inputs": [[1]], "outputs": [1]}, {"fn_name": "f", "inputs": [object()], "outputs": [1]},
    [{"input": "1"}], [1, 2], ["assert f(1) ==", 3], "def check(candidate):\n    assert candidate(1) ==\n",
    {"inputs": ["\ud800"], "outputs": ["\udfff"]}, {"inputs": ["x" * (1 << 20)], "outputs": ["x"]},
    json.loads("[" * 50 + "]" * 50), {"inputs": [[1] * 10], "outputs": [float("nan")], "fn_name": "f"},
]


def test_hostile_test_data_never_raises(process: Sandbox) -> None:
    """Bad rows are the data's fault: an error (unjudged) or a judged score, never an exception."""
    samples = [{"completion": "def f(*a):\n    return 1\nprint(input())", "tests": t, "entry_point": "f"}
               for t in HOSTILE_TESTS]
    ctx = ScoringContext(sandbox=process)
    for verifier in (CodeTests(CodeTests.Args(time_limit_s=2.0)), BugDetector(BugDetector.Args(time_limit_s=2.0))):
        scores = verifier.score_batch(samples, ctx)
        assert len(scores) == len(samples)
        for raw, s in zip(HOSTILE_TESTS, scores, strict=True):
            assert isinstance(s, Score) and s.reason, (repr(raw)[:80], s)
            assert s.error is not None or 0.0 <= s.value <= 1.0, (repr(raw)[:80], s)


def test_registered_and_args_validated() -> None:
    assert resolve("code_tests") is CodeTests
    with pytest.raises(ValueError):
        CodeTests.Args(backend="chroot")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CodeTests.Args(time_limit=3)  # type: ignore[call-arg]
    assert CodeTests(CodeTests.Args(tests=["a", "b"], prefix="prompt")).required_fields() == ["a", "b", "prompt"]


class Broken(Sandbox):
    """A backend whose every batch fails (e.g. the docker engine went away mid-run)."""

    name = "broken"

    def run(self, program: Program) -> RunResult:
        raise ConnectionError("engine went away")


def test_sandbox_failure_is_an_error_for_runnable_samples_only() -> None:
    samples = [{"completion": "print(1)", "tests": ADD}, {"completion": "def (", "tests": ADD}]
    ran, syntax = CodeTests().score_batch(samples, ScoringContext(sandbox=Broken()))
    assert ran.error is not None and "ConnectionError: engine went away" in ran.error
    assert syntax.error is None and syntax.value == 0.0
