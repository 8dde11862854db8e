"""What a spec's `train:` section points at: the model, tokenizer, chat template and data.

`rewardkit train` and the TRL bridge both resolve them here, with the same fail-fast checks: a
relative path is looked up next to the spec, then in the current directory; a path-like model
that exists nowhere fails at once (not after a minute of hub retries offline); every data row a
reward reads is checked before any model loads, and the error names the reward, field and row.
No torch here: the core resolves, the trainers load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardkit import data_sources
from rewardkit.errors import DataError, TrainSetupError

if TYPE_CHECKING:
    from rewardkit.spec import Spec
    from rewardkit.train_config import TrainConfig


def spec_folder(spec: Spec) -> Path:
    """The folder relative paths start from: the spec file's, or here for a spec given as text."""
    path = str(spec.path or "")
    return Path(path).resolve().parent if path and not path.startswith("<") else Path.cwd()


def resolve_path(value: str, spec_dir: Path) -> Path | None:
    """A relative path next to the spec first, then in the current directory; None if neither exists."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    for candidate in (spec_dir / p, Path.cwd() / p):
        if candidate.exists():
            return candidate.resolve()
    return None


def model_source(value: str, spec_dir: Path, key: str = "train.model") -> str:
    """A local folder when one exists (next to the spec, then here), else the hub id as written.

    A value written as a path (`./x`, `../x`, `/x`, `~/x`) that exists nowhere fails here, at once,
    instead of after a minute of hub retries on a machine without internet.
    """
    path = resolve_path(value, spec_dir)
    if path is not None:
        return str(path)
    if value.startswith((".", "/", "~")):
        raise TrainSetupError(
            f"{key}: {value!r} not found next to the spec ({spec_dir}) nor in {Path.cwd()}; "
            "the demo's tiny model is built with `python -m rewardkit.trainers.tiny_model models/tiny`"
        )
    return value


def chat_template(value: str | None, spec_dir: Path) -> str | None:
    """The template text: written inline (it has a `{`), or a file next to the spec or here."""
    if value is None or "{" in value:
        return value
    path = resolve_path(value, spec_dir)
    if path is None:
        raise DataError(f"train.chat_template: {value!r} is neither a Jinja template nor an existing file")
    return path.read_text(encoding="utf-8")


def required_fields(spec: Spec) -> list[tuple[str, str]]:
    """(reward name, data field) for every field a reward's verifier reads."""
    return [(r.name, f) for r in spec.rewards for f in r.verifier.required_fields()]


FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


def data_rows(cfg: TrainConfig, spec: Spec, spec_dir: Path, key: str = "data") -> list[dict[str, Any]]:
    """The rows of `train.data` (or `train.eval_data` with `key="eval_data"`), checked against
    what the rewards need before any model is loaded."""
    value = getattr(cfg, key)
    path = resolve_path(value, spec_dir)
    if path is not None and path.is_file():
        rows = load_rows(path)
    elif path is not None or not (value.startswith((".", "/", "~")) or Path(value).suffix in FILE_SUFFIXES):
        # a dataset folder, or a hub name (a missing path or file stays a "not found" below)
        split = cfg.data_split if key == "data" else cfg.eval_split
        rows = data_sources.dataset_rows(value, path, cfg.data_config, split)
    else:
        raise DataError(f"train.{key}: {value!r} not found next to {spec.path} nor in {Path.cwd()}")
    source = str(path or value)
    rows = data_sources.shape_rows(rows, cfg.columns, cfg.prompt_field, cfg.prompt_template, cfg.system_prompt,
                                   source)
    check_rows(rows, source, cfg.prompt_field, required_fields(spec), cfg.check_rows)
    return rows


def load_data(cfg: TrainConfig, spec: Spec, spec_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training rows and held-out rows (`eval_data`, or `eval_size` rows held out of `data`)."""
    rows = data_rows(cfg, spec, spec_dir)
    eval_rows: list[dict[str, Any]] = []
    if cfg.eval_data:
        eval_rows = data_rows(cfg, spec, spec_dir, "eval_data")
    elif cfg.eval_size:
        if cfg.eval_size >= len(rows):
            raise DataError(f"train.eval_size ({cfg.eval_size}) leaves no training rows out of {len(rows)}")
        perm = np.random.default_rng([cfg.seed, 7]).permutation(len(rows))
        held = set(perm[: cfg.eval_size].tolist())
        eval_rows = [rows[i] for i in sorted(held)]
        rows = [r for i, r in enumerate(rows) if i not in held]
    return rows, eval_rows


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
