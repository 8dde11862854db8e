"""Signs of reward hacking while training runs, each with its step and numbers, on the console and
as `signal/...` entries of that step in metrics.jsonl.

- **lenient**: a reward that passes almost every sample from step 1 (`signal/lenient/<reward>` =
  its step-1 pass rate). A verifier that the untrained policy already satisfies pays for nothing
  the run can learn; `rewardkit audit` shows what it accepts.
- **gate_flat**: a reward whose pass rate climbs while every reward gated on it stays flat
  (`signal/gate_flat/<reward>` = the climb). The policy learned to open the gate (the format, say)
  but not what the gate guards.
- **truncation**: completions ending at `max_new_tokens` more and more
  (`signal/truncation_rising` = the share now). Padding to the limit is a common exploit of rewards
  that read the end of a completion.

Climbs compare the mean over the first `window` steps with the mean over the last `window`; each
signal fires once per run.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

WINDOW = 5              # steps per side of a climb comparison
LENIENT_PASS = 0.95     # a step-1 pass rate at least this is lenient
CLIMB = 0.2             # a rise at least this (absolute) counts as climbing
FLAT = 0.05             # a gated reward's change within this stays flat
TRUNCATION_FLOOR = 0.3  # the truncated share must also reach this


class HackSignals:
    """Feed it each step's metrics; it adds `signal/...` numbers to them and reports each once."""

    def __init__(self, names: Sequence[str], gated_on: dict[str, list[str]], report: Callable[[str], None],
                 window: int = WINDOW) -> None:
        self.names = list(names)
        self.gated_on = {g: list(ds) for g, ds in gated_on.items() if ds}  # reward -> rewards gated on it
        self.report = report
        self.window = window
        self.first: dict[str, list[float]] = {}
        self.last: dict[str, deque[float]] = {}
        self.fired: set[str] = set()
        self.steps = 0

    def _track(self, key: str, value: float) -> None:
        if math.isnan(value):
            return
        head = self.first.setdefault(key, [])
        if len(head) < self.window:
            head.append(value)
        self.last.setdefault(key, deque(maxlen=self.window)).append(value)

    def _rise(self, key: str) -> tuple[float, float] | None:
        """(first-window mean, last-window mean) once both windows are full and apart."""
        head, tail = self.first.get(key, []), self.last.get(key, deque())
        if self.steps < 2 * self.window or len(head) < self.window or len(tail) < self.window:
            return None
        return sum(head) / len(head), sum(tail) / len(tail)

    def observe(self, step: int, metrics: dict[str, float]) -> None:
        self.steps += 1
        for n in self.names:
            self._track(n, metrics.get(f"reward/{n}/pass_rate", math.nan))
        self._track("truncated", metrics.get("len/truncated", math.nan))
        if step == 1:  # from the first step of a run, not of a resumed one
            for n in self.names:
                rate = metrics.get(f"reward/{n}/pass_rate", math.nan)
                gated = metrics.get(f"reward/{n}/gated_share", 0.0)
                if rate >= LENIENT_PASS and gated < 0.5:
                    self._fire(f"lenient/{n}", rate, metrics,
                               f"signal: step {step}: reward {n!r} passes {rate:.0%} of the samples from the first "
                               "step, before the policy learned anything (a lenient verifier? `rewardkit audit` "
                               "shows what it accepts)")
        for gate, dependents in self.gated_on.items():
            rise = self._rise(gate)
            if rise is None or rise[1] - rise[0] < CLIMB:
                continue
            moves = {d: self._rise(d) for d in dependents}
            if all(m is not None and abs(m[1] - m[0]) <= FLAT for m in moves.values()):
                flat = ", ".join(f"{d} {m[0]:.2f} -> {m[1]:.2f}" for d, m in moves.items() if m is not None)
                self._fire(f"gate_flat/{gate}", rise[1] - rise[0], metrics,
                           f"signal: step {step}: reward {gate!r} pass rate climbed {rise[0]:.2f} -> {rise[1]:.2f} "
                           f"(mean of the first vs the last {self.window} steps) while the rewards gated on it stay "
                           f"flat ({flat}): the policy may be opening the gate without earning what it guards")
        rise = self._rise("truncated")
        if rise is not None and rise[1] - rise[0] >= CLIMB and rise[1] >= TRUNCATION_FLOOR:
            self._fire("truncation_rising", rise[1], metrics,
                       f"signal: step {step}: {rise[1]:.0%} of completions now end at max_new_tokens (was "
                       f"{rise[0]:.0%} over the first {self.window} steps): padding to the limit, or a reward that "
                       "pays for length?")

    def _fire(self, key: str, value: float, metrics: dict[str, float], message: str) -> None:
        if key in self.fired:
            return
        self.fired.add(key)
        metrics[f"signal/{key}"] = value
        self.report(message)


def gated_on(spec: object) -> dict[str, list[str]]:
    """Reward name -> names of the rewards whose gate reads it."""
    out: dict[str, list[str]] = {}
    for reward in getattr(spec, "rewards", []):
        gate = getattr(reward, "gate", None)
        for name in getattr(gate, "names", []) or []:
            out.setdefault(name, []).append(reward.name)
    return out
