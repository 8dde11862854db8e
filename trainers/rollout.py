"""Rollout engines: turn prompt token ids into `group_size` sampled completions each.

Two engines with one interface. `TransformersEngine` calls the policy's own `generate` (works
everywhere, no weight copy). `VLLMEngine` runs a colocated vLLM `LLM` on the GPU and receives the
policy's weights after every update (`sync`), which is what makes its samples on-policy.
Completions are token ids cut after the first end-of-sequence token (kept: the policy must learn
to stop), so the trainer scores and trains on exactly the tokens that were sampled.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass(frozen=True)
class SamplingSettings:
    """What an engine needs to know to sample; greedy ignores temperature/top-p/top-k."""

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    greedy: bool = False


class Engine(Protocol):
    def generate(
        self, prompts: Sequence[list[int]], n: int, sampling: SamplingSettings, seed: int
    ) -> list[list[int]]:
        """`n` completions per prompt, prompt-major: completions of prompt i at [i*n, (i+1)*n)."""
        ...

    def sync(self, model: torch.nn.Module) -> None:
        """Make the engine sample from `model`'s current weights."""
        ...


def cut_at_eos(tokens: Sequence[int], eos_ids: set[int], pad_id: int | None) -> list[int]:
    """Tokens up to and including the first end-of-sequence token; trailing padding dropped."""
    out: list[int] = []
    for tok in tokens:
        out.append(int(tok))
        if tok in eos_ids:
            return out
    while out and pad_id is not None and out[-1] == pad_id and pad_id not in eos_ids:
        out.pop()
    return out


def left_pad(seqs: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length prompts, padded on the left so that generation continues them."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s) :] = 1
    return ids, mask


class TransformersEngine:
    """Sampling with `model.generate`, batched over all prompts x group members."""

    def __init__(self, model: torch.nn.Module, eos_ids: set[int], pad_id: int) -> None:
        self.model: Any = model  # a transformers model: `generate` is not on nn.Module
        self.eos_ids = eos_ids
        self.pad_id = pad_id

    def sync(self, model: torch.nn.Module) -> None:
        self.model = model  # same object: generation already sees the new weights

    @torch.no_grad()
    def generate(
        self, prompts: Sequence[list[int]], n: int, sampling: SamplingSettings, seed: int
    ) -> list[list[int]]:
        device = next(self.model.parameters()).device
        repeated = [p for p in prompts for _ in range(n)]
        ids, mask = left_pad(repeated, self.pad_id)
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "pad_token_id": self.pad_id,
            "eos_token_id": sorted(self.eos_ids),
        }
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(
                do_sample=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k or None,
            )
        was_training = self.model.training
        self.model.eval()
        torch.manual_seed(seed)
        out = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
        self.model.train(was_training)
        new = out[:, ids.shape[1] :].tolist()
        return [cut_at_eos(row, self.eos_ids, self.pad_id) for row in new]


class VLLMEngine:
    """A colocated vLLM engine in this process; `sync` pushes the policy's weights into it.

    Needs vLLM and a CUDA GPU. Weights go over with the model's own `load_weights` (the same
    path TRL's colocate mode uses), so no checkpoint is written per step.
    """

    def __init__(self, model_path: str, *, dtype: str, gpu_memory_utilization: float, max_model_len: int,
                 seed: int, eos_ids: set[int]) -> None:
        # In-process executor: the engine's model lives in this process, reachable for weight loads.
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("LOCAL_RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
        from vllm import LLM

        self.eos_ids = eos_ids
        self.llm = LLM(
            model=model_path,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=seed,
            distributed_executor_backend="external_launcher",
            enable_prefix_caching=True,
        )

    def _inner_model(self) -> Any:
        executor = self.llm.llm_engine.model_executor
        worker = executor.driver_worker
        for path in ("model_runner", "worker.model_runner"):
            obj: Any = worker
            try:
                for part in path.split("."):
                    obj = getattr(obj, part)
                return obj.model
            except AttributeError:
                continue
        raise RuntimeError("cannot reach the vLLM model for weight sync; this vLLM version is not supported")

    @torch.no_grad()
    def sync(self, model: torch.nn.Module) -> None:
        inner = self._inner_model()
        inner.load_weights((name, param.data) for name, param in model.named_parameters())
        self.llm.reset_prefix_cache()

    def generate(
        self, prompts: Sequence[list[int]], n: int, sampling: SamplingSettings, seed: int
    ) -> list[list[int]]:
        from vllm import SamplingParams

        if sampling.greedy:
            params = SamplingParams(n=n, temperature=0.0, max_tokens=sampling.max_new_tokens, seed=seed,
                                    stop_token_ids=sorted(self.eos_ids))
        else:
            params = SamplingParams(
                n=n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k if sampling.top_k > 0 else -1,
                max_tokens=sampling.max_new_tokens,
                seed=seed,
                stop_token_ids=sorted(self.eos_ids),
            )
        requests = [{"prompt_token_ids": list(p)} for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [cut_at_eos(list(c.token_ids), self.eos_ids, None) for o in outputs for c in o.outputs]


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def choose_backend(requested: str, device: torch.device) -> str:
    """`auto` picks vLLM only where it can run: installed, and the policy is on a CUDA device."""
    if requested == "vllm":
        if not vllm_available():
            raise RuntimeError("backend 'vllm' needs the vllm package and a CUDA GPU (pip install 'rewardkit[vllm]')")
        return "vllm"
    if requested == "auto" and device.type == "cuda" and vllm_available():
        return "vllm"
    return "transformers"
