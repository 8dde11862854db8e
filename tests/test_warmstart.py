"""The warm start (`rewardkit warmstart`, `rewardkit.trainers.sft`): imitation that RL builds on.

A randomly initialised tiny model, shown the demo task's answers, must answer held-out prompts
the same way afterwards (greedy), and stop; the CLI must write a model `from_pretrained` loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from rewardkit.cli import main  # noqa: E402
from rewardkit.trainers.data import DataError  # noqa: E402
from rewardkit.trainers.demo_data import demo_rows  # noqa: E402
from rewardkit.trainers.sft import WarmStartSettings, warm_start  # noqa: E402
from rewardkit.trainers.tiny_model import build_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _demonstrations() -> tuple[list[dict], list[dict]]:
    train, held_out = demo_rows()
    return [{**r, "completion": f"<a> {r['answer']} </a>"} for r in train], held_out


def _greedy(model_dir: Path, prompts: list[list[dict]]) -> list[str]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out = []
    for messages in prompts:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
        out.append(tok.decode(gen[0, ids.shape[1]:]))
    return out


def test_warm_start_teaches_held_out_prompts(tmp_path: Path) -> None:
    train, held_out = _demonstrations()
    init = build_tiny_model(tmp_path / "init", seed=0)
    before = _greedy(init, [r["prompt"] for r in held_out])
    out = warm_start(init, train, tmp_path / "sft", WarmStartSettings(steps=150, batch_size=16, cpu_threads=1))
    after = _greedy(out, [r["prompt"] for r in held_out])
    want = [f"<a> {r['answer']} </a> <eos>" for r in held_out]
    right_before = sum(a == w for a, w in zip(before, want, strict=True))
    right_after = sum(a == w for a, w in zip(after, want, strict=True))
    assert right_before == 0, before
    assert right_after >= 0.75 * len(want), list(zip(after, want, strict=True))
    losses = [loss for _, loss in json.loads((out / "warmstart.json").read_text())["loss"]]
    assert losses[-1] < 0.2 * losses[0], losses


def test_warm_start_names_a_missing_field(tmp_path: Path) -> None:
    train, _ = _demonstrations()
    with pytest.raises(DataError, match="row 1 has no field 'demo'"):
        warm_start(tmp_path, train, tmp_path / "out", WarmStartSettings(target_field="demo"))


def test_warmstart_command_writes_a_loadable_model(tmp_path: Path) -> None:
    train, _ = _demonstrations()
    data = tmp_path / "demos.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in train))
    init = build_tiny_model(tmp_path / "init", seed=1)
    out = tmp_path / "warm"
    code = main(["warmstart", str(ROOT / "specs" / "demo.yaml"), "--data", str(data), "--from", str(init),
                 "--out", str(out), "--steps", "5", "--batch-size", "8"])
    assert code == 0
    AutoModelForCausalLM.from_pretrained(out)
    summary = json.loads((out / "warmstart.json").read_text())
    assert summary["settings"]["steps"] == 5 and summary["rows"] == len(train)


def test_warmstart_command_reports_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["warmstart", str(ROOT / "specs" / "demo.yaml"), "--data", str(tmp_path / "none.jsonl"),
                 "--out", str(tmp_path / "o")])
    assert code == 1
    assert "none.jsonl" in capsys.readouterr().err
