"""`group_advantages` (check and /score) computes groups of one size in one call: the numbers equal
computing every group on its own, for mixed sizes, shuffled members and excluded cells."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.advantages import compute_advantages
from rewardkit.check import group_advantages


def _one_by_one(values: np.ndarray, groups: list[str], weights: list[float], method: str) -> np.ndarray:
    out = np.full(len(groups), np.nan)
    for g in dict.fromkeys(groups):
        members = [i for i, x in enumerate(groups) if x == g]
        out[members] = np.asarray(compute_advantages(values[members][None], weights, method=method,
                                                     batch_norm=False))[0]
    return out


@pytest.mark.parametrize("method", ["gdpo", "grpo", "grpo_no_std"])
def test_groups_of_one_size_in_one_call_equal_each_group_alone(method: str) -> None:
    rng = np.random.default_rng(0)
    sizes = [4, 4, 3, 8, 4, 1, 3]
    groups = [f"g{k}" for k, n in enumerate(sizes) for _ in range(n)]
    rng.shuffle(groups)
    values = rng.integers(0, 3, size=(len(groups), 3)).astype(float)
    values[rng.random(values.shape) < 0.15] = np.nan
    got = group_advantages(values, groups, [1.0, 0.5, 2.0], method=method, batch_norm=False)
    np.testing.assert_allclose(got, _one_by_one(values, groups, [1.0, 0.5, 2.0], method), rtol=0, atol=1e-12)
