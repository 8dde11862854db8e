"""The engines' GDPO variants (`rewardkit.engine_gdpo`) and how they reach specs, `check` and the TRL bridge.

verl's variant is checked against verl's own code in test_verl_parity.py. NeMo-RL does not install
here (PyPI holds a 0.0.0 placeholder), so `gdpo_nemo_rl` is checked against its published formula
(`GDPOAdvantageEstimator` and `calculate_baseline_and_std_per_prompt`, nemo_rl/algorithms), written
below as plain loops over one rollout at a time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rewardkit.advantages import ADVANTAGE_METHODS, compute_advantages, gdpo
from rewardkit.check import run_check
from rewardkit.cli import main
from rewardkit.engine_gdpo import gdpo_nemo_rl, gdpo_verl
from rewardkit.spec import load_spec_text

ROOT = Path(__file__).resolve().parent.parent


def nemo_rl_reference(rewards: np.ndarray, weights: list[float], leave_one_out: bool, normalize: bool) -> np.ndarray:
    """NeMo-RL's GDPO as published, one rollout at a time (float64)."""
    groups, size, k = rewards.shape
    summed = np.zeros((groups, size))
    for g in range(groups):
        for j in range(k):
            r = rewards[g, :, j]
            for i in range(size):
                if size <= 1:  # at most one valid rollout: baseline = reward, advantage 0
                    continue
                others = [r[m] for m in range(size) if m != i] if leave_one_out else list(r)
                n = len(others)
                baseline = sum(others) / n
                mean_square = sum(x * x for x in others) / n
                variance = (mean_square - baseline**2) * (n / (n - 1)) if n > 1 else math.nan
                std = math.sqrt(variance) if variance >= 0 and math.isfinite(variance) else 0.0
                a = r[i] - baseline
                if normalize and std > 0:
                    a = a / (std + 1e-6)
                summed[g, i] += weights[j] * a
    flat = summed.reshape(-1)
    spread = flat.std(ddof=1) if flat.size > 1 else 0.0
    out = (flat - flat.mean()) / spread if spread > 0 else flat - flat.mean()
    return out.reshape(groups, size)


@pytest.mark.parametrize("leave_one_out", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
def test_gdpo_nemo_rl_follows_nemo_rls_published_formula(leave_one_out: bool, normalize: bool) -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        g, n, k = int(rng.integers(1, 5)), int(rng.integers(1, 7)), int(rng.integers(1, 4))
        rewards = rng.integers(0, 3, size=(g, n, k)).astype(float) if rng.random() < 0.6 else rng.normal(size=(g, n, k))
        weights = rng.uniform(0.2, 2, size=k).round(2).tolist()
        got = gdpo_nemo_rl(rewards, weights, leave_one_out=leave_one_out, normalize=normalize)
        np.testing.assert_allclose(got, nemo_rl_reference(rewards, weights, leave_one_out, normalize), atol=1e-9)


def test_gdpo_nemo_rl_does_not_divide_a_group_without_spread() -> None:
    # The first reward of group 0 is constant: NeMo-RL leaves it undivided (it contributes 0), where
    # the paper's (r - mean) / (std + eps) is 0 as well, but the second reward's scale differs.
    rewards = np.array([[[1.0, 0.0], [1.0, 1.0], [1.0, 3.0]], [[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    got = gdpo_nemo_rl(rewards, leave_one_out=False)
    np.testing.assert_allclose(got, nemo_rl_reference(rewards, [1.0, 1.0], False, True), atol=1e-12)
    assert np.isfinite(got).all()
    constant = np.ones((1, 3, 1))
    np.testing.assert_array_equal(gdpo_nemo_rl(constant), np.zeros((1, 3)))  # no spread anywhere: all 0
    assert not np.allclose(gdpo_nemo_rl(rewards), gdpo(rewards, eps=1e-6), atol=1e-3)


def test_gdpo_verl_weighs_each_rollout_by_its_tokens() -> None:
    """Token-weighted whitening: a rollout of L tokens counts as L rollouts in the batch statistics."""
    rng = np.random.default_rng(3)
    rewards = rng.integers(0, 2, size=(3, 4, 2)).astype(float)
    lengths = rng.integers(1, 6, size=(3, 4))
    got = gdpo_verl(rewards, [1.0, 0.5], lengths=lengths)
    summed = gdpo(rewards, [1.0, 0.5], eps=1e-6, batch_norm=False)  # verl's group step, before the batch
    repeated = np.repeat(summed.reshape(-1), lengths.reshape(-1))
    expected = (summed - repeated.mean()) / np.sqrt(repeated.var(ddof=1) + 1e-8)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    equal = gdpo_verl(rewards, [1.0, 0.5])  # equal lengths: the paper's batch step, eps under the root
    np.testing.assert_allclose(equal, (summed - summed.mean()) / np.sqrt(summed.var(ddof=1) + 1e-8), atol=1e-6)
    assert not np.allclose(got, equal, atol=1e-3)


def test_gdpo_verl_gives_a_group_of_one_its_reward() -> None:
    # verl: a lone response has mean 0 and std 1, so its normalized reward is r / (1 + eps), not 0.
    rewards = np.array([[[1.0]], [[0.0]], [[3.0]]])
    s = rewards.reshape(-1) / (1 + 1e-6)
    np.testing.assert_allclose(gdpo_verl(rewards).reshape(-1), (s - s.mean()) / np.sqrt(s.var(ddof=1) + 1e-8))
    assert np.allclose(gdpo(rewards), 0)  # rewardkit/TRL: no signal from a group of one


def test_variants_are_rows_of_the_method_table_and_reach_compute_advantages() -> None:
    assert {"gdpo_verl", "gdpo_nemo_rl"} <= set(ADVANTAGE_METHODS)
    assert ADVANTAGE_METHODS["gdpo_verl"].default_eps == 1e-6 and ADVANTAGE_METHODS["gdpo_verl"].trl is None
    rewards = np.random.default_rng(0).integers(0, 2, size=(2, 4, 2)).astype(float)
    lengths = np.arange(1, 9).reshape(2, 4)
    np.testing.assert_array_equal(compute_advantages(rewards, method="gdpo_verl", lengths=lengths),
                                  gdpo_verl(rewards, lengths=lengths))
    np.testing.assert_array_equal(compute_advantages(rewards, method="gdpo_nemo_rl", leave_one_out=False),
                                  gdpo_nemo_rl(rewards, leave_one_out=False))
    assert not np.allclose(compute_advantages(rewards, method="gdpo", lengths=lengths),
                           compute_advantages(rewards, method="gdpo_verl", lengths=lengths))


SPEC = """
version: 1
name: engines
rewards:
  - {{name: value, verifier: "rk_test_verifiers:FieldValue", args: {{field: value}}, otherwise: 0.5}}
  - {{name: other, verifier: "rk_test_verifiers:FieldValue", args: {{field: other}}}}
advantage: {{method: {method}, leave_one_out: false}}
"""
SAMPLES = [{"prompt": "a", "completion": "one two three", "value": 1, "other": 0},
           {"prompt": "a", "completion": "one", "value": "boom", "other": 1},
           {"prompt": "a", "completion": "one two", "value": 0, "other": 1},
           {"prompt": "b", "completion": "x y z w", "value": 1, "other": 0},
           {"prompt": "b", "completion": "x", "value": 0, "other": 0}]


def test_a_spec_can_name_an_engines_variant_and_trl_refuses_it() -> None:
    from rewardkit.integrations.trl import UnsupportedByTRL, grpo_config_kwargs

    spec = load_spec_text(SPEC.format(method="gdpo_nemo_rl"), "engines.yaml")
    assert spec.config.advantage.eps == 1e-6 and spec.config.advantage.leave_one_out is False
    with pytest.raises(UnsupportedByTRL):
        grpo_config_kwargs(spec)


def test_check_engine_shows_what_that_engine_computes() -> None:
    spec = load_spec_text(SPEC.format(method="gdpo"), "engines.yaml")
    lines = [json.dumps(s) for s in SAMPLES]
    report = run_check(spec, lines, engine="verl")
    assert list(report.advantages) == ["grpo", "gdpo", "gdpo_verl"]
    # verl receives the excluded cell as `otherwise` (0.5) and weighs rollouts by length (words here).
    values = np.nan_to_num(report.table.values, nan=0.5)
    grid = np.full((2, 3, 2), np.nan)
    grid[0], grid[1, :2] = values[:3], values[3:]
    lengths = np.array([[3, 1, 2], [4, 1, 0]])
    expected = gdpo_verl(grid, lengths=lengths)
    np.testing.assert_allclose(report.advantages["gdpo_verl"], [*expected[0], *expected[1, :2]], atol=1e-12)
    nemo = run_check(spec, lines, engine="nemo_rl").advantages["gdpo_nemo_rl"]
    np.testing.assert_allclose(nemo, [*gdpo_nemo_rl(grid, leave_one_out=False)[0],
                                      *gdpo_nemo_rl(grid, leave_one_out=False)[1, :2]], atol=1e-12)
    assert report.to_json()["engine"] == "verl"


def test_check_cli_engine_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = ROOT / "specs" / "samples" / "quickstart.jsonl"
    assert main(["check", str(ROOT / "specs" / "quickstart.yaml"), str(samples), "--json", "--engine", "verl"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "verl" and set(out["samples"][0]["advantages"]) == {"grpo", "gdpo", "gdpo_verl"}
