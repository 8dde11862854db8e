"""The GDPO paper's three tasks at CPU scale: data, demonstrations and a tiny policy for each.

Each task (`tasks_tool_calling`, `tasks_math`, `tasks_code`) makes prompt rows with the fields
its spec's verifiers read, a correct `solution` and a deliberately imperfect `demonstration`.
This module writes, per task, into one folder:

  paper_<task>_train.jsonl   RL prompts
  paper_<task>_eval.jsonl    held-out prompts (none of them is a training prompt)
  paper_<task>_sft.jsonl     warm-start demonstrations (`completion`), on prompts of their own

and builds the task's policy: the tiny Llama of `tiny_model` with a `piece_tokenizer` over the
task's text pieces. Everything is a pure function of the seed; nothing is downloaded.

Usage: `python -m rewardkit.trainers.paper_tasks OUT_DIR [--tasks tool_calling math code] [--models DIR]`
(specs/paper_*.yaml read their data from specs/data; the held-out files are committed there, the
train and warm-start files are written by this command).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import tasks_code, tasks_math, tasks_tool_calling


@dataclass(frozen=True)
class Task:
    name: str
    pieces: Callable[[], list[str]]
    make_row: Callable[[np.random.Generator], dict[str, Any]]
    solution: Callable[[dict[str, Any]], str]
    demonstration: Callable[[dict[str, Any], np.random.Generator], str]
    eval_size: int = 64  # held-out prompts; the code task has only 90 distinct prompts


TASKS = {
    "tool_calling": Task("tool_calling", tasks_tool_calling.pieces, tasks_tool_calling.make_row,
                         tasks_tool_calling.solution, tasks_tool_calling.demonstration),
    "math": Task("math", tasks_math.pieces, tasks_math.make_row, tasks_math.solution, tasks_math.demonstration),
    "code": Task("code", tasks_code.pieces, tasks_code.make_row, tasks_code.solution, tasks_code.demonstration,
                 eval_size=24),
}
SIZES = {"train": 512, "eval": 64, "sft": 2048}


def task_rows(task: str, seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Rows per split. Eval prompts are drawn first and excluded from the other splits, so a
    held-out score is on prompts the policy has neither trained nor been warm-started on."""
    spec = TASKS[task]
    sizes = {**SIZES, "eval": spec.eval_size, **(sizes or {})}
    rng = np.random.default_rng([seed, 12])
    out: dict[str, list[dict[str, Any]]] = {}
    held: set[str] = set()
    for split in ("eval", "train", "sft"):
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        tries = 0
        while len(rows) < sizes[split]:
            tries += 1
            if tries > 100 * sizes[split]:
                raise RuntimeError(f"{task}: cannot draw {sizes[split]} distinct {split} prompts")
            row = spec.make_row(rng)
            if row["prompt"] in held or (split == "eval" and row["prompt"] in seen):
                continue
            seen.add(row["prompt"])
            if split == "sft":
                row = {**row, "completion": spec.demonstration(row, rng)}
            rows.append(row)
        if split == "eval":
            held = seen
        out[split] = rows
    return out


def write_task_data(out_dir: str | Path, tasks: list[str] | None = None, seed: int = 0,
                    sizes: dict[str, int] | None = None) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for task in tasks or list(TASKS):
        for split, rows in task_rows(task, seed, sizes).items():
            path = out / f"paper_{task}_{split}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            paths.append(path)
    return paths


def build_task_model(task: str, out_dir: str | Path, seed: int = 0, **size: Any) -> Path:
    """A randomly initialised tiny Llama whose tokenizer knows exactly this task's pieces;
    `size` goes to `build_tiny_model` (hidden_size, layers, heads)."""
    from .piece_tokenizer import build_piece_tokenizer
    from .tiny_model import build_tiny_model

    return build_tiny_model(out_dir, seed=seed, tokenizer=build_piece_tokenizer(TASKS[task].pieces()), **size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rewardkit.trainers.paper_tasks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", metavar="DIR",
                        help="also build each task's untrained policy as DIR/paper_<task>_init")
    args = parser.parse_args(argv)
    for path in write_task_data(args.out_dir, args.tasks, args.seed):
        print(path)
    for task in args.tasks if args.models else []:
        print(build_task_model(task, Path(args.models) / f"paper_{task}_init", seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
