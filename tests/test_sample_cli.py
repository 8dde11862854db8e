"""`rewardkit sample`: completions from a model or a checkpoint, rendered and sampled as training
does, written in the format `rewardkit check` reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardkit.cli import main
from rewardkit.trainers import gdpo
from rewardkit.trainers.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "specs" / "demo.yaml")
DATA = str(ROOT / "specs" / "data" / "demo_train.jsonl")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sample_writes_what_check_reads_with_the_trainers_settings(
        tiny: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "samples.jsonl"
    assert main(["sample", tiny, "--data", DATA, "--n", "3", "-o", str(out), "--spec", DEMO, "--limit", "4"]) == 0
    rows = _rows(out)
    assert len(rows) == 12
    assert [r["prompt"] for r in rows[:3]] == [rows[0]["prompt"]] * 3 and rows[3]["prompt"] != rows[0]["prompt"]
    assert all(r["completion"][0]["role"] == "assistant" and "answer" in r for r in rows)  # chat data: messages
    assert all(len(r["completion"][0]["content"].split()) <= 6 for r in rows)  # the spec's max_new_tokens: 6
    capsys.readouterr()
    assert main(["check", DEMO, str(out), "--tokenizer", tiny, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["samples"]) == 12 and len({s["group"] for s in report["samples"]}) == 4


def test_sample_is_the_trainers_generate_and_reads_checkpoints(tiny: str, tmp_path: Path) -> None:
    run = gdpo.train(DEMO, overrides={"model": tiny, "output_dir": str(tmp_path / "run"), "steps": 1,
                                      "progress": False, "tensorboard": False, "log_samples_every": 0})
    out = tmp_path / "from-run.jsonl"
    assert main(["sample", str(run), "--data", DATA, "--n", "2", "-o", str(out), "--spec", DEMO, "--limit", "8",
                 "--seed", "3"]) == 0
    trainer = gdpo.setup(DEMO, resume=str(run), overrides={"model": tiny, "output_dir": str(tmp_path / "run"),
                                                           "progress": False})
    from rewardkit.train_inputs import load_rows

    expected = gdpo.generate(trainer, load_rows(Path(DATA))[:8], 2, seed=3)
    trainer.spec.close()
    assert [r["completion"][0]["content"] for r in _rows(out)] == expected.texts


def test_sample_needs_an_existing_model_or_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["sample", str(tmp_path / "empty"), "--data", DATA, "-o", str(tmp_path / "o.jsonl")]) == 1
    assert "neither a model folder (no config.json) nor a checkpoint" in capsys.readouterr().err
