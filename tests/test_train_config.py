"""The `train:` section: validated at load time with file and line, documented, torch-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.errors import SpecError
from rewardkit.spec import load_spec, load_spec_text
from rewardkit.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "specs" / "demo.yaml"


def test_demo_spec_train_section_loads() -> None:
    spec = load_spec(DEMO)
    assert isinstance(spec.train, TrainConfig)
    assert spec.train.group_size == 8 and spec.train.kl_coef == 0.1
    assert spec.reward_names == ["format", "correct", "short"]


def test_bad_train_values_fail_with_file_line_and_key() -> None:
    text = DEMO.read_text().replace("group_size: 8", "group_size: 1").replace("lr: 1.0e-3", "lr: 1.0e-3\n  stepz: 3")
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "demo.yaml")
    lines = text.splitlines()
    messages = [str(issue) for issue in info.value.issues]
    group_line = next(i for i, line in enumerate(lines, 1) if "group_size: 1" in line)
    typo_line = next(i for i, line in enumerate(lines, 1) if "stepz" in line)
    assert any(m.startswith(f"demo.yaml:{group_line}:") and "train.group_size" in m for m in messages), messages
    assert any(m.startswith(f"demo.yaml:{typo_line}:") and "did you mean 'steps'" in m for m in messages), messages


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"top_p": 1.5}, "top_p"),
        ({"loss_aggregation": "token_sum"}, "loss_aggregation"),
        ({"device": "gpu"}, "device"),
        ({"grad_accum": 1000}, "grad_accum"),
        ({"ref_model": "x"}, "kl_coef is 0"),
        ({"betas": [0.9, 1.5]}, "beta"),
    ],
)
def test_invalid_settings_are_rejected(override: dict, needle: str) -> None:
    base = {"model": "m", "data": "d.jsonl"}
    with pytest.raises(ValueError, match=needle):
        TrainConfig.model_validate({**base, **override})


def test_every_field_is_documented() -> None:
    missing = [name for name, f in TrainConfig.model_fields.items() if not (f.description or "").strip()]
    assert missing == []


def test_train_config_does_not_import_torch() -> None:
    code = "import sys, rewardkit.spec, rewardkit.train_config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
