"""Math at CPU scale (GDPO paper section 4.2): one-step word problems on small numbers, integer answers.

The answer goes in `\\boxed{}`; a reasoning block before it is optional. Three answer styles
exist in the warm-start demonstrations, and they trade length for accuracy the way long reasoning
does for real models: a bare `\\boxed{r}` (short, often wrong), one line of working (medium), and
working plus a check (long, most often right). With the length limit of the specs (`MAX_TOKENS`)
the bare answer and the working fit but the checked answer does not, so correctness and brevity
pull apart (mildly: the shares wrong are 40/35/30%), which is the situation the paper's
conditioned length reward is for. A first version had two-step problems, operands 1..9 and a
strong trade-off (bare answers 50-60% wrong): the tiny policy could not compute the answers, and
under RL it dropped its working for the length reward while its correctness fell, so the task was
made smaller (experiments/paper_tasks.md says how).
"""

from __future__ import annotations

from typing import Any

import numpy as np

NAMES = ["anna", "ben", "carl", "dana"]
ITEMS = ["apples", "pens", "cards", "coins"]
DIGITS = 5  # operands 1..DIGITS: 40 facts, few enough for the tiny policy to learn (1..9 was not)
MAX_TOKENS = 12  # the length limit of specs/paper_math*.yaml, in tokens of the task's tokenizer

# kind -> template over the digits a and b (a >= b for sub)
TEMPLATES = {
    "add": "{name} has {a} {item} and buys {b} more. how many {item} now?",
    "sub": "{name} has {a} {item} and gives away {b}. how many {item} are left?",
}
STYLES = {"short": 0.3, "medium": 0.4, "long": 0.3}  # share of demonstrations in each style
WRONG = {"short": 0.4, "medium": 0.35, "long": 0.3}  # share of those with a wrong answer


def pieces() -> list[str]:
    words: list[str] = []
    for t in TEMPLATES.values():
        words += [w.rstrip(".?,") for w in t.split() if "{" not in w]
    return ["question: ", "\nanswer: ", " ", ".", "?", ",", "\n", "<think>", "</think>", "\\boxed{", "}",
            " + ", " - ", " = ", ". check ", ". so "] + words + NAMES + ITEMS + [str(n) for n in range(100)]


def make_row(rng: np.random.Generator) -> dict[str, Any]:
    kind = str(rng.choice(list(TEMPLATES)))
    a, b = int(rng.integers(1, DIGITS + 1)), int(rng.integers(1, DIGITS + 1))
    if kind == "sub":
        a, b = max(a, b), min(a, b)
    text = TEMPLATES[kind].format(name=rng.choice(NAMES), item=rng.choice(ITEMS), a=a, b=b)
    answer = a + b if kind == "add" else a - b
    return {"prompt": f"question: {text}\nanswer: ", "answer": str(answer), "kind": kind, "numbers": [a, b]}


def _working(row: dict[str, Any], answer: int) -> str:
    """The step that reaches `answer` (a wrong answer shows up in it, as mistakes do)."""
    a, b = row["numbers"]
    return f"{a} {'+' if row['kind'] == 'add' else '-'} {b} = {answer}"


def _check(row: dict[str, Any], answer: int) -> str:
    a, b = row["numbers"]
    return f"{answer} - {b} = {a}" if row["kind"] == "add" else f"{answer} + {b} = {a}"


def completion(row: dict[str, Any], style: str, answer: int) -> str:
    if style == "short":
        return f"\\boxed{{{answer}}}"
    think = _working(row, answer)
    if style == "long":
        think += f". check {_check(row, answer)}. so {answer}"
    return f"<think>{think}</think>\n\\boxed{{{answer}}}"


def solution(row: dict[str, Any]) -> str:
    return completion(row, "medium", int(row["answer"]))


def demonstration(row: dict[str, Any], rng: np.random.Generator) -> str:
    """A warm-start demonstration: a style drawn by `STYLES`, wrong by that style's `WRONG` share
    (off by 1-3, never negative)."""
    style = str(rng.choice(list(STYLES), p=list(STYLES.values())))
    answer = int(row["answer"])
    if rng.random() < WRONG[style]:
        answer = max(0, answer + int(rng.choice([-3, -2, -1, 1, 2, 3])))
        if answer == int(row["answer"]):
            answer += 1
    return completion(row, style, answer)
