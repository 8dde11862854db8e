"""Data a user already has, read by the real `datasets` library offline: a dataset folder laid out
like a hub repository (name, config, split), a `save_to_disk` folder, parquet, JSONL; columns
renamed, a prompt template and a system prompt; GSM8K-shaped `#### N` answers and chat prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardkit.errors import DataError
from rewardkit.spec import load_spec
from rewardkit.train_inputs import data_rows

datasets = pytest.importorskip("datasets")

ROOT = Path(__file__).resolve().parents[1]
GSM8K = [
    {"question": "Natalia sold clips to 48 friends in April, and half as many in May. How many in all?",
     "answer": "In May she sold 48/2 = <<48/2=24>>24 clips.\nIn all 48+24 = <<48+24=72>>72 clips.\n#### 72"},
    {"question": "Weng earns $12 an hour. She babysat 50 minutes. How much did she earn?",
     "answer": "Per minute: 12/60 = $<<12/60=0.2>>0.2.\nFor 50 minutes: 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10"},
]
CARD = """---
configs:
- config_name: main
  data_files:
  - {split: train, path: main/train.jsonl}
  - {split: test, path: main/test.jsonl}
- config_name: socratic
  data_files:
  - {split: train, path: socratic/train.jsonl}
---
"""


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _spec(tmp_path: Path, train: dict) -> Path:
    spec = tmp_path / "math.yaml"
    spec.write_text("version: 1\nname: gsm8k\nrewards:\n"
                    "  - {name: correct, verifier: math_equivalence, args: {reference: answer}}\n"
                    f"train: {json.dumps({'model': 'unused', **train})}\n")
    return spec


def _rows(spec_path: Path, key: str = "data") -> list[dict]:
    with load_spec(spec_path) as spec:
        assert spec.train is not None
        return data_rows(spec.train, spec, spec_path.parent, key)


@pytest.fixture
def hub_folder(tmp_path: Path) -> Path:
    """A folder laid out like GSM8K's hub repository: a card naming configs, jsonl files per split."""
    repo = tmp_path / "gsm8k"
    (repo).mkdir()
    (repo / "README.md").write_text(CARD)
    _jsonl(repo / "main" / "train.jsonl", GSM8K)
    _jsonl(repo / "main" / "test.jsonl", GSM8K[:1])
    _jsonl(repo / "socratic" / "train.jsonl", [{**GSM8K[0], "question": "Socratic: " + GSM8K[0]["question"]}])
    return repo


def test_a_dataset_by_name_config_and_split_with_a_prompt_template(hub_folder: Path, tmp_path: Path) -> None:
    template = "{question} Put the final answer in \\boxed{}."
    spec = _spec(tmp_path, {"data": str(hub_folder), "data_config": "main", "data_split": "train",
                            "eval_data": str(hub_folder), "prompt_template": template})
    rows = _rows(spec)
    assert [r["prompt"] for r in rows] == [g["question"] + " Put the final answer in \\boxed{}." for g in GSM8K]
    assert rows[0]["answer"].endswith("#### 72")
    assert len(_rows(spec, "eval_data")) == 1  # eval_split: test
    socratic = _spec(tmp_path, {"data": str(hub_folder), "data_config": "socratic", "prompt_template": template})
    assert _rows(socratic)[0]["prompt"].startswith("Socratic: ")
    with load_spec(spec) as loaded:  # GSM8K's "#### N" gold answers are judged by their final number
        table = loaded.score([{**rows[0], "completion": "48 + 24 = \\boxed{72}"},
                              {**rows[1], "completion": "\\boxed{12}"}])
    assert list(table.column("correct")) == [1.0, 0.0]


def test_a_save_to_disk_folder_with_chat_prompts_renamed_columns_and_a_system_prompt(tmp_path: Path) -> None:
    chat = [{"messages": [{"role": "user", "content": g["question"]}], "solution": g["answer"]} for g in GSM8K]
    folder = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(chat)}).save_to_disk(str(folder))
    spec = _spec(tmp_path, {"data": str(folder), "columns": {"messages": "prompt", "solution": "answer"},
                            "system_prompt": "Answer in \\boxed{}."})
    rows = _rows(spec)
    assert rows[0]["prompt"] == [{"role": "system", "content": "Answer in \\boxed{}."},
                                 {"role": "user", "content": GSM8K[0]["question"]}]
    assert rows[1]["answer"] == GSM8K[1]["answer"] and "messages" not in rows[0]
    single = tmp_path / "single"
    datasets.Dataset.from_list(chat).save_to_disk(str(single))  # a Dataset, not a DatasetDict
    assert len(_rows(_spec(tmp_path, {"data": str(single), "columns": {"messages": "prompt",
                                                                        "solution": "answer"}}))) == 2


def test_parquet_and_jsonl_written_by_datasets_read_the_same(tmp_path: Path) -> None:
    data = datasets.Dataset.from_list([{"prompt": g["question"], "answer": g["answer"]} for g in GSM8K])
    data.to_parquet(str(tmp_path / "d.parquet"))
    data.to_json(str(tmp_path / "d.jsonl"), lines=True)
    from_parquet = _rows(_spec(tmp_path, {"data": str(tmp_path / "d.parquet")}))
    from_jsonl = _rows(_spec(tmp_path, {"data": str(tmp_path / "d.jsonl")}))
    assert from_parquet == from_jsonl == [{"prompt": g["question"], "answer": g["answer"]} for g in GSM8K]


def test_bad_splits_columns_and_templates_say_what_is_there(hub_folder: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(GSM8K)}).save_to_disk(str(saved))
    with pytest.raises(DataError, match=r"no split 'validation' \(splits: train\); set train.data_split"):
        _rows(_spec(tmp_path, {"data": str(saved), "data_split": "validation", "columns": {"question": "prompt"}}))
    with pytest.raises(DataError, match=r"row 1 has no column 'query' named in train.columns \(columns: \['answer', "):
        _rows(_spec(tmp_path, {"data": str(saved), "columns": {"query": "prompt"}}))
    with pytest.raises(DataError, match=r"train.prompt_template names \{problem\}, which row 1 lacks"):
        _rows(_spec(tmp_path, {"data": str(saved), "prompt_template": "{problem}"}))
    with pytest.raises(DataError, match=r"could not be loaded by datasets"):
        _rows(_spec(tmp_path, {"data": str(hub_folder), "data_config": "nope"}))
    with pytest.raises(DataError, match=r"not found next to"):
        _rows(_spec(tmp_path, {"data": "data/missing.jsonl"}))


def test_a_training_step_on_a_saved_dataset(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from rewardkit.trainers import gdpo
    from rewardkit.trainers.tiny_model import build_tiny_model

    demo = [json.loads(line) for line in (ROOT / "specs" / "data" / "demo_train.jsonl").read_text().splitlines()]
    saved = tmp_path / "demo-saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(
        [{"messages": r["prompt"], "answer": r["answer"]} for r in demo])}).save_to_disk(str(saved))
    out = gdpo.train(str(ROOT / "specs" / "demo.yaml"), overrides={
        "model": str(build_tiny_model(tmp_path / "tiny")), "data": str(saved), "columns": {"messages": "prompt"},
        "eval_data": None, "eval_every": 0, "steps": 1, "progress": False, "output_dir": str(tmp_path / "run")})
    assert json.loads((out / "metrics.jsonl").read_text())["step"] == 1
