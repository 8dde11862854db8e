"""The check table a person reads: each completion, the answer as written and normalized, plain
English counts, and `--format table|json`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from rewardkit.check import run_check
from rewardkit.cli import _render_check, main
from rewardkit.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "quickstart.yaml"
SAMPLES = ROOT / "specs" / "samples" / "quickstart.jsonl"


def _table() -> str:
    console = Console(file=io.StringIO(), width=300, color_system=None)
    with load_spec(SPEC) as spec, SAMPLES.open() as lines:
        _render_check(run_check(spec, lines), console)
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_table_shows_each_completion_clipped_and_the_answer_as_written_and_normalized() -> None:
    out = _table()
    assert "│ The answer is <answer>Paris</answer>     │" in out  # a short completion as it is
    assert "carefully step by ste...  " in out  # a long one clipped to 60 characters
    assert "1 'Paris' (normalized 'paris') matches the reference" in out
    assert "0 expected 'Paris', got 'Lyon' (normalized 'lyon')" in out
    assert "1 '42' matches the reference" in out  # nothing to normalize: said once


def test_table_counts_and_gates_read_as_english() -> None:
    out = _table()
    assert "1 1 word, within the limit of 30" in out and "1 words" not in out
    assert "0 gated: `correct >= 1` is false" in out and "gated 0 gated" not in out


@pytest.mark.parametrize("flags", [["--format", "json"], ["--json"]])
def test_format_json_prints_the_report(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SPEC), str(SAMPLES), *flags]) == 0
    assert json.loads(capsys.readouterr().out)["spec"] == "quickstart"


def test_format_table_prints_the_table_even_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SPEC), str(SAMPLES), "--format", "table"]) == 0
    assert "distinct advantage values: GRPO 7, GDPO 8" in capsys.readouterr().out
