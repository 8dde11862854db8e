"""The vLLM rollout engine: rewardkit's side of it, and the real thing where a GPU and vLLM exist.

vLLM needs a CUDA GPU, which CI does not have. `StandInLLM` is installed as the `vllm` module and
offers exactly the surface `VLLMEngine` touches (`LLM(...)`, `generate` with `SamplingParams`,
the driver worker's `model.load_weights`, `reset_prefix_cache`) over the real tiny transformer, so
these tests check what rewardkit controls: the sampling settings it asks for, prompt-major
output cut at the end token, and that the trainer pushes every weight after each update, so the
engine samples the updated policy. `test_real_vllm_follows_the_policy` runs the same check
against vLLM itself and skips here, saying why.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardkit.trainers import gdpo, rollout  # noqa: E402
from rewardkit.trainers.rollout import SamplingSettings, VLLMEngine, sample_loop  # noqa: E402
from rewardkit.trainers.tiny_model import build_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "specs" / "demo.yaml")


class StandInParams:
    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)


class _WeightHolder:
    """Where vLLM keeps its own copy of the model; `load_weights` is its weight-loading entry."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.loads = 0

    def load_weights(self, weights: Any) -> None:
        own = dict(self.model.named_parameters())
        for name, tensor in weights:
            own[name].data.copy_(tensor)
        self.loads += 1


class StandInLLM:
    """vLLM's in-process `LLM`, reduced to what rewardkit calls; its own copy of the weights."""

    instances: list[StandInLLM] = []

    def __init__(self, model: str, **kwargs: Any) -> None:
        from transformers import AutoModelForCausalLM

        self.kwargs = kwargs
        self.inner = _WeightHolder(AutoModelForCausalLM.from_pretrained(model).eval())
        runner = types.SimpleNamespace(model=self.inner)
        worker = types.SimpleNamespace(model_runner=runner)
        self.llm_engine = types.SimpleNamespace(model_executor=types.SimpleNamespace(driver_worker=worker))
        self.requests: list[tuple[list[dict[str, Any]], StandInParams]] = []
        self.prefix_resets = 0
        StandInLLM.instances.append(self)

    def reset_prefix_cache(self) -> None:
        self.prefix_resets += 1

    def generate(self, requests: list[dict[str, Any]], params: StandInParams, use_tqdm: bool = True) -> list[Any]:
        self.requests.append((requests, params))
        settings = SamplingSettings(params.max_tokens, params.temperature or 1.0, getattr(params, "top_p", 1.0),
                                    max(0, getattr(params, "top_k", 0)), greedy=params.temperature == 0.0)
        prompts = [r["prompt_token_ids"] for r in requests]
        # Never stops by itself (vLLM returns the stop token and nothing after; the engine must cut).
        samples = sample_loop(self.inner.model, prompts, params.n, settings, params.seed, {-1}, 0)
        return [types.SimpleNamespace(outputs=[types.SimpleNamespace(token_ids=samples[i * params.n + j])
                                               for j in range(params.n)]) for i in range(len(prompts))]


@pytest.fixture
def stand_in_vllm(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[StandInLLM]]:
    module = types.ModuleType("vllm")
    module.LLM = StandInLLM  # type: ignore[attr-defined]
    module.SamplingParams = StandInParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    StandInLLM.instances.clear()
    environ = dict(os.environ)  # the engine sets torch.distributed's RANK, WORLD_SIZE, ... for vLLM
    yield StandInLLM
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def test_engine_asks_for_the_settings_and_cuts_at_the_end_token(stand_in_vllm: type[StandInLLM], tiny: str) -> None:
    engine = VLLMEngine(tiny, dtype="float32", gpu_memory_utilization=0.3, max_model_len=64, seed=0, eos_ids={3})
    llm = stand_in_vllm.instances[-1]
    assert llm.kwargs["distributed_executor_backend"] == "external_launcher"  # in-process: weights reachable
    sampling = SamplingSettings(max_new_tokens=12, temperature=0.7, top_p=0.9, top_k=0)
    out = engine.generate([[4, 10, 5, 6], [4, 11, 7, 6, 6]], 3, sampling, seed=11)
    requests, params = llm.requests[-1]
    assert requests == [{"prompt_token_ids": [4, 10, 5, 6]}, {"prompt_token_ids": [4, 11, 7, 6, 6]}]
    assert (params.n, params.temperature, params.top_p, params.top_k, params.max_tokens, params.seed) == (
        3, 0.7, 0.9, -1, 12, 11)  # vLLM spells "no top-k" as -1
    assert params.stop_token_ids == [3]
    assert len(out) == 6  # prompt-major: 3 of the first prompt, then 3 of the second
    for completion in out:
        assert 3 not in completion[:-1] and len(completion) <= 12


def test_trainer_syncs_every_weight_after_each_update(stand_in_vllm: type[StandInLLM], tiny: str,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the vLLM backend, the engine holds its own weights; after an update it must sample
    exactly what the updated policy samples (greedy outputs agree token for token)."""
    monkeypatch.setattr(rollout, "vllm_available", lambda: True)
    run = gdpo.setup(DEMO, overrides={"model": tiny, "output_dir": str(tmp_path / "run"), "progress": False,
                                      "backend": "vllm", "kl_coef": 0.0, "lr": 0.05, "max_new_tokens": 8})
    assert run.backend == "vllm" and isinstance(run.engine, VLLMEngine)
    llm = stand_in_vllm.instances[-1]
    prompts = gdpo._prompt_ids(run, run.rows[:4])
    greedy = SamplingSettings(max_new_tokens=8, greedy=True)

    def policy_greedy() -> list[list[int]]:
        return sample_loop(run.model, prompts, 1, greedy, 0, gdpo._eos_ids(run.model, run.tokenizer),
                           run.tokenizer.pad_token_id)

    before = policy_greedy()
    assert run.engine.generate(prompts, 1, greedy, 0) == before
    for step in range(3):
        rollouts = gdpo.generate(run, run.rows[:4], 4, seed=step)
        gdpo.update(run, rollouts, np.random.default_rng(step).standard_normal((4, 4)))
    assert llm.inner.loads == 3 and llm.prefix_resets == 3  # once per update, stale prefixes dropped
    ours = dict(run.model.named_parameters())
    theirs = dict(llm.inner.model.named_parameters())
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    after = policy_greedy()
    assert after != before  # the policy really moved, so agreement below is not trivial
    assert run.engine.generate(prompts, 1, greedy, 0) == after


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None or not torch.cuda.is_available(),
                    reason="needs vLLM and a CUDA GPU (neither is on the CI machine)")
def test_real_vllm_follows_the_policy(tiny: str, tmp_path: Path) -> None:
    run = gdpo.setup(DEMO, overrides={"model": tiny, "output_dir": str(tmp_path / "run"), "progress": False,
                                      "backend": "vllm", "device": "cuda", "dtype": "float32",  # greedy ties
                                      "kl_coef": 0.0, "lr": 0.05, "max_new_tokens": 8})
    prompts = gdpo._prompt_ids(run, run.rows[:4])
    greedy = SamplingSettings(max_new_tokens=8, greedy=True)
    eos = gdpo._eos_ids(run.model, run.tokenizer)
    for step in range(2):
        rollouts = gdpo.generate(run, run.rows[:4], 4, seed=step)
        gdpo.update(run, rollouts, np.random.default_rng(step).standard_normal((4, 4)))
    expected = sample_loop(run.model, prompts, 1, greedy, 0, eos, run.tokenizer.pad_token_id)
    assert run.engine.generate(prompts, 1, greedy, 0) == expected
