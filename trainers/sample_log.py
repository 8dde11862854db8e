"""What the policy wrote: every `every` steps, that step's completions with each reward's score and
reason and the advantages, to `OUTPUT_DIR/samples/step-N.jsonl`.

Each line is the sample exactly as the verifiers saw it (the data row, `prompt`, `completion`), so
`rewardkit check SPEC OUTPUT_DIR/samples/step-N.jsonl --group-by _group` re-scores a logged step;
what training computed rides along in `_`-prefixed fields (`_step`, `_group`, `_scores`,
`_advantage`, `_truncated`), which no verifier reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.scoring import ScoreTable

FOLDER = "samples"


def step_path(output_dir: Path, step: int) -> Path:
    return output_dir / FOLDER / f"step-{step}.jsonl"


def records(step: int, samples: Sequence[dict[str, Any]], table: ScoreTable, adv: np.ndarray,
            group_size: int, truncated: Sequence[bool]) -> list[dict[str, Any]]:
    """One JSON-ready record per completion: the sample, then what this step made of it."""
    scored = table.to_records()
    flat = np.asarray(adv, dtype=np.float64).reshape(-1)
    return [{**sample, "_step": step, "_group": f"step {step} group {i // group_size + 1}",
             "_scores": scored[i], "_advantage": _finite(flat[i]), "_truncated": bool(truncated[i])}
            for i, sample in enumerate(samples)]


def _finite(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 6)


def write(output_dir: Path, step: int, rows: list[dict[str, Any]]) -> Path:
    path = step_path(output_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def text_of(completion: Any) -> str:
    """A completion as text for tables: a string, or the content of a message list."""
    if isinstance(completion, list):
        return "\n".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def table_rows(rows: list[dict[str, Any]], names: list[str]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows for a W&B table / TensorBoard text: prompt, completion, each reward's score
    and reason, the advantage."""
    columns = ["group", "prompt", "completion", *[f"{n} {part}" for n in names for part in ("score", "reason")],
               "advantage"]
    data = []
    for r in rows:
        cells: list[Any] = [r["_group"], text_of(r.get("prompt", "")), text_of(r.get("completion", ""))]
        for n in names:
            cells += [r["_scores"][n]["score"], r["_scores"][n]["reason"]]
        data.append([*cells, r["_advantage"]])
    return columns, data


def markdown(columns: list[str], data: list[list[Any]]) -> str:
    """A Markdown table (TensorBoard's text plugin renders it); cell text has `|` and newlines escaped."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ⏎ ")

    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(cell(v) for v in row) + " |\n" for row in data)
