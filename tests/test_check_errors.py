"""`rewardkit check` is loud about what went wrong: errored cells get a summary with reasons on
stderr and exit 3, a `--group-by` field nobody has is a usage error, every bundled spec checks
clean with the command the README shows, and model text prints literally in the table."""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import pytest

from rewardkit.cli import EXIT_CELL_ERRORS, main

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "quickstart.yaml"
SAMPLES = ROOT / "specs" / "samples" / "quickstart.jsonl"


def _readme_check_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"^(rewardkit check specs/\S+ specs/samples/.*)$", readme, flags=re.M)


def test_readme_shows_a_check_command_for_each_spec_of_the_tour() -> None:
    """The tour's specs and their samples (the paper_* specs check with the tokenizers of the models
    experiments/paper_tasks.py builds, as their own headers say)."""
    commands = _readme_check_commands()
    named = {shlex.split(c)[3] for c in commands}
    assert named >= {f"specs/samples/{n}.jsonl" for n in ("quickstart", "math", "tool_calling", "code", "demo")}
    assert all((ROOT / shlex.split(c)[2]).exists() and (ROOT / shlex.split(c)[3]).exists() for c in commands)


@pytest.mark.parametrize("command", _readme_check_commands())
def test_every_bundled_spec_checks_clean_with_the_readme_command(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    argv = shlex.split(command)[1:]
    if "models/tiny" in argv and not (ROOT / "models" / "tiny").is_dir():  # the demo's model, built by demo.sh
        pytest.importorskip("transformers")
        from rewardkit.trainers.tiny_model import build_tiny_model

        argv[argv.index("models/tiny")] = str(build_tiny_model(tmp_path / "tiny"))
    assert main(argv + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(r["errors"] == 0 for r in report["summary"]["rewards"]), report["summary"]


def test_a_token_length_without_a_tokenizer_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    spec, samples = ROOT / "specs" / "math_length.yaml", ROOT / "specs" / "samples" / "math.jsonl"
    assert main(["check", str(spec), str(samples), "--json"]) == EXIT_CELL_ERRORS
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    short = report["summary"]["rewards"][1]
    assert short["name"] == "short" and short["errors"] == 8
    (reason, count), = short["error_reasons"].items()
    assert count == 8 and "--tokenizer PATH" in reason
    assert "error: reward 'short' errored on 8 of 12 samples: 8x ValueError: unit tokens needs a tokenizer: " \
           "pass `rewardkit check --tokenizer PATH`" in captured.err


def test_errored_cells_exit_3_with_a_summary_of_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rk_check_broken.py").write_text(
        "def broken(sample):\n    raise RuntimeError('reference table not loaded')\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nname: t\nrewards:\n"
                    "  - {name: correct, verifier: exact_match}\n"
                    "  - {name: broken, verifier: python, args: {function: 'rk_check_broken:broken'}}\n")
    assert main(["check", str(spec), str(SAMPLES), "--json"]) == EXIT_CELL_ERRORS
    err = capsys.readouterr().err
    assert err.strip() == ("error: reward 'broken' errored on 8 of 8 samples: "
                           "8x RuntimeError: reference table not loaded")


def test_group_by_a_field_no_sample_has_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SPEC), str(SAMPLES), "--group-by", "promt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --group-by 'promt': no sample has that field")
    assert "fields present: answer, completion, prompt" in err


def test_model_text_prints_literally_in_the_table() -> None:
    from rich.console import Console

    from rewardkit.check import run_check
    from rewardkit.cli import _render_check
    from rewardkit.spec import load_spec

    rows = [{"prompt": "q", "answer": "Paris", "completion": "<think>a</think><answer>Paris</answer>"},
            {"prompt": "q", "answer": "Paris", "completion": "<think>a</think><answer>:x: [bold]Lyon[/bold]</answer>"}]
    console = Console(file=io.StringIO(), width=250, force_terminal=True, color_system=None)
    with load_spec(SPEC) as spec:
        _render_check(run_check(spec, [json.dumps(r) for r in rows]), console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert ":x: [bold]Lyon[/bold]" in out
    assert "\u274c" not in out
