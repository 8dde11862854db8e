"""A decode loop with fixed shapes, so that a GPU can replay each new token's forward as one graph.

`sample_loop` (rollout.py) grows its KV cache and shrinks its batch as rows finish: right on a
CPU, but on a GPU every new token then costs hundreds of small kernel launches from Python, and a
0.5B model decodes at a few percent of what the card's memory bandwidth allows. Here every shape
is fixed for the whole call: transformers' `StaticCache` holds `prompt width + max_new_tokens`
positions for every row (the width rounded up to `WIDTH_STEP`, so a training run sees a handful
of shapes), the attention mask is one `[rows, positions]` tensor made before the first token,
finished rows keep decoding (their tokens are cut at the end token afterwards, as in the loop),
and the host reads "all rows done?" only every `DONE_CHECK_EVERY` tokens. On CUDA the decode
step is `torch.compile`d with `mode="reduce-overhead"` (CUDA graphs), and the compiled step and the
cache are kept for the next call of the same shape; elsewhere it runs eagerly, same results.

Sampling is `rollout.pick_tokens` with a private generator seeded by `seed`: the same semantics
as `sample_loop` (greedy = argmax, temperature, top-k, top-p, end tokens), tested with the same
tests. The draws differ from the loop's (all rows draw at every step here), so a seed gives
other, equally distributed, samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from . import rollout

WIDTH_STEP = 64  # prompt widths are padded up to a multiple of this: fewer shapes to compile
DONE_CHECK_EVERY = 8  # tokens between host reads of "are all rows done?" (each read syncs the GPU)
KEEP_CACHES = 3  # shapes whose cache is kept (training: one; evaluation: one or two more)


class StaticDecoder:
    """Samples completions from `model` with a static KV cache; keeps compiled steps and caches."""

    def __init__(self, model: Any, *, compile_step: bool | None = None) -> None:
        self.model = model
        self.compile_step = compile_step
        self._caches: dict[tuple[int, int], Any] = {}
        self._step: Callable[..., Any] | None = None
        self._cache_arg = rollout._cache_kwarg(model)

    def _decode_step(self, device: torch.device) -> Callable[..., Any]:
        if self._step is None:
            def step(ids: torch.Tensor, mask: torch.Tensor | None, positions: torch.Tensor, cache: Any) -> Any:
                out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                 **{self._cache_arg: cache})
                return out.logits[:, -1].float()  # a fresh tensor: a graph replay overwrites its own outputs

            compile_step = device.type == "cuda" if self.compile_step is None else self.compile_step
            self._step = torch.compile(step, mode="reduce-overhead", dynamic=False) if compile_step else step
        return self._step

    def _cache(self, rows: int, length: int) -> Any:
        from transformers import StaticCache

        cache = self._caches.get((rows, length))
        if cache is None:
            if len(self._caches) >= KEEP_CACHES:  # the oldest shape goes: each cache holds rows x positions
                del self._caches[next(iter(self._caches))]
            cache = self._caches[(rows, length)] = StaticCache(config=self.model.config, max_cache_len=length)
        else:
            cache.reset()
        return cache

    def generate(self, prompts: Sequence[list[int]], n: int, sampling: rollout.SamplingSettings, seed: int,
                 eos_ids: set[int], pad_id: int) -> list[list[int]]:
        """`n` completions per prompt, prompt-major, each cut after its first end token.

        A compiled step that fails (a model or torch version that `torch.compile` cannot handle)
        is reported once and replaced by the eager one, and the call starts over on a fresh cache.
        """
        try:
            return self._generate(prompts, n, sampling, seed, eos_ids, pad_id)
        except Exception as exc:
            if self._step is None or self.compile_step is False or isinstance(exc, torch.cuda.OutOfMemoryError):
                raise
            warnings.warn(f"sampler 'static': the compiled decode step failed ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); decoding eagerly from now on", stacklevel=2)
            self.compile_step, self._step = False, None
            return self._generate(prompts, n, sampling, seed, eos_ids, pad_id)

    @torch.no_grad()
    def _generate(self, prompts: Sequence[list[int]], n: int, sampling: rollout.SamplingSettings, seed: int,
                  eos_ids: set[int], pad_id: int) -> list[list[int]]:
        device = next(self.model.parameters()).device
        steps = sampling.max_new_tokens
        repeated = [p for p in prompts for _ in range(n)]
        ids, mask = rollout.left_pad(repeated, pad_id)
        width = -(-ids.shape[1] // WIDTH_STEP) * WIDTH_STEP
        extra = width - ids.shape[1]
        ids = torch.nn.functional.pad(ids, (extra, 0), value=pad_id).to(device)
        mask = torch.nn.functional.pad(mask, (extra, 0), value=0).to(device)
        rows = ids.shape[0]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        padded = bool((mask == 0).any())
        # one mask for the whole call: the prompt's padding, then every position to come
        full_mask = torch.cat([mask, mask.new_ones((rows, steps))], dim=1) if padded else None
        cache = self._cache(rows, width + steps)
        out = self.model(input_ids=ids, attention_mask=full_mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1, **{self._cache_arg: cache})
        logits = out.logits[:, -1]
        next_pos = positions[:, -1:] + 1
        step_fn = self._decode_step(device)

        generator = torch.Generator(device=device).manual_seed(seed)
        eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=device)
        tokens = torch.full((rows, steps), pad_id, dtype=torch.long, device=device)
        done = torch.zeros(rows, dtype=torch.bool, device=device)
        for step in range(steps):
            nxt = rollout.pick_tokens(logits, sampling, generator)
            tokens[:, step] = nxt
            if step == steps - 1:
                break
            done |= torch.isin(nxt, eos)
            if (step + 1) % DONE_CHECK_EVERY == 0 and bool(done.all()):
                break
            logits = step_fn(nxt.unsqueeze(-1), full_mask, next_pos, cache)
            next_pos = next_pos + 1
        return [rollout.cut_at_eos(row, eos_ids, None) for row in tokens.tolist()]
