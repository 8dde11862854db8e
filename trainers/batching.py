"""How the update lays out a batch of (prompt, completion) sequences for its forward passes.

Two ideas, both exact (the log-probs are those of each sequence run alone):

- Each row is its prompt followed at once by its completion, padded on the right. Causal
  attention never lets a real token see a later pad, so no attention mask is needed and positions
  are the default 0, 1, 2, ... (the positions generation used for the real tokens).
- Rows are grouped into forward passes by length (`plan_chunks`). A forward-backward pass costs
  its padded area (rows x longest row) plus a fixed cost per pass; sampled completions vary a lot
  in length (a random policy stops anywhere between 1 and `max_new_tokens`), so one pass over all
  rows is mostly padding. Sorting by length and cutting where the padding saved pays for the extra
  pass cut the update phase by about 30% at 64 new tokens (bench/RESULTS.md), and leaves short
  batches in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .logprobs import head_logprobs

# The fixed cost of one more forward-backward pass, in padded token slots. Measured on the tiny
# CPU model: a pass costs about 3.5 ms more than its area, and a padded slot about 0.025 ms.
PASS_OVERHEAD_TOKENS = 128


def plan_chunks(lengths: Sequence[int], max_rows: int, overhead: int | None = None) -> list[list[int]]:
    """Split rows (by their lengths) into passes of at most `max_rows` rows, cheapest first.

    Rows are sorted by length and cut into contiguous runs; the cuts minimise the sum over passes
    of `overhead + rows * longest`, found exactly by dynamic programming over the sorted rows.
    Returns row indices per pass, shortest pass first; the result depends only on `lengths`.
    """
    overhead = PASS_OVERHEAD_TOKENS if overhead is None else overhead
    n = len(lengths)
    if n == 0:
        return []
    order = np.argsort(np.asarray(lengths), kind="stable")
    ordered = np.asarray(lengths, dtype=np.float64)[order]
    # Where a pass may end. Without a row limit, only after the last row of a run of equal lengths:
    # moving a cut inside a run to the run's end never costs more (the earlier pass keeps its width,
    # the later one only loses rows). With a limit, anywhere.
    if max_rows >= n:
        ends = np.append(np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, n)
    else:
        ends = np.arange(1, n + 1)
    bounds = np.append(0, ends)  # candidate pass boundaries, ascending
    best = np.full(len(bounds), math.inf)
    best[0] = 0.0
    prev = np.zeros(len(bounds), dtype=np.int64)
    for j in range(1, len(bounds)):  # a pass over sorted rows bounds[i]..bounds[j]-1, longest last
        i = np.arange(j)
        rows = bounds[j] - bounds[i]
        cost = np.where(rows <= max_rows, best[i] + overhead + rows * ordered[bounds[j] - 1], math.inf)
        k = int(np.argmin(cost))
        best[j], prev[j] = cost[k], k
    chunks = []
    j = len(bounds) - 1
    while j > 0:
        chunks.append(order[bounds[prev[j]]:bounds[j]].tolist())
        j = int(prev[j])
    return chunks[::-1]


@dataclass(frozen=True)
class Batch:
    """One forward pass: `rows` (indices into the rollouts) laid out prompt-then-completion."""

    rows: list[int]
    ids: torch.Tensor  # [R, W] prompt + completion + right padding
    targets: torch.Tensor  # [R, C] completion tokens (padding past each row's end)
    index: torch.Tensor | None  # [R, C] where each target's predicting logit sits among the kept
    # ones; None when every prompt has the same length (then it is simply 0, 1, 2, ...)
    mask: torch.Tensor  # [R, C] 1 on real completion tokens
    keep: int  # logits to compute: the last `keep` positions cover every completion

    @property
    def tokens(self) -> int:
        return int(self.mask.sum())


def build_batch(prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], rows: list[int],
                pad_id: int, device: torch.device) -> Batch:
    """Lay out `rows` (prompt i, completion i) for one forward pass; see the module docstring."""
    p_len = [len(p) for p in prompts]
    c_len = [len(c) for c in completions]
    width = max(p + c for p, c in zip(p_len, c_len, strict=True))
    c_max = max(1, max(c_len))
    first = min(p_len) - 1  # the earliest position whose logit predicts a completion token
    ids = [list(p) + list(c) + [pad_id] * (width - len(p) - len(c)) for p, c in zip(prompts, completions, strict=True)]
    targets = [list(c) + [pad_id] * (c_max - len(c)) for c in completions]
    offsets = torch.tensor(p_len) - 1 - first  # row r's first predicting logit, among the kept ones
    steps = torch.arange(c_max)
    keep = width - first
    index = None
    if len(set(p_len)) > 1:
        index = (offsets[:, None] + steps[None, :]).clamp(max=keep - 1).to(device)
    mask = (steps[None, :] < torch.tensor(c_len)[:, None]).long()
    return Batch(rows, torch.tensor(ids).to(device), torch.tensor(targets).to(device), index, mask.to(device),
                 keep)


def token_logprobs(model: Any, batch: Batch, temperature: float, chunk: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs `[R, C]` of the completion tokens (at the sampling temperature) and their entropy.

    `chunk` > 0 computes them `chunk` tokens at a time from the last hidden state, never holding
    the pass's `[R, C, vocab]` logits (`logprobs.head_logprobs`); padding then gets 0.
    """
    if chunk:
        return _chunked_token_logprobs(model, batch, temperature, chunk)
    logits = model(input_ids=batch.ids, logits_to_keep=batch.keep, use_cache=False).logits  # [R, keep, V]
    if batch.index is None:  # a view, no copy: with a large vocabulary this is the biggest tensor
        logits = logits[:, : batch.targets.shape[1]].float()
    else:
        logits = logits.gather(1, batch.index.unsqueeze(-1).expand(-1, -1, logits.shape[-1])).float()
    logp_all = torch.log_softmax(logits / temperature, dim=-1)
    logp = logp_all.gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def _chunked_token_logprobs(model: Any, batch: Batch, temperature: float,
                            chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    hidden = model.get_decoder()(input_ids=batch.ids, use_cache=False).last_hidden_state[:, -batch.keep:]
    if batch.index is None:
        hidden = hidden[:, : batch.targets.shape[1]]
    else:
        hidden = hidden.gather(1, batch.index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
    real = batch.mask.bool()
    logp, entropy = head_logprobs(hidden[real], model.get_output_embeddings(), batch.targets[real], temperature,
                                  chunk)
    zeros = torch.zeros(batch.targets.shape, dtype=torch.float32, device=logp.device)
    return zeros.masked_scatter(real, logp), zeros.masked_scatter(real, entropy)
