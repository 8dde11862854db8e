"""Checkpoint and resume: a resumed run continues bit-for-bit on CPU; Ctrl-C saves before exiting."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardkit.trainers import checkpoint, gdpo  # noqa: E402
from rewardkit.trainers.tiny_model import build_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "specs" / "demo.yaml")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _without_times(m: dict) -> dict:
    return {k: v for k, v in m.items() if not k.startswith("time/")}


def test_resumed_run_matches_straight_run_exactly(tiny: str, tmp_path: Path) -> None:
    # Everything stateful is on: KL to a reference, two updates per batch (old log-probs, clipping),
    # gradient accumulation, warmup + cosine schedule, Adam moments.
    settings = {"model": tiny, "steps": 6, "checkpoint_every": 3, "keep_checkpoints": None, "progress": False,
                "updates_per_batch": 2, "grad_accum": 2, "lr_schedule": "cosine", "warmup_steps": 2,
                "eval_every": 3}
    straight = gdpo.train(DEMO, overrides={**settings, "output_dir": str(tmp_path / "straight")})

    # Resume from a copy of the step-3 checkpoint in a fresh run folder.
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(straight / "checkpoints" / "step-000003", resumed_dir / "checkpoints" / "step-000003")
    resumed = gdpo.train(DEMO, resume=str(resumed_dir), overrides=settings)
    assert resumed == resumed_dir

    a, b = _metrics(straight), _metrics(resumed)
    assert [m["step"] for m in b] == [4, 5, 6]
    assert [_without_times(m) for m in a[3:]] == [_without_times(m) for m in b]

    final_a = checkpoint.find(straight)
    final_b = checkpoint.find(resumed)
    assert final_a.name == final_b.name == "step-000006"
    from safetensors.torch import load_file

    wa = load_file(final_a / "model" / "model.safetensors")
    wb = load_file(final_b / "model" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa = torch.load(final_a / "trainer_state.pt", weights_only=False)["optimizer"]["state"]
    sb = torch.load(final_b / "trainer_state.pt", weights_only=False)["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)


def test_resume_drops_log_lines_after_the_checkpoint(tiny: str, tmp_path: Path) -> None:
    settings = {"model": tiny, "steps": 4, "checkpoint_every": 2, "keep_checkpoints": None, "progress": False,
                "output_dir": str(tmp_path / "run")}
    run = gdpo.train(DEMO, overrides=settings)
    before = _metrics(run)
    gdpo.train(DEMO, resume=str(run / "checkpoints" / "step-000002"), overrides=settings)
    after = _metrics(run)
    assert [m["step"] for m in after] == [1, 2, 3, 4]
    assert [_without_times(m) for m in after] == [_without_times(m) for m in before]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rewardkit.cli", "train", DEMO, *args]


def _start(tiny: str, out: Path) -> subprocess.Popen[str]:
    """`rewardkit train` in its own process group, as a terminal runs it (Ctrl-C signals the group)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(_cli("--set", f"model={tiny}", "--set", f"output_dir={out}", "--set", "steps=100000",
                                 "--set", "checkpoint_every=0", "--set", "eval_every=0", "--set", "progress=false"),
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def _wait_for_steps(proc: subprocess.Popen[str], log: Path, steps: int) -> None:
    deadline = time.monotonic() + 300
    while not (log.exists() and len(log.read_text().splitlines()) >= steps):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.2)


def test_ctrl_c_saves_a_checkpoint_exits_130_and_resume_keeps_the_settings(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(tiny, out)
    try:
        _wait_for_steps(proc, out / "metrics.jsonl", 3)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    steps_logged = len((out / "metrics.jsonl").read_text().splitlines())
    saved = checkpoint.find(out)
    assert saved.name == f"step-{steps_logged:06d}"
    assert f"resume with: rewardkit train {DEMO} --resume {saved}" in err and "Traceback" not in err

    # the hint as printed keeps the run's --set model=... and output_dir; a new --set steps wins
    done = subprocess.run(_cli("--resume", str(saved), "--set", f"steps={steps_logged + 2}"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [m["step"] for m in _metrics(out)] == list(range(1, steps_logged + 3))


def test_second_ctrl_c_stops_at_once_without_a_traceback(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(tiny, out)
    assert proc.stderr is not None
    try:
        _wait_for_steps(proc, out / "metrics.jsonl", 1)
        os.killpg(proc.pid, signal.SIGINT)
        for line in proc.stderr:  # the event: the first Ctrl-C was seen and the step is finishing
            if line.startswith("interrupt: saving a checkpoint"):
                break
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_resume_with_the_printed_hint_continues_the_run_as_started(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    start = subprocess.run(_cli("--set", f"model={tiny}", "--set", f"output_dir={out}", "--set", "steps=3",
                                "--set", "checkpoint_every=1", "--set", "keep_checkpoints=null",
                                "--set", "progress=false"), capture_output=True, text=True, timeout=300)
    assert start.returncode == 0, start.stderr
    before = _metrics(out)
    resumed = subprocess.run(_cli("--resume", str(out / "checkpoints" / "step-000001")),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [_without_times(m) for m in _metrics(out)] == [_without_times(m) for m in before]  # to step 3, exactly

    again = subprocess.run(_cli("--resume", str(out)), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert ("warning: train.steps is 3 and the checkpoint is at step 3: nothing left to train; "
            "to go on, pass --set steps=N with N > 3") in again.stderr


def test_fresh_run_in_a_used_folder_starts_over(tiny: str, tmp_path: Path) -> None:
    """An earlier run's checkpoints must not outlive a new run there: `--resume DIR` would pick them,
    and pruning would keep them in place of the new ones."""
    settings = {"model": tiny, "checkpoint_every": 1, "keep_checkpoints": 2, "progress": False,
                "output_dir": str(tmp_path / "run")}
    gdpo.train(DEMO, overrides={**settings, "steps": 3})
    out = gdpo.train(DEMO, overrides={**settings, "steps": 1, "seed": 5})
    assert [p.name for p in checkpoint.list_checkpoints(out)] == ["step-000001"]
    assert [m["step"] for m in _metrics(out)] == [1]
