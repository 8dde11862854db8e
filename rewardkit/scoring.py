"""The scoring engine: rewards in gate order, each verifier called once per batch on the samples
whose gate is open, failures recorded per cell instead of raised."""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardkit.verifier import Score, ScoringContext

if TYPE_CHECKING:
    from rewardkit.spec import Reward


@dataclass(frozen=True)
class Cell:
    """One reward's verdict on one sample. `value` is NaN when the cell is excluded."""

    value: float
    reason: str
    error: str | None = None
    gated: bool = False


@dataclass
class RewardSummary:
    name: str
    mean: float
    pass_rate: float
    errors: int
    gated: int
    count: int


class ScoreTable:
    """Scores of samples x rewards: `values` [n, k] (NaN = excluded), `cells[i][j]` with reasons."""

    def __init__(self, reward_names: list[str], cells: list[list[Cell]], pass_at: list[float]) -> None:
        self.reward_names = reward_names
        self.cells = cells
        self.pass_at = pass_at
        self.values = np.array([[c.value for c in row] for row in cells], dtype=np.float64).reshape(
            len(cells), len(reward_names)
        )

    def __len__(self) -> int:
        return len(self.cells)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.reward_names.index(name)]

    def summary(self) -> list[RewardSummary]:
        """Per reward: mean over non-excluded cells, pass rate, error and gated counts."""
        out = []
        for j, name in enumerate(self.reward_names):
            col = self.values[:, j]
            valid = col[~np.isnan(col)]
            out.append(RewardSummary(
                name=name,
                mean=float(valid.mean()) if valid.size else math.nan,
                pass_rate=float((valid >= self.pass_at[j]).mean()) if valid.size else math.nan,
                errors=sum(1 for row in self.cells if row[j].error is not None),
                gated=sum(1 for row in self.cells if row[j].gated),
                count=len(self.cells),
            ))
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-friendly rows: one dict per sample, reward name -> {score, reason, error, gated}."""
        return [
            {name: {"score": None if math.isnan(c.value) else c.value, "reason": c.reason,
                    "error": c.error, "gated": c.gated}
             for name, c in zip(self.reward_names, row, strict=True)}
            for row in self.cells
        ]


def score_samples(rewards: Sequence[Reward], order: list[list[str]], samples: Sequence[dict[str, Any]],
                  ctx: ScoringContext, pool: ThreadPoolExecutor | None = None) -> ScoreTable:
    """Score every sample with every reward. Rewards of one gate level run concurrently (threads of
    `pool`, or of a pool made for this call; verifiers do their heavy work in pools or sandboxes,
    so the GIL is not the bottleneck)."""
    by_name = {r.name: r for r in rewards}
    columns: dict[str, list[Cell]] = {}
    for level in order:
        if len(level) == 1:
            columns[level[0]] = _score_reward(by_name[level[0]], samples, columns, ctx)
            continue
        with ThreadPoolExecutor(max_workers=len(level)) if pool is None else nullcontext(pool) as runner:
            futures = {name: runner.submit(_score_reward, by_name[name], samples, columns, ctx) for name in level}
            for name, future in futures.items():
                columns[name] = future.result()
    names = [r.name for r in rewards]
    cells = [[columns[name][i] for name in names] for i in range(len(samples))]
    return ScoreTable(names, cells, [r.pass_at for r in rewards])


def _score_reward(reward: Reward, samples: Sequence[dict[str, Any]], columns: dict[str, list[Cell]],
                  ctx: ScoringContext) -> list[Cell]:
    cells: list[Cell | None] = [None] * len(samples)
    open_idx = []
    for i in range(len(samples)):
        if reward.gate is None or reward.gate.holds({n: columns[n][i].value for n in reward.gate.names}):
            open_idx.append(i)
        else:
            cells[i] = Cell(reward.otherwise, f"gated: `{reward.gate.expression}` is false", gated=True)
    if open_idx:
        scores = _call_verifier(reward, [samples[i] for i in open_idx], ctx)
        for i, score in zip(open_idx, scores, strict=True):
            cells[i] = _to_cell(reward, score)
    return [c for c in cells if c is not None]


def _call_verifier(reward: Reward, batch: list[dict[str, Any]], ctx: ScoringContext) -> list[Score]:
    try:
        scores = reward.guard.call(lambda: reward.verifier.score_batch(batch, ctx), len(batch))
    except Exception as exc:  # noqa: BLE001 - a crashing verifier marks its cells, never the batch
        return [Score.failed(f"verifier {reward.verifier.name or type(reward.verifier).__name__} raised "
                             f"{type(exc).__name__}: {exc}")] * len(batch)
    if len(scores) != len(batch):
        return [Score.failed(f"verifier returned {len(scores)} scores for {len(batch)} samples")] * len(batch)
    return scores


def _to_cell(reward: Reward, score: Any) -> Cell:
    if not isinstance(score, Score):
        try:
            score = Score(float(score))
        except (TypeError, ValueError):
            score = Score.failed(f"verifier returned {type(score).__name__}, not a Score")
    error = score.error
    if error is None and not math.isfinite(score.value):
        error = f"verifier returned a non-finite score {score.value}"
    if error is None:
        return Cell(float(score.value), score.reason)
    value = reward.otherwise if reward.on_error == "otherwise" else math.nan
    return Cell(value, score.reason or error, error=error)
