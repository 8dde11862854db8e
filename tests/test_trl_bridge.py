"""The TRL bridge: a spec drives TRL's real GRPOTrainer, and TRL's advantages equal rewardkit's.

`test_trl_trainer_matches_rewardkit` trains the tiny local model for two steps with TRL's
`GRPOTrainer` on CPU, its rewards coming from `rewardkit.integrations.trl` (a gated reward, a
reward that errors on some completions, weights), for each advantage method. A subclass captures,
per batch, the reward matrix TRL built from the bridge's functions and the advantages TRL computed
from it; the test then checks that

- the rewards equal the spec scored directly on the same completions (gates honoured, errors
  reaching TRL as None -> NaN),
- TRL's advantages equal `rewardkit.advantages.compute_advantages` on those rewards,
- the spec was scored once per batch, not once per reward function.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardkit.advantages import compute_advantages
from rewardkit.integrations.trl import (
    UnsupportedByTRL,
    build_samples,
    build_trl_trainer,
    grpo_config_kwargs,
    trl_reward_functions,
)
from rewardkit.spec import load_spec, load_spec_text
from rewardkit.trainers.tiny_model import build_tiny_model

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")
pytest.importorskip("datasets")

GROUP = 4
PROMPTS_PER_STEP = 2
STEPS = 2

# Rewards a random tiny model gets right some of the time, so every column varies.
REWARDS_MODULE = '''
def tagged(sample):
    return (1.0, "has <a>") if "<a>" in sample["completion"] else (0.0, "no <a>")

def digits(sample):
    words = sample["completion"].split()
    return sum(w.isdigit() for w in words) / max(1, len(words))

def flaky(sample):
    if "?" in sample["completion"]:
        raise ValueError("completion contains a question mark")
    return float(len(sample["completion"].split()) % 3)
'''

SPEC = """\
version: 1
name: trl-bridge
rewards:
  - name: tagged
    verifier: python
    args: {{function: "rk_trl_bridge_rewards:tagged"}}
  - name: digits
    verifier: python
    args: {{function: "rk_trl_bridge_rewards:digits"}}
    weight: 0.5
  - name: correct
    verifier: exact_match
    args: {{reference: answer, extract: regex, pattern: '(\\d)'}}
    when: tagged >= 1
    weight: 2.0
  - name: flaky
    verifier: python
    args: {{function: "rk_trl_bridge_rewards:flaky"}}
    on_error: exclude
advantage: {{method: {method}}}
train:
  model: model
  data: data.jsonl
  prompts_per_step: {prompts}
  group_size: {group}
  max_new_tokens: 12
  steps: {steps}
  lr: 0.001
  device: cpu
  seed: 0
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the tiny model, the prompt data and the reward functions' module."""
    root = tmp_path_factory.mktemp("trl_bridge")
    build_tiny_model(root / "model", seed=0)
    rows = [{"prompt": f"say the number {d} :", "answer": str(d)} for d in range(10)]
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "rk_trl_bridge_rewards.py").write_text(REWARDS_MODULE, encoding="utf-8")
    return root


def _write_spec(workdir: Path, method: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(workdir))
    path = workdir / f"spec_{method}.yaml"
    path.write_text(SPEC.format(method=method, prompts=PROMPTS_PER_STEP, group=GROUP, steps=STEPS),
                    encoding="utf-8")
    return path


class CapturingTrainer(trl.GRPOTrainer):
    """GRPOTrainer that records, per batch, what the rewards were scored on, the reward matrix TRL
    built from the reward functions, and the advantages TRL computed from it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[dict[str, Any]] = []
        self._pending: dict[str, Any] = {}

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # type: ignore[no-untyped-def]
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._pending = {"inputs": [dict(x) for x in inputs], "prompts": list(prompts),
                         "completions": list(completions), "rewards": rewards.detach().clone()}
        return rewards

    def _generate_and_score_completions(self, inputs):  # type: ignore[no-untyped-def]
        output = super()._generate_and_score_completions(inputs)
        self.batches.append({**self._pending, "advantages": output["advantages"].detach().clone()})
        return output


@pytest.mark.parametrize("method", ["gdpo", "grpo", "grpo_no_std"])
def test_trl_trainer_matches_rewardkit(method: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(_write_spec(workdir, method, monkeypatch))
    trainer = build_trl_trainer(
        spec, trainer_cls=CapturingTrainer, output_dir=str(workdir / f"out_{method}"),
        report_to="none", logging_steps=1, save_strategy="no", disable_tqdm=True,
    )
    trainer.train()

    assert len(trainer.batches) == STEPS
    scorer = trainer.reward_funcs[0].scorer
    assert scorer.scoring_calls == STEPS, "the spec must be scored once per batch, not once per reward"

    k = len(spec.rewards)
    names = spec.reward_names
    seen_gated = seen_open = seen_error = 0
    for batch in trainer.batches:
        trl_rewards = batch["rewards"]  # [n, k] float32, NaN where a function returned None
        n = trl_rewards.shape[0]
        assert n == PROMPTS_PER_STEP * GROUP and trl_rewards.shape[1] == k

        # The rewards TRL trained on are the spec's scores on the same completions.
        samples = [{**{key: v for key, v in row.items() if key != "prompt"}, "prompt": p, "completion": c}
                   for row, p, c in zip(batch["inputs"], batch["prompts"], batch["completions"], strict=True)]
        table = spec.score(samples)
        np.testing.assert_array_equal(np.isnan(trl_rewards.numpy()), np.isnan(table.values))
        np.testing.assert_allclose(trl_rewards.numpy(), table.values.astype(np.float32), equal_nan=True)

        # Gates: `correct` is the `otherwise` value (0) wherever `tagged` is 0.
        tagged, correct, flaky = (trl_rewards[:, names.index(x)] for x in ("tagged", "correct", "flaky"))
        closed = tagged < 1
        assert torch.all(correct[closed] == 0.0)
        assert all(table.cells[i][names.index("correct")].gated == bool(closed[i]) for i in range(n))
        seen_gated += int(closed.sum())
        seen_open += int((~closed).sum())
        # Errors: a completion with "?" made `flaky` raise; TRL received None (NaN) for it.
        has_q = torch.tensor(["?" in c for c in batch["completions"]])
        assert torch.equal(torch.isnan(flaky), has_q)
        seen_error += int(has_q.sum())

        # TRL's advantages are rewardkit's, on the same [groups, group_size, rewards] tensor.
        ours = compute_advantages(trl_rewards.view(-1, GROUP, k), spec.weights, method=method,
                                  eps=spec.config.advantage.eps, batch_norm=spec.config.advantage.batch_norm)
        torch.testing.assert_close(batch["advantages"], ours.reshape(-1), rtol=0, atol=1e-5)
        assert float(batch["advantages"].abs().max()) > 0.1, "degenerate batch: nothing was compared"

    # The run exercised both sides of the gate and the error path, so the checks above had teeth.
    assert seen_gated and seen_open and seen_error, (seen_gated, seen_open, seen_error)
    logged = {key for entry in trainer.state.log_history for key in entry}
    assert {f"rewards/{name}/mean" for name in names} <= logged
    assert "rewardkit/flaky/errors" in logged and "rewardkit/correct/gated" in logged
    spec.close()


def _spec(method: str = "gdpo", eps: float = 1e-4, batch_norm: bool = True) -> Any:
    return load_spec_text(textwrap.dedent(f"""\
        version: 1
        name: t
        rewards:
          - {{name: a, verifier: exact_match, args: {{reference: answer}}}}
          - {{name: b, verifier: exact_match, args: {{reference: answer, extract: last_line}}, weight: 0.25,
             when: a >= 1}}
        advantage: {{method: {method}, eps: {eps}, batch_norm: {str(batch_norm).lower()}}}
        """))


@pytest.mark.parametrize(("method", "aggregation", "scale"), [
    ("gdpo", "normalize_then_sum", "group"),
    ("grpo", "sum_then_normalize", "group"),
    ("grpo_no_std", "sum_then_normalize", "none"),
])
def test_config_kwargs_per_method(method: str, aggregation: str, scale: str) -> None:
    kwargs = grpo_config_kwargs(_spec(method))
    assert kwargs == {"multi_objective_aggregation": aggregation, "scale_rewards": scale,
                      "reward_weights": [1.0, 0.25]}
    config = trl.GRPOConfig(output_dir="unused", use_cpu=True, report_to="none", **kwargs)
    assert config.multi_objective_aggregation == aggregation and config.scale_rewards == scale


def test_settings_trl_cannot_reproduce_are_refused() -> None:
    with pytest.raises(UnsupportedByTRL, match="eps"):
        grpo_config_kwargs(_spec("gdpo", eps=1e-6))
    with pytest.raises(UnsupportedByTRL, match="batch_norm"):
        grpo_config_kwargs(_spec("gdpo", batch_norm=False))
    assert grpo_config_kwargs(_spec("gdpo", eps=1e-6), strict=False)["multi_objective_aggregation"] == (
        "normalize_then_sum")
    assert grpo_config_kwargs(_spec("grpo_no_std", eps=1e-6))["scale_rewards"] == "none"  # eps unused there


def test_train_section_maps_to_grpo_config(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(_write_spec(workdir, "gdpo", monkeypatch))
    kwargs = grpo_config_kwargs(spec)
    assert kwargs["num_generations"] == GROUP
    assert kwargs["per_device_train_batch_size"] == GROUP * PROMPTS_PER_STEP
    assert kwargs["max_completion_length"] == 12 and kwargs["max_steps"] == STEPS
    assert kwargs["use_cpu"] is True and kwargs["learning_rate"] == 0.001
    trl.GRPOConfig(output_dir=str(workdir / "unused"), report_to="none", **kwargs)  # every name exists in TRL


def test_lora_and_checkpointing_reach_the_trl_trainer(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("peft")
    path = _write_spec(workdir, "gdpo", monkeypatch)
    lora_spec = workdir / "spec_lora.yaml"
    lora_spec.write_text(path.read_text(encoding="utf-8").replace(
        "  device: cpu\n", "  device: cpu\n  gradient_checkpointing: true\n  lora: {r: 4, target_modules: [q_proj, v_proj]}\n"),
        encoding="utf-8")
    spec = load_spec(lora_spec)
    assert grpo_config_kwargs(spec)["gradient_checkpointing"] is True
    trainer = build_trl_trainer(spec, output_dir=str(workdir / "out_lora"), report_to="none", disable_tqdm=True)
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    spec.close()


def test_gate_sees_other_rewards_and_columns_are_served_from_one_scoring() -> None:
    spec = _spec("gdpo")
    funcs = trl_reward_functions(spec)
    assert [f.__name__ for f in funcs] == ["a", "b"]
    prompts = ["p1", "p2", "p3"]
    completions = ["x\n7", "7", "y"]
    kwargs = {"answer": ["7", "7", "7"], "trainer_state": object(), "log_metric": lambda name, value: None}
    a = funcs[0](prompts=prompts, completions=completions, **kwargs)
    b = funcs[1](prompts=prompts, completions=completions, **kwargs)
    assert a == [0.0, 1.0, 0.0]
    assert b == [0.0, 1.0, 0.0]  # sample 0's last line is "7", but its gate (a >= 1) is closed
    assert funcs[0].scorer.scoring_calls == 1
    # A new batch (new list objects) is scored again.
    funcs[0](prompts=list(prompts), completions=list(completions), **kwargs)
    assert funcs[0].scorer.scoring_calls == 2


def test_errors_reach_trl_as_none(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(_write_spec(workdir, "gdpo", monkeypatch))
    funcs = trl_reward_functions(spec)
    out = [f(prompts=["q", "q"], completions=["1 ? 2", "<a> 3"], answer=["3", "3"]) for f in funcs]
    by_name = dict(zip(spec.reward_names, out, strict=True))
    assert by_name["flaky"][0] is None and by_name["flaky"][1] is not None and not math.isnan(by_name["flaky"][1])
    assert by_name["correct"] == [0.0, 1.0]


def test_build_samples_keeps_data_columns_only() -> None:
    samples = build_samples(["p"], ["c"], [[5, 6]], {"answer": ["a"], "trainer_state": object(),
                                                      "log_extra": print, "environments": None})
    assert samples == [{"answer": "a", "prompt": "p", "completion": "c", "completion_ids": [5, 6]}]


def test_importing_the_bridge_and_core_does_not_import_torch_or_trl() -> None:
    code = ("import sys, rewardkit.spec, rewardkit.integrations.trl; "
            "bad = [m for m in ('torch', 'trl', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_conversational_batches_are_scored_on_the_assistant_message() -> None:
    funcs = trl_reward_functions(_spec("gdpo"))
    prompts = [[{"role": "user", "content": "say 7"}]] * 2
    completions = [[{"role": "assistant", "content": "7"}], [{"role": "assistant", "content": "8"}]]
    assert funcs[0](prompts=prompts, completions=completions, answer=["7", "7"]) == [1.0, 0.0]


def test_trainer_inputs_are_checked_as_rewardkit_train_checks_them(workdir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The bridge resolves model and data with `rewardkit train`'s code (`rewardkit.train_inputs`),
    so it fails the same way, before loading anything: a path-like model that exists nowhere, a
    row without a field a reward reads."""
    from rewardkit.errors import DataError, TrainSetupError
    from rewardkit.integrations.trl import build_trl_trainer

    text = _write_spec(workdir, "gdpo", monkeypatch).read_text(encoding="utf-8")
    missing_model = tmp_path / "missing_model.yaml"
    missing_model.write_text(text.replace("model: model", "model: ./no_such_model"), encoding="utf-8")
    with pytest.raises(TrainSetupError, match=r"train.model: './no_such_model' not found next to the spec"):
        build_trl_trainer(load_spec(missing_model))
    (tmp_path / "model").symlink_to(workdir / "model")
    (tmp_path / "data.jsonl").write_text('{"prompt": "p"}\n', encoding="utf-8")
    no_answer = tmp_path / "no_answer.yaml"
    no_answer.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match="reward 'correct' needs field 'answer', missing in row 1"):
        build_trl_trainer(load_spec(no_answer))
