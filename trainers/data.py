"""Prompt data for the trainer: reading rows, rendering prompts, sampling batches, checking fields.

The sampler is a pure function of (seed, step): step s always gets the same prompts, so a resumed
run needs nothing but the step number to continue the data order exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class TrainSetupError(ValueError):
    """A problem found before step 1 (a setting, the data, a model path), said with its place;
    the CLI prints it without a traceback."""


class DataError(TrainSetupError):
    """Bad or missing training data, with the file and row it came from."""


def resolve_path(value: str, spec_dir: Path) -> Path | None:
    """A relative path next to the spec first, then in the current directory; None if neither exists."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    for candidate in (spec_dir / p, Path.cwd() / p):
        if candidate.exists():
            return candidate.resolve()
    return None


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl (one JSON object per line) or .parquet file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [dict(r) for r in pq.read_table(path).to_pylist()]
    if path.suffix not in (".jsonl", ".json"):
        raise DataError(f"{path}: unsupported data format {path.suffix!r} (use .jsonl or .parquet)")
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: each line must be a JSON object, got {type(row).__name__}")
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


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


def check_rows(
    rows: Sequence[dict[str, Any]],
    source: str,
    prompt_field: str,
    needs: Iterable[tuple[str, str]],
    limit: int,
) -> None:
    """Fail before step 1 if a row lacks the prompt or a field a reward's verifier reads.

    `needs` holds (reward name, field name) pairs; the error names reward, field and row.
    """
    needs = list(needs)
    for i, row in enumerate(rows[:limit]):
        if prompt_field not in row:
            raise DataError(
                f"{source}: row {i + 1} has no prompt field {prompt_field!r} (fields: {sorted(row)}); "
                "set train.prompt_field"
            )
        prompt = row[prompt_field]
        if not (isinstance(prompt, str) or (isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt))):
            raise DataError(
                f"{source}: row {i + 1} field {prompt_field!r} must be text or a list of chat messages, "
                f"got {type(prompt).__name__}"
            )
        for reward, field in needs:
            if field not in row:
                raise DataError(
                    f"{source}: reward {reward!r} needs field {field!r}, missing in row {i + 1} "
                    f"(fields: {sorted(row)})"
                )
