"""Prompt data for the trainer: rendering prompts, sampling batches (reading rows: `rewardkit.train_inputs`).

The sampler is a pure function of (seed, step): step s always gets the same prompts, so a resumed
run needs nothing but the step number to continue the data order exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Reading and checking data moved to the core (`rewardkit.train_inputs`, shared with the TRL bridge);
# the old names stay importable from here.
from rewardkit.errors import DataError as DataError
from rewardkit.errors import TrainSetupError as TrainSetupError
from rewardkit.train_inputs import check_rows as check_rows
from rewardkit.train_inputs import load_rows as load_rows
from rewardkit.train_inputs import resolve_path as resolve_path


def batch_indices(n_rows: int, batch: int, step: int, seed: int) -> list[int]:
    """Row indices for `step` (1-based): epochs of seeded permutations, consumed `batch` at a time."""
    out: list[int] = []
    perms: dict[int, np.ndarray] = {}
    start = (step - 1) * batch
    for i in range(start, start + batch):
        epoch, pos = divmod(i, n_rows)
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(n_rows)
        out.append(int(perms[epoch][pos]))
    return out


def render_prompt(prompt: Any, tokenizer: Any, prompt_format: str, chat_template: str | None) -> str:
    """The text the policy continues: chat messages through the template, text as is (or wrapped)."""
    if isinstance(prompt, str) and prompt_format != "chat":
        return prompt
    if prompt_format == "raw":
        raise DataError("prompt_format 'raw' needs text prompts, got chat messages")
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    return str(
        tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, chat_template=chat_template
        )
    )


def encode_prompts(texts: Sequence[str], tokenizer: Any, max_prompt_tokens: int | None) -> list[list[int]]:
    """Token ids per prompt (no special tokens added: templates carry their own), left-truncated."""
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    if max_prompt_tokens is not None:
        encoded = [ids[-max_prompt_tokens:] for ids in encoded]
    for text, ids in zip(texts, encoded, strict=True):
        if not ids:
            raise DataError(f"prompt {text!r} encodes to no tokens")
    return [list(ids) for ids in encoded]
