"""Stop a run whose rewards keep failing, and say why.

A cell that errors is excluded from normalization (or scores `otherwise`), so a reward that raises
on every sample trains nothing and shows no sign of it but a NaN mean. The guard keeps, for each
reward, the errored and judged cells of the last `window` steps; when the errored share of the
window goes above `max_share` (from step 1 on) the run stops with the reward, the share and the
most common reasons. Smaller error counts are reported once per new reason, so they are seen too.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rewardkit.errors import RewardkitError
from rewardkit.scoring import ScoreTable

MAX_REPORTED = 5  # distinct reasons printed per reward; reasons that quote the sample would flood the console


class RewardErrorsExceeded(RewardkitError, RuntimeError):
    """A reward errored on more than the allowed share of its samples; the run stops (exit 1)."""


@dataclass
class _History:
    steps: deque[tuple[int, int, Counter[str]]]  # per step: errored cells, judged cells, reasons
    reported: set[str] = field(default_factory=set)


def _top(reasons: Counter[str], n: int = 3) -> str:
    return "; ".join(f"{count}x {reason}" for reason, count in reasons.most_common(n))


class ErrorGuard:
    """Feed it each step's score table; it reports new error reasons and raises when a reward fails too often."""

    def __init__(self, names: list[str], window: int, max_share: float,
                 report: Callable[[str], None]) -> None:
        self.window = window
        self.max_share = max_share
        self.report = report
        self.history = {name: _History(deque(maxlen=window)) for name in names}

    def observe(self, step: int, table: ScoreTable) -> None:
        for j, name in enumerate(table.reward_names):
            judged = [row[j] for row in table.cells if not row[j].gated]
            reasons = Counter(str(c.error) for c in judged if c.error is not None)
            history = self.history[name]
            history.steps.append((sum(reasons.values()), len(judged), reasons))
            new = [r for r in reasons if r not in history.reported]
            if new and len(history.reported) < MAX_REPORTED:
                history.reported.update(new)
                more = " (no further reasons printed for it)" if len(history.reported) >= MAX_REPORTED else ""
                self.report(f"step {step}: reward {name!r} errored on {sum(reasons.values())}/{len(judged)} "
                            f"samples; top reason: {reasons.most_common(1)[0][0]}{more}")
            self._check(step, name, history)

    def _check(self, step: int, name: str, history: _History) -> None:
        errored = sum(e for e, _, _ in history.steps)
        judged = sum(n for _, n, _ in history.steps)
        if not judged or errored / judged <= self.max_share:
            return
        reasons: Counter[str] = Counter()
        for _, _, counts in history.steps:
            reasons.update(counts)
        span = len(history.steps)
        raise RewardErrorsExceeded(
            f"reward {name!r} errored on {errored}/{judged} samples ({errored / judged:.0%}) over the last "
            f"{span} step{'s' if span != 1 else ''} (up to step {step}), above train.max_error_share="
            f"{self.max_share:g}; most common reasons: {_top(reasons)}. Check the reward on samples with "
            "`rewardkit check`, or raise train.max_error_share to tolerate it")
