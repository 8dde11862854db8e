"""The `when:` gate language: comparisons over other rewards' scores, combined with and/or/not.

Parsed by a small recursive-descent parser into a tree that is evaluated directly, never `eval`-ed,
so a spec from an untrusted source cannot run code. Grammar:

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand)?
    operand    := NUMBER | NAME | "(" expr ")"

A bare operand is true when it is non-zero. A comparison involving an excluded (NaN) score is false.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rewardkit.errors import GateSyntaxError

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<op>==|!=|<=|>=|<|>)|(?P<paren>[()])|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\S))"
)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_KEYWORDS = {"and", "or", "not"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int


@dataclass(frozen=True)
class Gate:
    """A parsed gate: `names` are the rewards it reads; `holds(scores)` evaluates it."""

    expression: str
    tree: tuple
    names: frozenset[str]

    def holds(self, scores: Mapping[str, float]) -> bool:
        return bool(_truth(_evaluate(self.tree, scores)))


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None or match.end() == pos:
            break
        kind = match.lastgroup or "bad"
        text = match.group(kind)
        column = match.start(kind) + 1
        if kind == "bad":
            hint = " (use == for equality)" if text == "=" else ""
            raise GateSyntaxError(f"unexpected character {text!r}{hint}", expression, column)
        if kind == "name" and text in _KEYWORDS:
            kind = text
        tokens.append(_Token(kind, text, column))
        pos = match.end()
    tokens.append(_Token("end", "", len(expression) + 1))
    return tokens


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = _tokenize(expression)
        self.i = 0
        self.names: set[str] = set()

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, message: str, token: _Token) -> GateSyntaxError:
        return GateSyntaxError(message, self.expression, token.column)

    def parse(self) -> tuple:
        if self.peek().kind == "end":
            raise self.fail("empty gate expression", self.peek())
        tree = self.expr()
        if self.peek().kind != "end":
            raise self.fail(f"unexpected {self.peek().text!r}", self.peek())
        return tree

    def expr(self) -> tuple:
        tree = self.and_expr()
        while self.peek().kind == "or":
            self.take()
            tree = ("or", tree, self.and_expr())
        return tree

    def and_expr(self) -> tuple:
        tree = self.not_expr()
        while self.peek().kind == "and":
            self.take()
            tree = ("and", tree, self.not_expr())
        return tree

    def not_expr(self) -> tuple:
        if self.peek().kind == "not":
            self.take()
            return ("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> tuple:
        left = self.operand()
        if self.peek().kind == "op":
            op = self.take().text
            right = self.operand()
            if self.peek().kind == "op":
                raise self.fail("chained comparisons are not supported; combine with 'and'", self.peek())
            return ("cmp", op, left, right)
        return left

    def operand(self) -> tuple:
        token = self.take()
        if token.kind == "num":
            return ("num", float(token.text))
        if token.kind == "name":
            self.names.add(token.text)
            return ("name", token.text)
        if token.text == "(":
            tree = self.expr()
            if self.peek().text != ")":
                raise self.fail("missing ')'", self.peek())
            self.take()
            return tree
        what = "end of expression" if token.kind == "end" else repr(token.text)
        raise self.fail(f"expected a reward name, a number or '(' but found {what}", token)


def parse_gate(expression: str) -> Gate:
    """Parse a `when:` expression; raises GateSyntaxError with the column of the problem."""
    parser = _Parser(expression)
    tree = parser.parse()
    return Gate(expression, tree, frozenset(parser.names))


def _truth(value: float | bool) -> bool:
    if isinstance(value, bool):
        return value
    return not math.isnan(value) and value != 0


def _evaluate(tree: tuple, scores: Mapping[str, float]) -> float | bool:
    kind = tree[0]
    if kind == "num":
        return float(tree[1])
    if kind == "name":
        return float(scores[tree[1]])
    if kind == "not":
        return not _truth(_evaluate(tree[1], scores))
    if kind == "and":
        return _truth(_evaluate(tree[1], scores)) and _truth(_evaluate(tree[2], scores))
    if kind == "or":
        return _truth(_evaluate(tree[1], scores)) or _truth(_evaluate(tree[2], scores))
    _, op, left_tree, right_tree = tree
    left, right = float(_evaluate(left_tree, scores)), float(_evaluate(right_tree, scores))
    if math.isnan(left) or math.isnan(right):
        return False
    return _COMPARE[op](left, right)


def dependency_order(gates: Mapping[str, Gate | None]) -> list[list[str]]:
    """Rewards in levels: each level depends only on earlier ones. Raises ValueError on a cycle,
    naming it (`a -> b -> a`). Unknown names must be checked by the caller first."""
    deps = {name: set(gate.names) if gate else set() for name, gate in gates.items()}
    levels: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(deps):
        ready = [n for n in deps if n not in done and deps[n] <= done]
        if not ready:
            raise ValueError(f"gates form a cycle: {' -> '.join(_find_cycle(deps, done))}")
        levels.append(ready)
        done.update(ready)
    return levels


def _find_cycle(deps: Mapping[str, set[str]], done: set[str]) -> list[str]:
    start = next(n for n in deps if n not in done)
    path = [start]
    while True:
        nxt = sorted(d for d in deps[path[-1]] if d not in done)[0]
        if nxt in path:
            return path[path.index(nxt):] + [nxt]
        path.append(nxt)
