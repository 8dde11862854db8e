"""Failures are loud: a reward that keeps erroring stops the run with its reasons, smaller error
counts are printed, and steps with no learning signal are warned about with the reward means."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rewardkit.cli import main
from rewardkit.scoring import Cell, ScoreTable

ROOT = Path(__file__).resolve().parents[1]
REWARDS = '''
import re

def broken(sample):
    raise RuntimeError("reference table not loaded")

def flaky(sample):
    if sample["answer"] in "012":
        raise ValueError("cannot read a small digit")
    return 1.0

def never(sample):
    return 0.0
'''


def _table(cells: list[list[Cell]], names: list[str]) -> ScoreTable:
    return ScoreTable(names, cells, [1.0] * len(names))


def _ok() -> Cell:
    return Cell(1.0, "ok")


def _bad(reason: str = "boom") -> Cell:
    return Cell(math.nan, reason, error=reason)


def test_guard_stops_at_step_1_when_the_share_is_above_the_setting() -> None:
    from rewardkit.trainers.error_guard import ErrorGuard, RewardErrorsExceeded

    said: list[str] = []
    guard = ErrorGuard(["a", "b"], window=10, max_share=0.5, report=said.append)
    table = _table([[_ok(), _bad("KeyError: x")], [_ok(), _bad("KeyError: x")], [_ok(), _bad("TypeError: y")],
                    [_ok(), _ok()]], ["a", "b"])
    with pytest.raises(RewardErrorsExceeded) as info:
        guard.observe(1, table)
    text = str(info.value)
    assert "reward 'b'" in text and "3/4" in text and "75%" in text and "max_error_share=0.5" in text
    assert "2x KeyError: x; 1x TypeError: y" in text
    assert said == ["step 1: reward 'b' errored on 3/4 samples; top reason: KeyError: x"]


def test_guard_measures_the_share_over_its_window_and_ignores_gated_cells() -> None:
    from rewardkit.trainers.error_guard import ErrorGuard, RewardErrorsExceeded

    said: list[str] = []
    guard = ErrorGuard(["a"], window=3, max_share=0.5, report=said.append)
    gated = Cell(0.0, "gated", gated=True)
    guard.observe(1, _table([[_bad()], [_ok()], [gated], [gated]], ["a"]))  # 1/2 judged: not above 0.5
    guard.observe(2, _table([[_ok()], [_ok()]], ["a"]))                       # 1/4
    guard.observe(3, _table([[_bad()], [_ok()]], ["a"]))                      # 2/6
    guard.observe(4, _table([[_bad()], [_bad()]], ["a"]))                     # window 2..4: 3/6
    assert said == ["step 1: reward 'a' errored on 1/2 samples; top reason: boom"]  # each reason once
    with pytest.raises(RewardErrorsExceeded, match=r"4/6 samples \(67%\) over the last 3 steps"):
        guard.observe(5, _table([[_bad()], [_ok()]], ["a"]))                  # window 3..5: 4/6


def test_guard_with_share_1_never_stops() -> None:
    from rewardkit.trainers.error_guard import ErrorGuard

    guard = ErrorGuard(["a"], window=1, max_share=1.0, report=lambda _: None)
    for step in range(1, 4):
        guard.observe(step, _table([[_bad()], [_bad()]], ["a"]))


def test_signal_watch_warns_once_per_flat_streak_with_the_means() -> None:
    from rewardkit.trainers.signal_watch import SignalWatch

    said: list[str] = []
    watch = SignalWatch(["correct", "short"], said.append, steps=3)
    flat = {"adv/zero_groups": 1.0, "reward/correct/mean": 0.0, "reward/short/mean": math.nan}
    for step in range(1, 6):
        watch.observe(step, flat)
    assert len(said) == 1
    assert said[0].startswith("warning: steps 1-3 had no learning signal")
    assert "correct 0.00 (never earned)" in said[0] and "short nan (every sample excluded (errors))" in said[0]
    watch.observe(6, {**flat, "adv/zero_groups": 0.5})  # signal came back: a new streak warns again
    for step in range(7, 10):
        watch.observe(step, flat)
    assert len(said) == 2 and said[1].startswith("warning: steps 7-9")


# --- real runs on the tiny model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from rewardkit.trainers.tiny_model import build_tiny_model

    return Path(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def _spec(tmp_path: Path, tiny: Path, module: str, function: str, **train: object) -> Path:
    (tmp_path / f"{module}.py").write_text(REWARDS)
    settings = {"model": str(tiny), "data": str(ROOT / "specs" / "data" / "demo_train.jsonl"),
                "prompts_per_step": 4, "group_size": 4, "max_new_tokens": 3, "steps": 3, "cpu_threads": 1,
                "progress": False, "tensorboard": False, "output_dir": str(tmp_path / "run"), **train}
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: guarded\nrewards:\n"
        "  - {name: correct, verifier: exact_match, args: {reference: answer, extract: regex, pattern: '(\\d)'}}\n"
        f"  - {{name: extra, verifier: python, args: {{function: '{module}:{function}'}}}}\n"
        f"train: {json.dumps(settings)}\n")
    return spec


def test_a_reward_that_always_errors_stops_training_at_step_1(
        tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, tiny, "rk_guard_broken", "broken")
    assert main(["train", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "step 1: reward 'extra' errored on 16/16 samples; top reason: RuntimeError: reference table not loaded" in err
    assert ("error: reward 'extra' errored on 16/16 samples (100%) over the last 1 step (up to step 1), above "
            "train.max_error_share=0.5; most common reasons: 16x RuntimeError: reference table not loaded") in err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "metrics.jsonl").read_text().strip()  # it stopped before training on it


def test_occasional_errors_are_printed_and_training_goes_on(
        tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, tiny, "rk_guard_flaky", "flaky", steps=4, max_error_share=0.9)
    assert main(["train", str(spec)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "errored on" in line]
    assert lines and all("top reason: ValueError: cannot read a small digit" in line for line in lines)
    assert len(lines) == 1  # the same reason is printed once, not every step
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 4 and sum(m["reward/extra/errors"] for m in logged) > 0


def test_no_signal_for_several_steps_warns_with_the_reward_means(
        tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, tiny, "rk_guard_never", "never", steps=5)
    text = spec.read_text().replace("  - {name: correct,", "  - {name: correct, weight: 0,")
    spec.write_text(text.replace("pattern: '(\\d)'", "pattern: 'NOPE(\\d)'"))  # nobody earns either reward
    assert main(["train", str(spec)]) == 0
    err = capsys.readouterr().err
    assert "warning: steps 1-5 had no learning signal" in err
    assert "correct 0.00 (never earned), extra 0.00 (never earned)" in err
