"""Code at CPU scale (GDPO paper section 4.3): tiny stdin/stdout programs with tests.

A prompt asks for one integer operation on one or two integers read from stdin; the answer is a
fenced Python program. The warm-start demonstrations are imperfect in three independent ways: a
wrong operation (fails tests, runs fine), a bug (reads the input wrong, uses an undefined name or
drops a parenthesis: `bug_detector` flags it), and padding (comments and a temporary variable:
over the length limit `MAX_TOKENS`).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

MAX_TOKENS = 16  # the length limit of specs/paper_code.yaml, in tokens of the task's tokenizer
READ_TWO = " = map(int, input().split())\n"
READ_ONE = " = int(input())\n"
NAMES_TWO = [("a", "b"), ("x", "y"), ("p", "q"), ("u", "v"), ("m", "k")]
NAMES_ONE = ["n", "x", "k", "m", "t"]

# name -> (inputs, ways the prompt says it, the expression as pieces over the names A, B or N)
OPERATIONS: dict[str, tuple[int, list[str], list[str]]] = {
    "sum": (2, ["print their sum", "print A plus B"], ["A", " + ", "B"]),
    "difference": (2, ["print A minus B", "print the difference A - B"], ["A", " - ", "B"]),
    "product": (2, ["print their product", "print A times B"], ["A", " * ", "B"]),
    "larger": (2, ["print the larger one", "print the maximum"], ["max(", "A", ", ", "B", ")"]),
    "smaller": (2, ["print the smaller one", "print the minimum"], ["min(", "A", ", ", "B", ")"]),
    "double": (1, ["print N doubled", "print twice N"], ["N", " * ", "2"]),
    "square": (1, ["print N squared", "print N times N"], ["N", " * ", "N"]),
    "next": (1, ["print N plus one", "print the number after N"], ["N", " + ", "1"]),
    "previous": (1, ["print N minus one", "print the number before N"], ["N", " - ", "1"]),
}
INTRO = {1: "read an integer N.", 2: "read two integers A and B."}
STYLE_PIECES = ["```python\n", "```", READ_TWO, READ_ONE, ", ", "print(", ")\n", "# ", "input", "answer", "ans = ",
                "\n", "print(ans)\n", "ans", "task: ", "\nprogram:\n", " ", ".", "c"]


def pieces() -> list[str]:
    words: list[str] = []
    for _, texts, expr in OPERATIONS.values():
        for text in texts:
            words += text.split()
        words += expr
    for text in INTRO.values():
        words += text.split()
    names = [n for pair in NAMES_TWO for n in pair] + NAMES_ONE
    words = [w.rstrip(".") for w in words if w.rstrip(".") not in ("A", "B", "N")]
    return STYLE_PIECES + words + names + ["1", "2", " + ", " - ", " * ", "max(", "min(", ")"]


def _evaluate(op: str, a: int, b: int) -> int:
    return {"sum": a + b, "difference": a - b, "product": a * b, "larger": max(a, b), "smaller": min(a, b),
            "double": 2 * a, "square": a * a, "next": a + 1, "previous": a - 1}[op]


def _names(arity: int, rng: np.random.Generator) -> dict[str, str]:
    if arity == 2:
        a, b = NAMES_TWO[int(rng.integers(len(NAMES_TWO)))]
        return {"A": a, "B": b}
    return {"N": NAMES_ONE[int(rng.integers(len(NAMES_ONE)))]}


def _fill(parts: list[str], names: dict[str, str]) -> list[str]:
    return [names.get(p, p) for p in parts]


def make_row(rng: np.random.Generator, n_tests: int = 3) -> dict[str, Any]:
    op = str(rng.choice(list(OPERATIONS)))
    arity, texts, _ = OPERATIONS[op]
    names = _names(arity, rng)
    inputs, outputs = [], []
    for _ in range(n_tests):
        a, b = int(rng.integers(1, 20)), int(rng.integers(1, 20))
        inputs.append(f"{a} {b}\n" if arity == 2 else f"{a}\n")
        outputs.append(f"{_evaluate(op, a, b)}\n")
    text = re.sub(r"\b[ABN]\b", lambda m: names[m.group()], f"{INTRO[arity]} {texts[int(rng.integers(len(texts)))]}")
    return {"prompt": f"task: {text}.\nprogram:\n", "op": op, "names": names,
            "tests": {"inputs": inputs, "outputs": outputs}}


def _read(names: dict[str, str]) -> str:
    return f"{names['A']}, {names['B']}{READ_TWO}" if "A" in names else f"{names['N']}{READ_ONE}"


def program(read: str, expr: list[str], padded: bool = False, broken: bool = False) -> str:
    body = "".join(expr)
    close = "\n" if broken else ")\n"
    if padded:
        code = f"# read the input\n{read}ans = {body}\n# print the answer\nprint(ans{close}"
    else:
        code = f"{read}print({body}{close}"
    return f"```python\n{code}```"


def solution(row: dict[str, Any]) -> str:
    return program(_read(row["names"]), _fill(OPERATIONS[row["op"]][2], row["names"]))


def demonstration(row: dict[str, Any], rng: np.random.Generator, p_wrong: float = 0.4, p_bug: float = 0.3,
                  p_padded: float = 0.4) -> str:
    """A warm-start demonstration: another operation (p_wrong), a bug (p_bug: the other input
    shape, an unassigned name, or a missing parenthesis) and padding (p_padded), independently."""
    arity, _, expr = OPERATIONS[row["op"]]
    names = row["names"]
    if rng.random() < p_wrong:  # another operation on the same inputs
        others = [o for o, (n, _, _) in OPERATIONS.items() if n == arity and o != row["op"]]
        expr = OPERATIONS[str(rng.choice(others))][2]
    read, code, broken = _read(names), _fill(expr, names), False
    if rng.random() < p_bug:
        kind = int(rng.integers(3))
        if kind == 0:  # reads the other input shape: ValueError at run time
            read = _read(_names(3 - arity, rng))
        elif kind == 1:  # a name that was never assigned: NameError
            code = _fill(expr, {k: "c" for k in names})
        else:  # a missing parenthesis: SyntaxError
            broken = True
    return program(read, code, padded=rng.random() < p_padded, broken=broken)
