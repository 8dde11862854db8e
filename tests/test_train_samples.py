"""What the policy wrote is visible: every N steps the completions, scores, reasons and advantages go
to OUTPUT_DIR/samples/step-N.jsonl in the format `rewardkit check` reads (a logged step re-checks to
the same numbers), to TensorBoard as text and to W&B as a table; evaluations print on the console."""

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


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("samples")
    tiny = build_tiny_model(root / "tiny")
    settings = {"model": str(tiny), "output_dir": str(root / "run"), "progress": False, "steps": 4,
                "log_samples_every": 2, "eval_every": 2, "tensorboard": True}
    return gdpo.train(DEMO, overrides=settings)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_nth_step_is_logged_with_scores_reasons_and_advantages(run_dir: Path) -> None:
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step-2.jsonl", "step-4.jsonl"]
    rows = _rows(run_dir / "samples" / "step-2.jsonl")
    assert len(rows) == 64  # 8 prompts x 8 completions
    first = rows[0]
    assert {"prompt", "answer", "completion", "_step", "_group", "_scores", "_advantage", "_truncated"} <= set(first)
    assert first["_step"] == 2 and first["_group"] == "step 2 group 1" and rows[8]["_group"] == "step 2 group 2"
    assert set(first["_scores"]) == {"format", "correct", "short"}
    assert {"score", "reason", "error", "gated"} == set(first["_scores"]["format"])
    assert first["completion"][0]["role"] == "assistant"  # chat prompts: the completion as a message list
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {m["step"] for m in metrics} == {1, 2, 3, 4}


def test_a_logged_step_rechecks_to_the_same_scores_and_advantages(
        run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logged = _rows(run_dir / "samples" / "step-4.jsonl")
    tokenizer = run_dir / "checkpoints" / "step-000004" / "model"
    assert main(["check", DEMO, str(run_dir / "samples" / "step-4.jsonl"), "--group-by", "_group",
                 "--tokenizer", str(tokenizer), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["scores"] for s in report["samples"]] == [r["_scores"] for r in logged]
    for sample, row in zip(report["samples"], logged, strict=True):
        assert sample["advantages"]["gdpo"] == pytest.approx(row["_advantage"], abs=1e-5)


def test_tensorboard_gets_the_samples_as_text(run_dir: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    texts = events.Tensors("samples/text_summary")
    assert [t.step for t in texts] == [2, 4]
    table = texts[0].tensor_proto.string_val[0].decode()
    assert table.startswith("| group | prompt | completion | format score | format reason |")
    assert table.count("\n") == 2 + 64


def test_evaluation_results_are_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = build_tiny_model(tmp_path / "tiny")
    gdpo.train(DEMO, overrides={"model": str(tiny), "output_dir": str(tmp_path / "run"), "progress": False,
                                "steps": 2, "eval_every": 1, "log_samples_every": 0, "tensorboard": False})
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("eval at step")]
    assert [line.split(":")[0] for line in lines] == ["eval at step 1", "eval at step 2"]
    assert "format " in lines[0] and "(pass " in lines[0] and "short " in lines[0]
    assert not (tmp_path / "run" / "samples").exists()  # log_samples_every: 0 writes none


def test_wandb_gets_the_samples_as_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason="wandb is not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    tiny = build_tiny_model(tmp_path / "tiny")
    out = gdpo.train(DEMO, overrides={"model": str(tiny), "output_dir": str(tmp_path / "run"), "progress": False,
                                      "steps": 1, "log_samples_every": 1, "tensorboard": False,
                                      "wandb_project": "rewardkit-test"})
    (table_file,) = (out / "wandb").glob("offline-run-*/files/media/table/samples_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"][:3] == ["group", "prompt", "completion"] and table["columns"][-1] == "advantage"
    assert len(table["data"]) == 64
