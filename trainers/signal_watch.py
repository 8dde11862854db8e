"""Warn when training has stopped learning anything: every group of several steps in a row had no
signal (all its advantages 0), so the update does nothing. The warning gives each reward's mean,
which says why (a reward nobody earns, or everybody earns, gives every rollout of a group the same
score)."""

from __future__ import annotations

import math
from collections.abc import Callable

STEPS_WITHOUT_SIGNAL = 5  # consecutive steps before the warning; one flat step is common early on


def _why(mean: float) -> str:
    if math.isnan(mean):
        return "every sample excluded (errors)"
    if mean <= 0:
        return "never earned"
    if mean >= 1:
        return "always earned"
    return "same score within each group"


class SignalWatch:
    """Feed it each step's metrics; it reports once per run of `steps` flat steps."""

    def __init__(self, names: list[str], report: Callable[[str], None], steps: int = STEPS_WITHOUT_SIGNAL) -> None:
        self.names = names
        self.report = report
        self.steps = steps
        self.streak = 0

    def observe(self, step: int, metrics: dict[str, float]) -> None:
        if metrics.get("adv/zero_groups", 0.0) < 1.0:
            self.streak = 0
            return
        self.streak += 1
        if self.streak != self.steps:
            return
        means = ", ".join(
            f"{n} {metrics.get(f'reward/{n}/mean', math.nan):.2f} ({_why(metrics.get(f'reward/{n}/mean', math.nan))})"
            for n in self.names)
        self.report(f"warning: steps {step - self.steps + 1}-{step} had no learning signal (every rollout of "
                    f"every group got the same advantage, 0); reward means: {means}. A reward that is never "
                    "or always earned cannot tell rollouts apart: make it easier (partial credit), raise "
                    "group_size or temperature, or check it with `rewardkit check`")
