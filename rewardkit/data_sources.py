"""Training data a user already has: local JSONL/parquet files, a folder written by `datasets`'
`save_to_disk`, or a dataset `datasets.load_dataset` reads (a hub name, or a local folder laid out
like a hub repository) with a config and a split; then renamed columns, a prompt template over the
row's fields, and a system prompt.

JSONL and parquet are read directly (no `datasets` needed); everything else goes through the
`datasets` library itself (`pip install datasets`), so its config, split and format rules hold.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rewardkit.errors import DataError

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _datasets() -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise DataError("this data needs the `datasets` library (pip install datasets); JSONL and parquet "
                        "files are read without it") from exc
    return datasets


def _is_saved(path: Path) -> bool:
    """A folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return (path / "dataset_info.json").exists() or (path / "state.json").exists() or \
        (path / "dataset_dict.json").exists()


def _pick_split(data: Any, split: str, where: str) -> Any:
    """A `Dataset` as it is; from a `DatasetDict` (its column_names is a dict), the split asked for."""
    if not isinstance(data.column_names, dict):
        return data
    if split not in data:
        raise DataError(f"{where}: no split {split!r} (splits: {', '.join(data)}); set train.data_split")
    return data[split]


def dataset_rows(value: str, local: Path | None, config: str | None, split: str) -> list[dict[str, Any]]:
    """Rows through `datasets`: a `save_to_disk` folder, or `load_dataset(value, config, split=split)`
    for a local dataset folder or a hub name."""
    datasets = _datasets()
    where = f"train.data {value!r}"
    try:
        if local is not None and local.is_dir() and _is_saved(local):
            data = _pick_split(datasets.load_from_disk(str(local)), split, where)
        else:
            data = datasets.load_dataset(str(local) if local is not None else value, config, split=split)
    except DataError:
        raise
    except Exception as exc:  # datasets raises many kinds; say which data and why
        raise DataError(f"{where} (config {config!r}, split {split!r}) could not be loaded by datasets: "
                        f"{type(exc).__name__}: {exc}") from exc
    rows = [dict(r) for r in data]
    if not rows:
        raise DataError(f"{where}: split {split!r} has no rows")
    return rows


def shape_rows(rows: list[dict[str, Any]], columns: dict[str, str], prompt_field: str,
               template: str | None, system_prompt: str | None, where: str) -> list[dict[str, Any]]:
    """Rename columns (`{source: target}`), build the prompt from `template` (`{field}` is the row's
    field; other braces, as in `\\boxed{}`, stay as written), and put `system_prompt` first."""
    out = []
    for i, row in enumerate(rows):
        missing = [source for source in columns if source not in row]
        if missing:
            raise DataError(f"{where}: row {i + 1} has no column {missing[0]!r} named in train.columns "
                            f"(columns: {sorted(row)})")
        shaped = {columns.get(k, k): v for k, v in row.items()}
        if template is not None:
            def field(match: re.Match[str], shaped: dict[str, Any] = shaped, i: int = i) -> str:
                name = match.group(1)
                if name not in shaped:
                    raise DataError(f"{where}: train.prompt_template names {{{name}}}, which row {i + 1} lacks "
                                    f"(fields: {sorted(shaped)})")
                return str(shaped[name])

            shaped[prompt_field] = _FIELD.sub(field, template)
        if system_prompt is not None and prompt_field in shaped:
            prompt = shaped[prompt_field]
            messages = list(prompt) if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
            if not (messages and isinstance(messages[0], dict) and messages[0].get("role") == "system"):
                messages.insert(0, {"role": "system", "content": system_prompt})
            shaped[prompt_field] = messages
        out.append(shaped)
    return out
