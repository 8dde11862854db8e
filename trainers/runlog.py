"""What a run shows and keeps besides checkpoints: the JSONL log (and TensorBoard, W&B), the progress bar,
the closing summary, and the Ctrl-C handler that lets the loop stop at a step boundary."""

from __future__ import annotations

import json
import math
import signal
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

WANDB_ID_FILE = "wandb_run_id"  # in the run folder: `--resume` logs to the same W&B run


class MetricsLog:
    """Appends one JSON object per step to `metrics.jsonl` (and TensorBoard when installed, and
    Weights & Biases when a project is given).

    On resume, lines after the checkpoint's step are dropped so the log reads as one clean run.
    """

    def __init__(self, output_dir: Path, start_step: int, tensorboard: bool, wandb_project: str | None = None,
                 config: dict[str, Any] | None = None) -> None:
        output_dir.mkdir(parents=True, exist_ok=True)
        self.path = output_dir / "metrics.jsonl"
        kept = []
        if self.path.exists() and start_step > 0:
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= start_step]
        self.path.write_text("".join(line + "\n" for line in kept))
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(output_dir / "tensorboard"))
            except ImportError:
                self.writer = None
        self.wandb: Any = None
        if wandb_project:
            import wandb

            id_file = output_dir / WANDB_ID_FILE
            run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
            id_file.write_text(run_id)
            self.wandb = wandb.init(project=wandb_project, id=run_id, resume="allow", dir=str(output_dir),
                                    name=output_dir.name, config=config or {})

    def write(self, metrics: dict[str, float]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
        with self.path.open("a") as f:
            f.write(json.dumps(clean) + "\n")
        scalars = {k: v for k, v in metrics.items()
                   if k != "step" and isinstance(v, (int, float)) and math.isfinite(v)}
        if self.writer is not None:
            for k, v in scalars.items():
                self.writer.add_scalar(k, v, int(metrics["step"]))
        if self.wandb is not None:
            self.wandb.log(scalars, step=int(metrics["step"]))

    def samples(self, step: int, columns: list[str], data: list[list[Any]], markdown: str) -> None:
        """A step's logged completions as a W&B table and as TensorBoard text (the JSONL file is
        written by the trainer)."""
        if self.writer is not None:
            self.writer.add_text("samples", markdown, step)
        if self.wandb is not None:
            import wandb

            self.wandb.log({"samples": wandb.Table(columns=list[str | int](columns), data=data)}, step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()


def summary(metrics: dict[str, float], names: list[str]) -> str:
    return "  ".join(f"{n}={metrics[f'reward/{n}/mean']:.2f}" for n in names
                     if math.isfinite(metrics.get(f"reward/{n}/mean", math.nan)))


def final_report(log_path: Path, names: list[str], policy: Path, window: int = 10) -> str:
    """Each reward's mean over the first and the last `window` logged steps, and where the policy is."""
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]

    def mean(rows: list[dict[str, Any]], key: str) -> float:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(np.mean(vals)) if vals else math.nan

    head, tail = lines[:window], lines[-window:]
    parts = [f"{n} {mean(head, f'reward/{n}/mean'):.2f} -> {mean(tail, f'reward/{n}/mean'):.2f}" for n in names]
    return (f"done: {len(lines)} steps; reward means, first vs last {window} steps: {', '.join(parts)}\n"
            f"policy: {policy}  log: {log_path}")


@contextmanager
def progress(enabled: bool, total: int, done: int) -> Iterator[Any]:
    """A rich progress bar on a terminal; elsewhere a plain line every few steps."""
    if enabled and sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("step"), MofNCompleteColumn(), BarColumn(), TimeRemainingColumn(),
                      TextColumn("{task.fields[info]}"), transient=False) as bar:
            task = bar.add_task("train", total=total, completed=done, info="")
            yield lambda step, info: bar.update(task, completed=step, info=info)
    else:
        every = max(1, total // 20)

        def report(step: int, info: str) -> None:
            if enabled and (step % every == 0 or step == total):
                print(f"step {step}/{total}  {info}", file=sys.stderr, flush=True)

        yield report


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run at a step boundary after saving `checkpoint` (the CLI exits 130)."""

    def __init__(self, checkpoint: Path) -> None:
        super().__init__(f"stopped after saving {checkpoint}")
        self.checkpoint = checkpoint


@contextmanager
def graceful_interrupt(run: Any) -> Iterator[None]:
    """First Ctrl-C: finish the current step, checkpoint, stop. Second Ctrl-C: stop at once."""
    def handler(signum: int, frame: Any) -> None:
        if run.stop_requested:
            raise KeyboardInterrupt
        run.stop_requested = True
        print("\ninterrupt: saving a checkpoint after this step (Ctrl-C again to abort)", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
