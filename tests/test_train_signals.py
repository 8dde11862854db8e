"""Reward-hacking signals during training (issue 13, part 3): a lenient reward from step 1, a gate
whose pass rate climbs while what it guards stays flat, completions hitting max_new_tokens more
and more; each on the console and in metrics.jsonl with its step and numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardkit.trainers.hack_signals import HackSignals

ROOT = Path(__file__).resolve().parents[1]


def _step(pass_rates: dict[str, float], truncated: float = 0.0) -> dict[str, float]:
    m = {f"reward/{n}/pass_rate": v for n, v in pass_rates.items()}
    m.update({f"reward/{n}/gated_share": 0.0 for n in pass_rates})
    m["len/truncated"] = truncated
    return m


def test_a_reward_passing_almost_everything_at_step_1_is_lenient() -> None:
    said: list[str] = []
    signals = HackSignals(["format", "correct"], {}, said.append)
    metrics = _step({"format": 0.97, "correct": 0.1})
    signals.observe(1, metrics)
    assert metrics["signal/lenient/format"] == 0.97 and "signal/lenient/correct" not in metrics
    assert said == [said[0]] and "step 1: reward 'format' passes 97%" in said[0]
    later = _step({"format": 1.0, "correct": 0.1})
    signals.observe(2, later)
    assert "signal/lenient/format" not in later and len(said) == 1  # once per run


def test_a_gate_climbing_while_its_gated_reward_stays_flat() -> None:
    said: list[str] = []
    signals = HackSignals(["format", "correct"], {"format": ["correct"]}, said.append, window=3)
    fired_at = None
    for step in range(1, 11):
        metrics = _step({"format": min(1.0, 0.1 * step), "correct": 0.2})
        signals.observe(step, metrics)
        if "signal/gate_flat/format" in metrics and fired_at is None:
            fired_at = step
    assert fired_at == 6  # two full windows: 0.1-0.3 vs 0.4-0.6
    assert len(said) == 1 and "reward 'format' pass rate climbed 0.20 -> 0.50" in said[0]
    assert "correct 0.20 -> 0.20" in said[0]


def test_no_gate_signal_when_the_gated_reward_climbs_too() -> None:
    said: list[str] = []
    signals = HackSignals(["format", "correct"], {"format": ["correct"]}, said.append, window=3)
    for step in range(1, 11):
        signals.observe(step, _step({"format": min(1.0, 0.1 * step), "correct": 0.05 * step}))
    assert said == []


def test_rising_truncation_is_reported_with_the_share() -> None:
    said: list[str] = []
    signals = HackSignals(["r"], {}, said.append, window=2)
    seen = {}
    for step, share in enumerate([0.0, 0.1, 0.3, 0.6, 0.7], start=1):
        metrics = _step({"r": 0.5}, truncated=share)
        signals.observe(step, metrics)
        seen.update({k: v for k, v in metrics.items() if k.startswith("signal/")})
    assert seen == {"signal/truncation_rising": pytest.approx(0.45)}
    assert len(said) == 1 and "45% of completions now end at max_new_tokens (was 5%" in said[0]


def test_a_real_run_logs_a_lenient_reward(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from rewardkit.cli import main
    from rewardkit.trainers.tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path / "model")
    settings = {"model": str(model), "data": str(ROOT / "specs" / "data" / "demo_train.jsonl"),
                "prompts_per_step": 2, "group_size": 4, "max_new_tokens": 3, "steps": 2, "cpu_threads": 1,
                "progress": False, "tensorboard": False, "output_dir": str(tmp_path / "run")}
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nname: lenient\nrewards:\n"
                    "  - {name: correct, verifier: exact_match, args: {reference: answer, extract: regex, "
                    "pattern: '(\\d)'}}\n"
                    "  - {name: anything, verifier: length_limit, args: {unit: characters, max_length: 100000}}\n"
                    f"train: {json.dumps(settings)}\n")
    assert main(["train", str(spec)]) == 0
    err = capsys.readouterr().err
    assert "signal: step 1: reward 'anything' passes 100% of the samples" in err
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["signal/lenient/anything"] == 1.0 and "signal/lenient/anything" not in lines[1]
