"""GDPO as verl and NeMo-RL compute it, so a user can see what a run on either engine trains on.

All three engines follow the GDPO paper (arXiv 2601.05242): normalize each reward inside its group,
sum with weights, normalize the sum over the batch. They differ in the details, and the details
move the advantages. Rewards are `[groups, group_size, n_rewards]`; `r` is one reward column of one
group, `n` its size, `w_k` the weights, `s = sum_k w_k * a_k` the summed group-normalized rewards.

paper / TRL (`rewardkit.advantages.gdpo`, TRL's `normalize_then_sum`):
    a = (r - mean(r)) / (std(r) + eps),  eps = 1e-4, std with n - 1
    A = (s - mean(s)) / (std(s) + eps)    over every rollout of the batch, each counted once

verl 0.9.1 (`core_algos.compute_gdpo_outcome_advantage`), `gdpo_verl` below:
    a = (r - mean(r)) / (std(r) + eps),  eps = 1e-6; a group of one gets mean 0, std 1
    A = (s - m) / sqrt(v + 1e-8)          token-weighted: rollout i counts L_i times
        m = sum(L * s) / (sum(L) + 1e-8),  v = sum(L * (s - m)^2) / (sum(L) + 1e-8) * T / (T - 1),
        T = sum(L), L = response lengths in tokens (`masked_whiten` over the response mask)
    Long responses pull the batch mean toward their advantage; with equal lengths it is the
    paper's formula with eps inside the square root.

NeMo-RL (`GDPOAdvantageEstimator`), `gdpo_nemo_rl` below:
    b_i = mean of the group's other rewards (leave-one-out, the default) or of all of them
    std_i = sqrt((mean_b(r^2) - b_i^2) * m / (m - 1)),  m = n - 1 (leave-one-out) or n
    a = (r - b) / (std + 1e-6) where std > 0, else r - b (a group with no spread is not divided)
    A = (s - mean(s)) / std(s)  over the batch; just s - mean(s) when std(s) is 0 (no eps)
    A group with at most one rollout gets a = 0.

Excluded cells (NaN) are rewardkit's, not the engines': here they leave their group's statistics
and add 0 to `s`, and a rollout whose rewards are all NaN gets 0 and leaves the batch statistics,
as in `rewardkit.advantages`. What the engines themselves receive for such a cell is the
bridge's business (verl gets the reward's `otherwise` value, see `rewardkit.integrations.verl`).

numpy in, numpy out (a torch tensor in gives a tensor back); float64 inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.advantages import register_advantage

VERL_EPS = 1e-6
NEMO_RL_EPS = 1e-6
_WHITEN_EPS = 1e-8  # verl's masked_mean / masked_whiten constant


@register_advantage("gdpo_verl", summary="GDPO as verl 0.9.1 computes it: token-weighted batch whitening "
                    "(give completion lengths), eps 1e-6", default_eps=VERL_EPS, extra_options=("lengths",),
                    engine="verl")
def gdpo_verl(rewards: Any, weights: Sequence[float] | Any | None = None, *, lengths: Any = None,
              eps: float = VERL_EPS, norm_by_std: bool = True) -> Any:
    """verl's GDPO: per-reward group normalization, weighted sum, token-weighted whitening.

    `lengths` `[groups, group_size]` are the response lengths in tokens (verl whitens over
    response tokens); None weighs every rollout equally. `norm_by_std=False` is what verl's
    function computes with `norm_adv_by_std_in_grpo=False`, but verl 0.9.1's trainer never passes
    that setting to its GDPO (it always divides). Returns `[groups, group_size]`.
    """
    x, w, back = _prepare(rewards, weights)
    g, n, _ = x.shape
    L = np.ones((g, n)) if lengths is None else np.asarray(lengths, dtype=np.float64).reshape(g, n)
    if (L < 0).any():
        raise ValueError("lengths must be >= 0")
    valid = ~np.isnan(x)
    count = valid.sum(axis=1, keepdims=True)
    filled = np.where(valid, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1, keepdims=True) / count
        var = (np.where(valid, x - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / (count - 1)
    lone = count == 1
    mean = np.where(lone, 0.0, mean)
    std = np.where(lone, 1.0, np.sqrt(var))
    a = (x - mean) / (std + eps) if norm_by_std else x - mean
    s = np.where(valid, a, 0.0) @ w
    scorable = valid.any(axis=2)
    L = np.where(scorable, L, 0.0)
    total = L.sum()
    if total <= 1:  # verl's masked_var refuses a mask of one token; nothing to whiten
        return back(np.zeros((g, n)))
    m = (L * s).sum() / (total + _WHITEN_EPS)
    v = (L * (s - m) ** 2).sum() / (total + _WHITEN_EPS) * (total / (total - 1))
    out = (s - m) / np.sqrt(v + _WHITEN_EPS)
    return back(np.where(L > 0, out, 0.0))


@register_advantage("gdpo_nemo_rl", summary="GDPO as NeMo-RL computes it: leave-one-out baseline (advantage."
                    "leave_one_out), no division where a group's std is 0, batch step without eps",
                    default_eps=NEMO_RL_EPS, extra_options=("leave_one_out",), engine="nemo_rl")
def gdpo_nemo_rl(rewards: Any, weights: Sequence[float] | Any | None = None, *, leave_one_out: bool = True,
                 normalize: bool = True, eps: float = NEMO_RL_EPS) -> Any:
    """NeMo-RL's GDPO: per-reward (leave-one-out) baseline, division only where the std is > 0,
    weighted sum, batch standardization without eps. Returns `[groups, group_size]`.

    `leave_one_out` and `normalize` are NeMo-RL's `use_leave_one_out_baseline` and
    `normalize_rewards` (both true by default there).
    """
    x, w, back = _prepare(rewards, weights)
    valid = ~np.isnan(x)
    filled = np.where(valid, x, 0.0)
    count = valid.sum(axis=1, keepdims=True).astype(np.float64)
    m = count - float(leave_one_out)
    # Sums over the group's other rollouts (or all of them) as NeMo-RL forms them, with a 0/1 matrix:
    # subtracting a rollout from the group sum instead would leave rounding where NeMo-RL gets an
    # exact 0 (a pair's leave-one-out spread), and that 0 decides whether it divides.
    n = x.shape[1]
    others = 1.0 - np.eye(n) if leave_one_out else np.ones((n, n))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        baseline = np.einsum("ij,gjk->gik", others, filled) / m
        square = np.einsum("ij,gjk->gik", others, filled**2) / m
        std = np.nan_to_num(np.sqrt((square - baseline**2) * (m / (m - 1))), nan=0.0)
    few = count <= 1
    a = np.where(few, 0.0, x - baseline)
    std = np.where(few, 0.0, std)
    if normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.where(std > 0, a / (std + eps), a)
    s = np.where(valid, a, 0.0) @ w
    scorable = valid.any(axis=2)
    if not scorable.any():
        return back(np.zeros(s.shape))
    kept = s[scorable]
    centered = s - kept.mean()
    spread = kept.std(ddof=1) if kept.size > 1 else float("nan")
    out = centered / spread if spread > 0 else centered
    return back(np.where(scorable, out, 0.0))


ENGINE_GDPO: dict[str, str] = {"rewardkit": "gdpo", "trl": "gdpo", "verl": "gdpo_verl", "nemo_rl": "gdpo_nemo_rl"}
"""The GDPO each engine computes, by `rewardkit check --engine` name."""

ENGINES_WITHOUT_UNSCORABLE = frozenset({"verl", "nemo_rl"})
"""Engines that receive an excluded cell as the reward's `otherwise` value (verl's reward function
and the `/verify` endpoint NeMo-RL calls have no "not scored"); TRL gets None and excludes it."""


def _prepare(rewards: Any, weights: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    tensor = type(rewards).__module__.split(".")[0] == "torch"
    x = np.asarray(rewards.detach().cpu().numpy() if tensor else rewards, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"rewards must have shape [groups, group_size, n_rewards]; got {x.shape}")
    k = x.shape[2]
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (k,) or np.isnan(w).any():
        raise ValueError(f"weights must be {k} numbers (one per reward); got {weights!r}")

    def back(out: np.ndarray) -> Any:
        if not tensor:
            return out
        return rewards.new_tensor(out) if hasattr(rewards, "new_tensor") else out

    return x, w, back
