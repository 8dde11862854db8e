"""Test cases from a data row, in the three shapes code datasets use, and how answers are compared.

- stdin/stdout (CodeContests, TACO, Eurus-2): `{"inputs": [...], "outputs": [...]}` (or `input`/
  `output`), or a list of `{"input", "output"}` rows, or that as a JSON string.
- assert-style: HumanEval's `test` source with `def check(candidate)` (one case, run as
  `check(<entry_point>)`), or MBPP's list of `assert` lines (one case each).
- call-based (APPS/TACO with `fn_name`): each case calls the function with a list of arguments;
  the result comes back as JSON and is compared here, outside the sandbox, so a program cannot
  fake equality (an object whose `__eq__` always says yes does not survive JSON).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from rewardkit.verifiers._text import clip

Kind = Literal["stdio", "assert", "call"]


class TestDataError(ValueError):
    """The row's tests are malformed: a data problem, not the program's fault."""

    __test__ = False  # not a pytest class, despite the name


@dataclass(frozen=True)
class TestCase:
    """One test. `run_key` is what the sandbox sees (expected answers never enter the sandbox
    for stdio and call cases, so two verifiers with different comparison rules share runs)."""

    __test__ = False  # not a pytest class, despite the name

    kind: Kind
    stdin: str = ""          # stdio
    code: str = ""           # assert: test source
    setup: str = ""          # assert: code run before the program and before the test (MBPP)
    entry_point: str = ""    # assert: `check(entry_point)` when set; call: the function
    args: Any = None         # call: the argument list
    expected: Any = None     # stdio: str; call: JSON value

    def run_key(self) -> tuple[Any, ...]:
        if self.kind == "stdio":
            return ("stdio", self.stdin)
        if self.kind == "assert":
            return ("assert", self.setup, self.code, self.entry_point)
        return ("call", self.entry_point, json.dumps(self.args, sort_keys=True, default=repr))


def parse_tests(raw: Any, fmt: str = "auto", entry_point: str = "", setup: str = "") -> list[TestCase]:
    """Turn a tests field into cases. `fmt` is `auto`, `stdio`, `assert` or `call`."""
    if isinstance(raw, str):
        text = raw.strip()
        if fmt != "assert" and text[:1] in ("{", "["):
            try:
                return parse_tests(json.loads(text), fmt, entry_point, setup)
            except json.JSONDecodeError as exc:
                if fmt in ("stdio", "call"):
                    raise TestDataError(f"tests are not valid JSON: {exc}") from exc
        if fmt in ("stdio", "call"):
            raise TestDataError(f"{fmt} tests must be inputs/outputs, got source text")
        if not text:
            raise TestDataError("the test source is empty")
        call = entry_point if "def check" in raw else ""
        if "def check" in raw and not entry_point:
            raise TestDataError("assert-style tests define check() but no entry point is given")
        return [TestCase("assert", code=raw, entry_point=call, setup=setup)]
    if isinstance(raw, dict):
        return _from_mapping(raw, fmt, entry_point)
    if isinstance(raw, (list, tuple)):
        if raw and all(isinstance(t, str) for t in raw):
            if fmt in ("stdio", "call"):
                raise TestDataError(f"{fmt} tests must be inputs/outputs, got a list of strings")
            return [TestCase("assert", code=t, setup=setup) for t in raw]
        if all(isinstance(t, dict) for t in raw):
            cases: list[TestCase] = []
            for row in raw:
                cases += _from_mapping({k: [v] for k, v in row.items() if k != "fn_name"}
                                       | ({"fn_name": row["fn_name"]} if "fn_name" in row else {}),
                                       fmt, entry_point)
            return cases
    raise TestDataError(f"cannot read tests of type {type(raw).__name__}; expected inputs/outputs, "
                        "a list of {input, output}, assert source or a list of asserts")


def _from_mapping(raw: dict[str, Any], fmt: str, entry_point: str) -> list[TestCase]:
    inputs = _first(raw, "inputs", "input")
    outputs = _first(raw, "outputs", "output")
    if inputs is None or outputs is None:
        raise TestDataError(f"tests need inputs and outputs; keys present: {sorted(raw)}")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise TestDataError("tests' inputs and outputs must be lists")
    if len(inputs) != len(outputs):
        raise TestDataError(f"{len(inputs)} test inputs but {len(outputs)} outputs")
    name = str(raw.get("fn_name") or "")
    if fmt == "call" or (fmt == "auto" and name):
        name = name or entry_point
        if not name:
            raise TestDataError("call-based tests need a function name (fn_name or entry_point)")
        return [TestCase("call", entry_point=name, args=i if isinstance(i, list) else [i], expected=o)
                for i, o in zip(inputs, outputs, strict=True)]
    if fmt == "assert":
        raise TestDataError("assert tests must be source text or a list of asserts")
    return [TestCase("stdio", stdin=_text(i), expected=_text(o)) for i, o in zip(inputs, outputs, strict=True)]


def _first(raw: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in raw:
            return raw[key]
    return None


def _text(value: Any) -> str:
    """A stdio input/output as text; some datasets store lines as a list."""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def compare_stdout(got: str, expected: str, tolerance: float | None = None) -> str | None:
    """None when the outputs agree token by token (whitespace and blank lines do not matter;
    numbers within `tolerance`, absolute or relative, when given), else what differs."""
    got_tokens, want_tokens = got.split(), expected.split()
    if got_tokens == want_tokens:
        return None
    if tolerance is not None and len(got_tokens) == len(want_tokens) and all(
        a == b or _close_tokens(a, b, tolerance) for a, b in zip(got_tokens, want_tokens, strict=True)
    ):
        return None
    got_lines = [ln.strip() for ln in got.strip().splitlines()]
    want_lines = [ln.strip() for ln in expected.strip().splitlines()]
    if len(got_lines) > 1 or len(want_lines) > 1:
        for n, (g, w) in enumerate(zip(got_lines, want_lines, strict=False), start=1):
            if g.split() != w.split():
                return f"line {n}: expected {clip(w)!r}, got {clip(g)!r}"
        return f"expected {len(want_lines)} lines, got {len(got_lines)}"
    return f"expected {clip(expected.strip())!r}, got {clip(got.strip())!r}"


def _close_tokens(a: str, b: str, tolerance: float) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return _close(x, y, tolerance)


def _close(x: float, y: float, tolerance: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return False
    return abs(x - y) <= tolerance * max(1.0, abs(y))


def values_equal(got: Any, expected: Any, tolerance: float | None = None) -> bool:
    """Equality of JSON values (tuples arrive as lists); APPS wraps some expected values in a
    one-element list, so `[x]` also accepts `x`."""
    if _equal(got, expected, tolerance, 0):
        return True
    return isinstance(expected, list) and len(expected) == 1 and _equal(got, expected[0], tolerance, 0)


def _equal(a: Any, b: Any, tol: float | None, depth: int) -> bool:
    if depth > 100:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b  # True is not 1 here
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a == b:
            return True
        try:
            return tol is not None and _close(float(a), float(b), tol)
        except OverflowError:
            return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y, tol, depth + 1) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k], tol, depth + 1) for k in a)
    return type(a) is type(b) and a == b


def show_value(value: Any) -> str:
    """A short rendering of a value for a reason."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return clip(text, 40)
