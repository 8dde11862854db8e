"""The demo learns: `specs/demo.yaml` as shipped, on the tiny model, with its fixed seed.

This is the README's main-job run itself (300 steps, under a minute on one CPU core), not a
shortened copy: the learnable rewards' means over the last steps must be far above the first steps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardkit.trainers import gdpo
from rewardkit.trainers.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "specs" / "demo.yaml")
WINDOW = 20


def test_demo_rewards_rise(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny")  # what `python -m rewardkit.trainers.tiny_model` writes
    started = time.monotonic()
    out = gdpo.train(DEMO, overrides={"model": str(model), "output_dir": str(tmp_path / "run"),
                                      "progress": False, "tensorboard": False})
    elapsed = time.monotonic() - started
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 300

    def mean(part: list[dict], name: str) -> float:
        return float(np.mean([r[f"reward/{name}/mean"] for r in part]))

    first = {n: mean(rows[:WINDOW], n) for n in ("format", "correct", "short")}
    last = {n: mean(rows[-WINDOW:], n) for n in ("format", "correct", "short")}
    report = f"first {WINDOW} steps {first}, last {WINDOW} steps {last}, {elapsed:.0f} s"
    # Seed 0 ends near 0.9 on all three (last 20 steps: 0.92, 0.93, 0.86), far above these bars. Not
    # every seed gets there: in experiments/gdpo_vs_grpo.md 5 of 8 GDPO seeds clear them all, 3 stall
    # on correctness near 0.3 (each seed also draws its own initial model). A CPU whose rounding sent
    # this fixed-seed run down another trajectory could therefore fail here; the run is deterministic
    # on a given machine.
    assert first["format"] < 0.3 and first["correct"] < 0.3, report  # a random policy rarely hits
    assert last["format"] > first["format"] + 0.4, report
    assert last["correct"] > first["correct"] + 0.2, report
    assert last["short"] > first["short"] + 0.2, report  # gated on correct: rises once correct does
    assert np.mean(list(last.values())) > np.mean(list(first.values())) + 0.35, report
    # Held-out (phrasing, digit) prompts, greedy decoding: the answer shape generalises.
    assert rows[-1]["eval/format/mean"] >= 0.5, report
