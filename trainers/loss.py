"""The trainer's objective as a pure function: log-probs and advantages in, loss and statistics out.

`gdpo.update` owns the loop (forward passes, old and reference log-probs, backward, optimizer);
this module owns the arithmetic, so a loss variant (DAPO's asymmetric clip is already `clip_high`;
Dr. GRPO's constant normalizer, GSPO's sequence-level ratio) is a change here, tested on a few
hand-made tokens in `tests/test_policy_loss.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Aggregation = Literal["token_mean", "sequence_mean"]


@dataclass(frozen=True)
class LossStats:
    """Sums over one micro-batch's completion tokens, so that micro-batches add up; `update`
    divides by the batch's token count for the logged means."""

    clipped_tokens: float  # tokens whose ratio left the clip range in the direction of the advantage
    kl_sum: float  # sum of the k3 KL estimate over tokens; 0.0 without a reference


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
    normalizer: float,
    aggregation: Aggregation = "token_mean",
    ref_logp: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> tuple[torch.Tensor, LossStats]:
    """The clipped policy-gradient loss of one micro-batch, with an optional k3 KL penalty.

    Per token: `-min(r * A, clip(r, 1 - clip_low, 1 + clip_high) * A) + kl_coef * k3`, with
    `r = exp(logp - old_logp)` and `k3 = exp(ref - logp) - (ref - logp) - 1` (an unbiased,
    always positive estimate of KL(policy || reference), as in GRPO).

    Shapes: `logp`, `old_logp`, `ref_logp` and `mask` are `(rows, completion_len)`, the log-prob
    of each sampled completion token (`mask` True where there is one, False at padding);
    `advantages` is `(rows,)`, one per completion, the same for all its tokens.

    Aggregation: `token_mean` sums over every token, `sequence_mean` averages each completion's
    tokens first and sums over completions; either sum is divided by `normalizer`, which is the
    whole batch's token count (token_mean) or completion count (sequence_mean) across all its
    micro-batches, so the micro-batch losses add up to the batch's mean. Returns the loss (a
    0-dim tensor with the graph of `logp`) and the micro-batch's `LossStats`.
    """
    m = mask.float()
    adv_tok = advantages.unsqueeze(-1)
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv_tok
    clipped_obj = torch.clamp(ratio, 1 - clip_low, 1 + clip_high) * adv_tok
    per_token = -torch.minimum(unclipped, clipped_obj)
    kl_sum = 0.0
    if ref_logp is not None:
        diff = ref_logp - logp
        kl_tok = torch.exp(diff) - diff - 1
        per_token = per_token + kl_coef * kl_tok
        kl_sum = float((kl_tok.detach() * m).sum())
    if aggregation == "token_mean":
        loss = (per_token * m).sum() / normalizer
    else:
        loss = ((per_token * m).sum(-1) / m.sum(-1).clamp(min=1)).sum() / normalizer
    clipped = ((ratio < 1 - clip_low) & (adv_tok < 0)) | ((ratio > 1 + clip_high) & (adv_tok > 0))
    return loss, LossStats(clipped_tokens=float(clipped.float().mul(m).sum()), kl_sum=kl_sum)
