"""`rewardkit check`: score sample completions with a spec and show GRPO vs GDPO side by side.

The report is plain data (so `--json` and the terminal table show the same thing); rendering
lives in the CLI."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardkit.advantages import Method, advantage_method, compared_methods, compute_advantages
from rewardkit.errors import GroupFieldError
from rewardkit.scoring import ScoreTable
from rewardkit.spec import Spec
from rewardkit.verifier import ScoringContext


@dataclass
class SampleRow:
    line: int
    group: str
    sample: dict[str, Any]


@dataclass
class BadLine:
    line: int
    error: str


@dataclass
class CheckReport:
    spec: Spec
    rows: list[SampleRow]
    bad_lines: list[BadLine]
    table: ScoreTable
    advantages: dict[str, np.ndarray] = field(default_factory=dict)

    def distinct(self, method: str) -> int:
        values = self.advantages[method]
        return len({round(float(v), 6) for v in values if not math.isnan(v)})

    def error_reasons(self) -> dict[str, Counter[str]]:
        """Per reward that errored on some samples: each error reason and how often it occurred."""
        out: dict[str, Counter[str]] = {}
        for j, name in enumerate(self.table.reward_names):
            reasons = Counter(str(row[j].error) for row in self.table.cells if row[j].error is not None)
            if reasons:
                out[name] = reasons
        return out

    def to_json(self) -> dict[str, Any]:
        records = self.table.to_records()
        reasons = self.error_reasons()
        return {
            "spec": self.spec.config.name,
            "rewards": self.table.reward_names,
            "weights": self.spec.weights,
            "advantage_method": self.spec.config.advantage.method,
            "samples": [
                {"line": row.line, "group": row.group, "scores": records[i],
                 "advantages": {m: _json_float(a[i]) for m, a in self.advantages.items()}}
                for i, row in enumerate(self.rows)
            ],
            "summary": {
                "rewards": [
                    {"name": s.name, "mean": _json_float(s.mean), "pass_rate": _json_float(s.pass_rate),
                     "errors": s.errors, "gated": s.gated, "count": s.count,
                     "error_reasons": dict(reasons.get(s.name, Counter()).most_common())}
                    for s in self.table.summary()
                ],
                "distinct_advantages": {m: self.distinct(m) for m in self.advantages},
                "bad_lines": len(self.bad_lines),
            },
            "bad_lines": [{"line": b.line, "error": b.error} for b in self.bad_lines],
        }


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def read_samples(lines: Iterable[str], group_by: str) -> tuple[list[SampleRow], list[BadLine]]:
    """Parse JSONL; a malformed line is reported with its number and the rest are still read."""
    rows: list[SampleRow] = []
    bad: list[BadLine] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(BadLine(number, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(sample, dict):
            bad.append(BadLine(number, f"expected a JSON object, got {type(sample).__name__}"))
            continue
        if "completion" not in sample:
            bad.append(BadLine(number, f"no 'completion' field (fields: {', '.join(sorted(sample))})"))
            continue
        group = sample.get(group_by)
        group_key = json.dumps(group, sort_keys=True) if not isinstance(group, str) else group
        rows.append(SampleRow(number, group_key if group is not None else f"line {number}", sample))
    return rows, bad


def group_advantages(values: np.ndarray, groups: list[str], weights: list[float], *, method: Method,
                     eps: float | None = None, batch_norm: bool = True) -> np.ndarray:
    """Advantages for groups of any size: each group on its own, then (for a method with a batch
    step, i.e. GDPO) one batch normalization over all samples, as `compute_advantages` does for
    equal-sized groups. `eps=None` takes the method's default."""
    entry = advantage_method(method)
    out = np.full(len(groups), np.nan)
    index: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        index.setdefault(group, []).append(i)
    by_size: dict[int, list[list[int]]] = {}
    for members in index.values():
        by_size.setdefault(len(members), []).append(members)
    for same_size in by_size.values():  # groups of one size in one call: ~1 ms less per group (serve)
        rows = np.array(same_size)  # [groups, group_size]
        out[rows] = np.asarray(compute_advantages(values[rows], weights, method=method, eps=eps, batch_norm=False))
    if entry.batch_norm and batch_norm and len(out) > 1:
        batch_eps = eps if eps is not None else entry.default_eps or 0.0
        valid = ~np.isnan(values).all(axis=1)  # unscorable rollouts stay out of the batch statistics
        if valid.sum() > 1:
            out[valid] = (out[valid] - out[valid].mean()) / (out[valid].std(ddof=1) + batch_eps)
        out[~valid] = 0.0
    return out


def run_check(spec: Spec, lines: Iterable[str], group_by: str = "prompt",
              ctx: ScoringContext | None = None, require_group_field: bool = False) -> CheckReport:
    """Score the samples of `lines`; with `require_group_field` (an explicit `--group-by`), a field
    no sample has is an error instead of one group per sample."""
    rows, bad = read_samples(lines, group_by)
    if require_group_field and rows and not any(group_by in row.sample for row in rows):
        present = sorted({key for row in rows for key in row.sample})
        raise GroupFieldError(f"--group-by {group_by!r}: no sample has that field, so every sample would be a "
                              f"group of its own (all advantages 0); fields present: {', '.join(present)}")
    table = spec.score([row.sample for row in rows], ctx)
    adv = spec.config.advantage
    groups = [row.group for row in rows]
    advantages: dict[str, np.ndarray] = {
        method: group_advantages(table.values, groups, spec.weights, method=method, eps=adv.explicit_eps,
                                 batch_norm=adv.batch_norm)
        if rows else np.zeros(0)
        for method in compared_methods()
    }
    return CheckReport(spec, rows, bad, table, advantages)
