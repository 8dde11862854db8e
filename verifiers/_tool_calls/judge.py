"""All the predicted calls of one completion against all its reference calls, in the three modes
of `tool_call_match` (exact, partial, component), with the reason shown for the score."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from rewardkit.verifiers._tool_calls.assignment import first_unmatchable, max_weight_assignment
from rewardkit.verifiers._tool_calls.bfcl import (
    CallCheck,
    CallRule,
    Normalizer,
    check_call,
    first_problem,
    names_match,
)
from rewardkit.verifiers._tool_calls.parsing import ToolCall

if TYPE_CHECKING:
    from rewardkit.verifiers.tool_call_match import ToolCallMatchArgs


class Judge:
    """All the predicted calls against all the reference calls, for one sample."""

    def __init__(
        self, refs: list[CallRule], preds: list[ToolCall], norm: Normalizer, args: ToolCallMatchArgs
    ) -> None:
        self.refs, self.preds, self.norm, self.args = refs, preds, norm, args
        self._checks: dict[tuple[int, int], CallCheck] = {}
        self._valid: dict[tuple[int, int], bool] = {}

    def check(self, i: int, j: int) -> CallCheck:
        """Reference `i` against prediction `j`, every argument judged (memoized)."""
        key = (i, j)
        found = self._checks.get(key)
        if found is None:
            found = self._checks[key] = check_call(
                self.preds[j], self.refs[i], self.norm, self.args.dots_as_underscores
            )
        return found

    def valid(self, i: int, j: int) -> bool:
        """Whether prediction `j` is right for reference `i` (stops at the first problem)."""
        if self.args.ordered and i != j:
            return False
        if not names_match(self.preds[j].name, self.refs[i].name, self.args.dots_as_underscores):
            return False
        key = (i, j)
        found = self._valid.get(key)
        if found is None:
            found = self._valid[key] = (
                first_problem(self.preds[j], self.refs[i], self.norm, self.args.dots_as_underscores) is None
            )
        return found

    def exact(self) -> tuple[bool, str]:
        n_ref, n_pred = len(self.refs), len(self.preds)
        if n_ref != n_pred:
            return False, _count_reason(self.refs, self.preds)
        if n_ref == 0:
            return True, "no call expected and none made"
        if n_ref == 1:  # judge the one pair, stop at its first problem
            ref, pred = self.refs[0], self.preds[0]
            problem = first_problem(pred, ref, self.norm, self.args.dots_as_underscores)
            if problem is None:
                return True, f"{ref.name} call matches"
            named = names_match(pred.name, ref.name, self.args.dots_as_underscores)
            return False, f"{ref.name}: {problem()}" if named else problem()
        if all(self.valid(i, i) for i in range(n_ref)):  # the usual case: right, in order
            return True, "all calls match"
        unmatched = first_unmatchable(n_ref, self.valid)
        if unmatched is None:
            return True, "all calls match"
        return False, self._explain(unmatched)

    def _explain(self, i: int) -> str:
        """Why reference `i` has no partner: the problems of its closest same-name call."""
        ref = self.refs[i]
        js = [i] if self.args.ordered else range(len(self.preds))
        candidates = [self.check(i, j) for j in js if self.check(i, j).name_ok]
        if not candidates:
            if len(self.preds) == 1 or self.args.ordered:
                return f"expected a call to {ref.name}, got {self.preds[js[0]].name}"
            made = ", ".join(p.name for p in self.preds[:6])
            return f"no call to {ref.name} (calls made: {made})"
        best = min(candidates, key=lambda c: len(c.problems))
        if not best.problems:  # right on its own, but the only partner of another reference too
            return f"{ref.name}: the one call that fits it is needed by another reference call"
        return f"{ref.name}: {best.problems[0]()}"

    def _assignment(self, weight: Callable[[int, int], float]) -> tuple[float, list[tuple[int, int]]]:
        n_ref, n_pred = len(self.refs), len(self.preds)
        if n_ref == 0 or n_pred == 0:
            return 0.0, []
        matrix = [
            [weight(i, j) if not self.args.ordered or i == j else 0.0 for j in range(n_pred)]
            for i in range(n_ref)
        ]
        pairs = max_weight_assignment(matrix)
        return sum(matrix[i][j] for i, j in pairs), pairs

    def _same_name(self, i: int, j: int) -> bool:
        return names_match(self.preds[j].name, self.refs[i].name, self.args.dots_as_underscores)

    def partial(self) -> tuple[float, str]:
        n_ref, n_pred = len(self.refs), len(self.preds)
        if n_ref == 0 and n_pred == 0:
            return 1.0, "no call expected and none made"

        def share(i: int, j: int) -> float:
            if not self._same_name(i, j):
                return 0.0
            c = self.check(i, j)
            if c.valid:
                return 1.0
            denominator = c.n_ref_args + c.extra_args + c.unlisted_missing
            return c.ok_args / denominator if denominator else 0.0

        total, pairs = self._assignment(share)
        value = total / max(n_ref, n_pred)
        right = sum(1 for i, j in pairs if self._same_name(i, j) and self.check(i, j).valid)
        head = f"{right}/{n_ref} calls right" + (f", {n_pred} made" if n_pred != n_ref else "")
        return value, head + self._first_problem(pairs)

    def component(self) -> tuple[float, str]:
        w = self.args.weights
        name_score = _multiset_jaccard([r.name for r in self.refs], [p.name for p in self.preds])
        max_total = w.name + sum(w.param_names + w.param_values * len(r.params) for r in self.refs)

        def gain(i: int, j: int) -> float:
            if not self._same_name(i, j):
                return 0.0
            c = self.check(i, j)
            return w.param_names * c.key_jaccard + w.param_values * c.ok_args

        assigned, pairs = self._assignment(gain)
        named = [(i, j) for i, j in pairs if self._same_name(i, j)]
        total = w.name * name_score + assigned
        value = total / max_total if max_total > 0 else 1.0
        keys = sum(self.check(i, j).key_jaccard for i, j in named)
        values = sum(self.check(i, j).ok_args for i, j in named)
        n_values = sum(len(r.params) for r in self.refs)
        head = (
            f"names {name_score:.2f}, parameter names {keys:.2f}/{len(self.refs)}, values {values}/{n_values}"
        )
        if not self.preds and self.refs:
            head = "no tool call found; " + head
        return min(1.0, max(0.0, value)), head + self._first_problem(named)

    def _first_problem(self, pairs: list[tuple[int, int]]) -> str:
        named = [(i, j) for i, j in pairs if self._same_name(i, j)]
        for i, j in named:
            c = self.check(i, j)
            if c.problems:
                return f"; {self.refs[i].name}: {c.problems[0]()}"
        matched_refs = {i for i, _ in named}
        missing = [r.name for i, r in enumerate(self.refs) if i not in matched_refs]
        if missing:
            return f"; no matching call to {missing[0]}"
        matched_preds = {j for _, j in named}
        extra = [p.name for j, p in enumerate(self.preds) if j not in matched_preds]
        if extra:
            return f"; unexpected call to {extra[0]}"
        return ""


def _count_reason(refs: list[CallRule], preds: list[ToolCall]) -> str:
    made = ", ".join(p.name for p in preds[:6]) + (", ..." if len(preds) > 6 else "")
    wanted = ", ".join(r.name for r in refs[:6]) + (", ..." if len(refs) > 6 else "")
    if not preds:
        return f"no tool call found; expected {len(refs)} ({wanted})"
    if not refs:
        return f"expected no tool call, got {len(preds)} ({made})"
    return f"expected {len(refs)} call(s) ({wanted}), got {len(preds)} ({made})"


def _multiset_jaccard(a: list[str], b: list[str]) -> float:
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    ca, cb = Counter(a), Counter(b)
    shared = sum((ca & cb).values())
    return shared / (len(a) + len(b) - shared)

