"""Checkpoints that resume a run exactly: weights, optimizer, scheduler, RNG and step.

Layout: `<output_dir>/checkpoints/step-000040/` holding `model/` (weights + tokenizer via
`save_pretrained`, so a checkpoint is also a loadable model) and `trainer_state.pt` (everything
else). A checkpoint is written to a temporary folder and renamed, so a crash mid-save never
leaves a half checkpoint that `--resume` would pick up.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "trainer_state.pt"
MODEL_DIR = "model"
PREFIX = "step-"


@dataclass
class Restored:
    """What `load` hands back; the trainer rebuilds model and optimizer from it."""

    path: Path
    model_dir: Path
    step: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    extra: dict[str, Any]
    rng: dict[str, Any]


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(
    output_dir: Path,
    step: int,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    extra: dict[str, Any],
    keep: int | None = None,
) -> Path:
    """Write checkpoint `step` under `output_dir/checkpoints`, drop the oldest beyond `keep`."""
    root = output_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:06d}"
    tmp = root / f".tmp-{PREFIX}{step:06d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp / MODEL_DIR)
    tokenizer.save_pretrained(tmp / MODEL_DIR)
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "extra": extra,
        },
        tmp / STATE_FILE,
    )
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    if keep is not None:
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = output_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / STATE_FILE).exists()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def find(path: str | Path) -> Path:
    """A checkpoint folder itself, or the newest checkpoint of a run folder."""
    p = Path(path)
    if (p / STATE_FILE).exists():
        return p
    found = list_checkpoints(p)
    if not found:
        raise FileNotFoundError(f"no checkpoint at {p} (expected {STATE_FILE} or checkpoints/{PREFIX}NNNNNN/)")
    return found[-1]


def load(path: str | Path) -> Restored:
    """Read a checkpoint's trainer state; the caller loads the model, then calls `set_rng_state`
    last, so that nothing it does while setting up (model init, seeding) disturbs the restored RNG."""
    ckpt = find(path)
    state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=False)
    return Restored(
        path=ckpt,
        model_dir=ckpt / MODEL_DIR,
        step=int(state["step"]),
        optimizer=state["optimizer"],
        scheduler=state["scheduler"],
        extra=state.get("extra", {}),
        rng=state["rng"],
    )
