"""rewardkit's advantages equal TRL's, computed by TRL's own code.

TRL (>= 1.x) computes advantages inline in `GRPOTrainer._generate_and_score_completions`
(trl/trainer/grpo_trainer.py): the block that starts at `unscorable_mask = ...` and ends at
`advantages = torch.nan_to_num(advantages, nan=0.0)`. There is no standalone function to call, so
`_trl_advantages` below takes that block out of the *installed* TRL source (via `ast`), compiles it,
and runs it on a reward tensor, with a stand-in `self` that only carries the four attributes the
block reads (`multi_objective_aggregation`, `scale_rewards`, `reward_weights`, `reward_funcs`) and
TRL's own `nanstd` (trl/trainer/utils.py). Any change to TRL's formula therefore shows up here.
`test_trainer_end_to_end` additionally runs a real `GRPOTrainer` (tiny random model, no download)
through `_generate_and_score_completions`, including `_calculate_rewards`' `None` -> NaN step.

TRL hard-codes eps = 1e-4, so rewardkit is called with `eps=1e-4`.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from types import CodeType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
grpo_trainer = pytest.importorskip("trl.trainer.grpo_trainer")

from rewardkit.advantages import Method, compute_advantages  # noqa: E402

TRL_EPS = 1e-4
TOL = 1e-6

# rewardkit method -> (TRL multi_objective_aggregation, TRL scale_rewards, rewardkit batch_norm)
TRL_SETTINGS: dict[Method, tuple[str, str]] = {
    "gdpo": ("normalize_then_sum", "group"),  # scale_rewards is not read on this path
    "grpo": ("sum_then_normalize", "group"),
    "grpo_no_std": ("sum_then_normalize", "none"),
}


def _is_assign_to(stmt: ast.stmt, name: str) -> bool:
    return isinstance(stmt, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == name for t in stmt.targets
    )


def _trl_advantage_block() -> CodeType:
    """Compile the advantage block of the installed TRL's `_generate_and_score_completions`."""
    method = grpo_trainer.GRPOTrainer._generate_and_score_completions
    source = textwrap.dedent(inspect.getsource(method))
    func = ast.parse(source).body[0]
    assert isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
    body = func.body
    starts = [i for i, s in enumerate(body) if _is_assign_to(s, "unscorable_mask")]
    ends = [
        i for i, s in enumerate(body) if _is_assign_to(s, "advantages") and "nan_to_num" in ast.unparse(s)
    ]
    assert starts and ends and starts[0] < ends[0], (
        "TRL's advantage block (unscorable_mask ... nan_to_num) was not found in "
        f"{grpo_trainer.__file__}; TRL changed, re-read it and update this test"
    )
    block = ast.Module(body=body[starts[0] : ends[0] + 1], type_ignores=[])
    text = ast.unparse(block)
    assert "multi_objective_aggregation" in text and "normalize_then_sum" in text
    return compile(block, grpo_trainer.__file__, "exec")


TRL_BLOCK = _trl_advantage_block()


def _trl_advantages(rewards: Any, weights: Any, aggregation: str, scale_rewards: str) -> Any:
    """Run TRL's block on rewards [groups, group_size, n_rewards]; returns [groups, group_size]."""
    g, n, k = rewards.shape
    namespace: dict[str, Any] = {
        "torch": torch,
        "nanstd": grpo_trainer.nanstd,
        "device": rewards.device,
        "num_generations": n,
        # TRL's rewards_per_func is [groups * group_size, n_rewards], groups contiguous.
        "rewards_per_func": rewards.reshape(g * n, k).clone(),
        "self": SimpleNamespace(
            multi_objective_aggregation=aggregation,
            scale_rewards=scale_rewards,
            reward_weights=torch.as_tensor(weights, dtype=rewards.dtype),
            reward_funcs=[None] * k,
        ),
    }
    exec(TRL_BLOCK, namespace)
    return namespace["advantages"].reshape(g, n)


def _random_rewards(rng: np.random.Generator, g: int, n: int, k: int, nan_frac: float) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:  # binary rewards: many ties and all-equal groups
        values = rng.integers(0, 2, size=(g, n, k)).astype(np.float64)
    elif kind == 1:  # continuous, different scales per reward
        values = rng.normal(size=(g, n, k)) * rng.uniform(0.1, 10, size=k) + rng.normal(size=k)
    else:  # a few discrete levels
        values = rng.integers(0, 4, size=(g, n, k)) / 3.0
    values[rng.random((g, n, k)) < nan_frac] = np.nan
    if rng.random() < 0.3:  # a whole unscorable rollout
        values[rng.integers(g), rng.integers(n), :] = np.nan
    if rng.random() < 0.2:  # a group where one reward is left out everywhere
        values[rng.integers(g), :, rng.integers(k)] = np.nan
    return values


CASES = [
    # (seed, groups, group_size, n_rewards, nan fraction)
    (seed, g, n, k, nan)
    for seed, (g, n, k, nan) in enumerate(
        [(4, 8, 2, 0.0), (4, 8, 2, 0.1), (8, 4, 3, 0.2), (2, 16, 1, 0.1), (16, 2, 4, 0.3)]
        + [(3, 5, 3, 0.5), (1, 8, 3, 0.1), (6, 6, 2, 0.0), (5, 1, 2, 0.1), (7, 3, 5, 0.25)]
    )
]


@pytest.mark.parametrize("method", list(TRL_SETTINGS))
@pytest.mark.parametrize("seed,g,n,k,nan_frac", CASES)
def test_matches_trl_float64(method: Method, seed: int, g: int, n: int, k: int, nan_frac: float) -> None:
    rng = np.random.default_rng(seed)
    rewards = _random_rewards(rng, g, n, k, nan_frac)
    weights = rng.uniform(0.2, 2.0, size=k).round(2)
    aggregation, scale = TRL_SETTINGS[method]
    expected = _trl_advantages(torch.from_numpy(rewards), weights, aggregation, scale).numpy()
    for given in (rewards, torch.from_numpy(rewards)):  # numpy path and torch path
        got = compute_advantages(given, weights, method=method, eps=TRL_EPS)
        got = got.numpy() if isinstance(got, torch.Tensor) else got
        assert got.shape == (g, n)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("method", list(TRL_SETTINGS))
def test_matches_trl_float32_like_the_trainer(method: Method) -> None:
    """TRL's trainer holds rewards in float32; rewardkit on float32 tensors agrees to 1e-6."""
    rng = np.random.default_rng(1234)
    aggregation, scale = TRL_SETTINGS[method]
    for _ in range(50):
        g, n, k = int(rng.integers(1, 9)), int(rng.integers(2, 9)), int(rng.integers(1, 5))
        rewards = torch.from_numpy(_random_rewards(rng, g, n, k, 0.15)).to(torch.float32)
        weights = rng.uniform(0.2, 2.0, size=k).round(2)
        expected = _trl_advantages(rewards, weights, aggregation, scale)
        got = compute_advantages(rewards, weights, method=method, eps=TRL_EPS)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=0, atol=TOL)


def test_trl_block_really_differs_between_methods() -> None:
    """Guard against a vacuous comparison: the three TRL settings give different numbers here."""
    rewards = torch.tensor([[[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]])
    results = [_trl_advantages(rewards, [1.0, 1.0], *TRL_SETTINGS[m]) for m in TRL_SETTINGS]
    assert not torch.allclose(results[0], results[1])
    assert not torch.allclose(results[1], results[2])


def _tiny_trainer(
    tmp_path: Any,
    method: Method,
    weights: list[float],
    groups: int,
    group_size: int,
    script: dict[str, np.ndarray],
) -> Any:
    """A real GRPOTrainer over a tiny random Qwen2 and a word-level tokenizer built in memory."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    datasets = pytest.importorskip("datasets")
    from trl import GRPOConfig, GRPOTrainer

    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{f"w{i}": i + 3 for i in range(61)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    model = transformers.Qwen2ForCausalLM(config)

    def reward_func(k: int) -> Any:
        # TRL calls each reward function with the whole batch; it returns the scripted column,
        # with None where the script has NaN (TRL turns None into NaN in `_calculate_rewards`).
        def reward(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
            column = script["values"][:, k]
            assert len(column) == len(completions)
            return [None if np.isnan(v) else float(v) for v in column]

        reward.__name__ = f"reward_{k}"
        return reward

    aggregation, scale = TRL_SETTINGS[method]
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=groups * group_size,
        num_generations=group_size,
        max_completion_length=4,
        report_to="none",
        use_cpu=True,
        multi_objective_aggregation=aggregation,
        scale_rewards=scale,
        reward_weights=weights,
        save_strategy="no",
    )
    dataset = datasets.Dataset.from_dict({"prompt": [f"w{i} w{i + 1}" for i in range(groups)]})
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward_func(k) for k in range(len(weights))],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.model.train()  # type: ignore[union-attr]
    return trainer


@pytest.mark.parametrize("method", list(TRL_SETTINGS))
def test_trainer_end_to_end(tmp_path: Any, method: Method) -> None:
    """The advantages a real GRPOTrainer step computes equal rewardkit's, None/NaN included."""
    groups, group_size, weights = 3, 4, [1.0, 0.5, 2.0]
    script: dict[str, np.ndarray] = {}
    trainer = _tiny_trainer(tmp_path, method, weights, groups, group_size, script)
    rng = np.random.default_rng(7)
    for trial in range(3):
        values = rng.integers(0, 3, size=(groups * group_size, len(weights))).astype(np.float64)
        values[rng.random(values.shape) < 0.2] = np.nan
        values[trial, :] = np.nan  # one rollout every reward function gave up on
        script["values"] = values
        # Inputs as TRL's RepeatSampler lays them out: each prompt repeated group_size times.
        inputs = [{"prompt": f"w{g} w{g + 1}"} for g in range(groups) for _ in range(group_size)]
        out = trainer._generate_and_score_completions(inputs)
        expected = out["advantages"].reshape(groups, group_size)
        rewards = torch.tensor(values.reshape(groups, group_size, len(weights)), dtype=torch.float32)
        got = compute_advantages(rewards, weights, method=method, eps=TRL_EPS)
        torch.testing.assert_close(got, expected, rtol=0, atol=TOL)
        assert expected.reshape(-1)[trial] == 0  # the unscorable rollout
