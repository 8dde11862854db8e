"""Rollout engines: turn prompt token ids into `group_size` sampled completions each.

Two engines with one interface. `TransformersEngine` samples from the policy itself (works
everywhere, no weight copy) with `sample_loop`, a plain cached decoding loop; `transformers`
`generate` stays available as its `sampler="generate"` reference. `VLLMEngine` runs a colocated vLLM
`LLM` on the GPU and receives the policy's weights after every update (`sync`), which is what makes
its samples on-policy. Completions are token ids cut after the first end-of-sequence token (kept:
the policy must learn to stop), so the trainer scores and trains on exactly the tokens that were
sampled.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

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


def pick_tokens(logits: torch.Tensor, sampling: SamplingSettings, generator: torch.Generator) -> torch.Tensor:
    """One token per row from next-token logits `[rows, vocab]`, with `generate`'s semantics.

    Greedy (or top-k 1) is the argmax. Otherwise logits are divided by the temperature, then cut to
    the top k, then to the nucleus: the most probable tokens until their mass reaches top-p, the
    token that crosses it included (the rule of transformers' top-p warper), then sampled.
    """
    if sampling.greedy or sampling.top_k == 1:
        return logits.argmax(-1)
    scores = logits.float() / sampling.temperature
    if 0 < sampling.top_k < scores.shape[-1]:
        kth = torch.topk(scores, sampling.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if sampling.top_p < 1.0:
        ordered, order = torch.sort(scores, dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        mass_before = probs.cumsum(-1) - probs  # 0 for the most probable token: it always stays
        drop = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, order, mass_before >= sampling.top_p)
        scores = scores.masked_fill(drop, float("-inf"))
    # The exponential race: argmax(p / E) with E ~ Exp(1) draws index i with probability p_i. It is
    # what torch.multinomial does for one sample, same draws, minus that call's overhead.
    probs = torch.softmax(scores, dim=-1)
    return probs.div_(torch.empty_like(probs).exponential_(generator=generator)).argmax(-1)


# Finished rows leave the batch (and the cache) once they are an eighth of it: copying the cache
# for every single finished row cost more than it saved (10% slower at 8 new tokens, 6% at 64).
COMPACT_AT = 8


def _new_cache(model: Any) -> Any:
    """An empty KV cache of the kind the model's config asks for (sliding-window layers included)."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # transformers before the config-aware cache
        return DynamicCache()


def _cache_kwarg(model: Any) -> str:
    """transformers 5.2x renamed the forward's `past_key_values` to `cache` (the old name warns)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft's forward takes **kwargs
    return "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"


@torch.inference_mode()
def sample_loop(model: Any, prompts: Sequence[list[int]], n: int, sampling: SamplingSettings, seed: int,
                eos_ids: set[int], pad_id: int) -> list[list[int]]:
    """`n` completions per prompt (prompt-major) with one cached forward per new token.

    Why not `generate`: on a small policy its per-token bookkeeping (logits processors, stopping
    criteria, cache and kwargs handling) costs about as much as the forward itself. This loop
    does only what the trainer needs: each distinct prompt is prefilled once and its cache is
    repeated `n` times; rows that emitted an end token leave the batch (and the cache) in bulk,
    so later steps run on (mostly) live rows only. Positions are `cumsum(mask) - 1` over the
    left-padded prompt: each real token gets the position the update's unpadded layout gives it.
    Sampling draws from a private generator seeded with `seed`, so samples depend only on
    (weights, prompts, settings, seed) and the global RNG is left alone. It runs in inference
    mode (no autograd bookkeeping at all: 7-8% faster than `no_grad` on the tiny model); a buffer
    the model rebuilds while sampling (dynamic RoPE) becomes an inference tensor, which training
    reads but never saves or changes in place (tested).
    """
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    # Prompts of one length need no mask at all: causal attention alone is right, and the model
    # then skips building a mask for every new token.
    padded = bool((mask == 0).any())
    cache = _new_cache(model)
    cache_arg = {_cache_kwarg(model): cache}  # filled in place by every forward
    out = model(input_ids=ids, attention_mask=mask if padded else None, position_ids=positions, use_cache=True,
                logits_to_keep=1, **cache_arg)
    logits = out.logits[:, -1]
    next_pos = positions[:, -1:] + 1
    if n > 1:
        cache.batch_repeat_interleave(n)
        logits, mask, next_pos = (t.repeat_interleave(n, dim=0) for t in (logits, mask, next_pos))

    rows = len(prompts) * n
    steps = sampling.max_new_tokens
    generator = torch.Generator(device=device).manual_seed(seed)
    eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=device)
    tokens = torch.full((rows, steps), pad_id, dtype=torch.long, device=device)
    live = torch.arange(rows, device=device)  # original row of each row still in the batch
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    for step in range(steps):
        nxt = pick_tokens(logits, sampling, generator)
        tokens[live, step] = nxt  # what a finished row draws later is never read: cut at its end token
        if step == steps - 1:
            break
        done |= torch.isin(nxt, eos)
        finished = int(done.sum())
        if finished == len(done):
            break
        if finished * COMPACT_AT >= len(done):
            keep = (~done).nonzero().squeeze(-1)
            live, nxt, mask, next_pos, done = live[keep], nxt[keep], mask[keep], next_pos[keep], done[keep]
            cache.batch_select_indices(keep)
        if padded:
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        out = model(input_ids=nxt.unsqueeze(-1), attention_mask=mask if padded else None, position_ids=next_pos,
                    use_cache=True, **cache_arg)
        logits = out.logits[:, -1]
        next_pos = next_pos + 1
    # No filler to strip: a row is either cut at its end token or ran the whole budget, so a pad
    # token inside a completion was sampled and stays (as on the vLLM path).
    return [cut_at_eos(row, eos_ids, None) for row in tokens.tolist()]


class TransformersEngine:
    """Sampling from the policy in this process, batched over all prompts x group members.

    `sampler="loop"` is `sample_loop`; `"static"` is `static_decode.StaticDecoder` (fixed shapes, its
    decode step compiled into CUDA graphs on a GPU); `"generate"` calls `model.generate` (the
    reference both loops are tested against: greedy outputs agree token for token). `"auto"` (the
    default) takes the loop on CPU, where it is 35-40% faster than `generate`, and `generate` on a
    GPU, where the loop's per-token Python work made a 0.5B model's rollouts 1.7x slower on an H100
    (bench/RESULTS.md). `"static"` is not yet measured on a GPU (bench/gpu_rollout.py measures it),
    so `auto` does not pick it.
    """

    def __init__(self, model: torch.nn.Module, eos_ids: set[int], pad_id: int,
                 sampler: Literal["auto", "loop", "static", "generate"] = "auto") -> None:
        self.model: Any = model  # a transformers model: `generate` is not on nn.Module
        self.eos_ids = eos_ids
        self.pad_id = pad_id
        self.sampler = sampler
        self._static: Any = None  # the StaticDecoder, made on first use: it keeps compiled steps

    def sync(self, model: torch.nn.Module) -> None:
        self.model = model  # same object: sampling already sees the new weights

    def generate(
        self, prompts: Sequence[list[int]], n: int, sampling: SamplingSettings, seed: int
    ) -> list[list[int]]:
        was_training = self.model.training
        self.model.eval()
        try:
            sampler = self.sampler
            if sampler == "auto":
                on_cpu = next(self.model.parameters()).device.type == "cpu"
                sampler = "loop" if on_cpu else "generate"
            if sampler == "generate":
                return self._hf_generate(prompts, n, sampling, seed)
            if sampler == "static":
                if self._static is None:
                    from .static_decode import StaticDecoder

                    self._static = StaticDecoder(self.model)
                return list(self._static.generate(prompts, n, sampling, seed, self.eos_ids, self.pad_id))
            return sample_loop(self.model, prompts, n, sampling, seed, self.eos_ids, self.pad_id)
        finally:
            self.model.train(was_training)

    @torch.no_grad()
    def _hf_generate(
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
        torch.manual_seed(seed)
        out = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
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
