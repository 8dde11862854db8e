"""Completion log-probs without the whole pass's `[tokens x vocab]` logits.

The plain path (`batching.token_logprobs`) asks the model for logits at every completion position:
with a 152k vocabulary, 128 completions of 256 tokens are 32k x 152k floats, 19 GB per fp32 copy,
and autograd keeps the log-softmax output for the backward pass on top. Here the model runs only
up to its last hidden state (`[tokens, hidden]`, a few MB), and the output head, log-softmax and
target gather run `chunk` tokens at a time inside one autograd function that keeps nothing of
size vocab: its backward recomputes each chunk's logits from the saved hidden states and the head
weight (one more head matmul per chunk, the price of the memory). Only real completion tokens go
through the head; padding costs nothing.

The gradient of log p(y) = z_y / T - logsumexp(z / T) with respect to the logits z is
(onehot(y) - softmax(z / T)) / T; the head's input and weight gradients follow from it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

# Output-head variants this function does not reproduce: it applies the head as a plain linear layer.
_UNSUPPORTED_HEAD_SETTINGS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


class _ChunkedHeadLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                targets: torch.Tensor, temperature: float, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = hidden.shape[0]
        logp = hidden.new_empty(n, dtype=torch.float32)
        entropy = hidden.new_empty(n, dtype=torch.float32)
        for start in range(0, n, chunk):
            part = slice(start, start + chunk)
            # the same ops and dtypes as the plain path: head in the model's dtype, then fp32
            logp_all = torch.log_softmax(F.linear(hidden[part], weight, bias).float() / temperature, dim=-1)
            logp[part] = logp_all.gather(-1, targets[part, None]).squeeze(-1)
            entropy[part] = -(logp_all.exp() * logp_all).sum(-1)
        ctx.save_for_backward(hidden, weight, bias, targets)
        ctx.temperature, ctx.chunk = temperature, chunk
        ctx.mark_non_differentiable(entropy)
        return logp, entropy

    @staticmethod
    def backward(ctx: Any, grad_logp: torch.Tensor, _grad_entropy: torch.Tensor) -> tuple[Any, ...]:
        hidden, weight, bias, targets = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if need_w else None
        grad_b = torch.zeros_like(bias, dtype=torch.float32) if need_b and bias is not None else None
        for start in range(0, hidden.shape[0], ctx.chunk):
            part = slice(start, start + ctx.chunk)
            h = hidden[part]
            probs = torch.softmax(F.linear(h, weight, bias).float() / ctx.temperature, dim=-1)
            g = grad_logp[part, None] / ctx.temperature
            grad_z = (-probs).mul_(g)  # d logp / d z, times the incoming gradient
            grad_z.scatter_add_(-1, targets[part, None], g)
            grad_z = grad_z.to(hidden.dtype)
            if grad_h is not None:
                grad_h[part] = grad_z @ weight
            if grad_w is not None:  # in place: a [vocab, hidden] temporary per chunk doubled the time
                grad_w.addmm_(grad_z.t().float(), h.float())
            if grad_b is not None:
                grad_b.add_(grad_z.float().sum(0))
        return (grad_h, None if grad_w is None else grad_w.to(weight.dtype),
                None if grad_b is None else grad_b.to(bias.dtype), None, None, None)


def head_logprobs(hidden: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor, temperature: float,
                  chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs `[N]` of `targets` `[N]` under `head(hidden)` at `temperature`, and the entropies
    `[N]` (no gradient), computing at most `chunk` rows of logits at a time. `hidden` is `[N, H]`."""
    weight: torch.Tensor = head.weight  # type: ignore[assignment]
    bias: torch.Tensor | None = getattr(head, "bias", None)
    if hidden.shape[0] == 0:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        return empty + hidden.sum() * 0, empty
    out: tuple[torch.Tensor, torch.Tensor] = _ChunkedHeadLogprobs.apply(hidden, weight, bias, targets,
                                                                        temperature, chunk)
    return out


def check_supported(model: Any) -> None:
    """Fail early for models whose output head is more than a linear layer (soft-capped or scaled
    logits): this path would compute other log-probs than the model does."""
    config = model.config
    found = [name for name in _UNSUPPORTED_HEAD_SETTINGS if getattr(config, name, None) not in (None, 1, 1.0)]
    head = model.get_output_embeddings()
    if found or not isinstance(head, torch.nn.Linear):
        what = ", ".join(found) or f"output head {type(head).__name__}"
        raise ValueError(f"train.logprob_chunk_tokens: {config.model_type} models ({what}) are not supported; "
                         "set it to 0")
