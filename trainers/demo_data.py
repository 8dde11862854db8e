"""Prompts for the CPU demo (`specs/demo.yaml`), generated here, no download.

The task is small enough for a randomly initialised tiny model to learn by RL alone in minutes:
read the digit in the prompt and answer `<a> D </a>`, then stop. Each prompt is a chat message
in one of several phrasings; some (phrasing, digit) pairs are held out for evaluation, so the eval
curve shows whether the policy learned to copy the digit rather than memorise prompts.

Usage: `python -m rewardkit.trainers.demo_data OUT_DIR` writes demo_train.jsonl and demo_eval.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

# Every word here is in the tiny model's vocabulary (rewardkit.trainers.tiny_model.WORDS).
# The digit always ends the prompt, so the answer sits at a fixed distance from it.
PHRASINGS = [
    "copy {d}",
    "say {d}",
    "copy the number {d}",
    "say the number {d}",
    "the answer is {d}",
    "copy : {d}",
]


def demo_rows(seed: int = 0, eval_share: float = 0.2) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, eval) rows: `prompt` (chat messages) and `answer` (the digit as text)."""
    rows = [
        {"prompt": [{"role": "user", "content": phrasing.format(d=d)}], "answer": str(d)}
        for phrasing in PHRASINGS
        for d in range(10)
    ]
    order = np.random.default_rng(seed).permutation(len(rows))
    n_eval = int(round(eval_share * len(rows)))
    held = set(order[:n_eval].tolist())
    train = [r for i, r in enumerate(rows) if i not in held]
    evals = [r for i, r in enumerate(rows) if i in held]
    return train, evals


def write_demo_data(out_dir: str | Path, seed: int = 0) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, evals = demo_rows(seed)
    paths = (out / "demo_train.jsonl", out / "demo_eval.jsonl")
    for path, rows in zip(paths, (train, evals), strict=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rewardkit.trainers.demo_data")
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in write_demo_data(args.out_dir, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
