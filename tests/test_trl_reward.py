"""TRL reward functions work as a verifier unchanged: TRL's own `trl.rewards` functions, called the
way GRPOTrainer calls them, give the numbers they give when called directly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("trl")

from rewardkit.cli import main
from rewardkit.spec import load_spec
from rewardkit.verifier import ScoringContext

CHAT = [
    {"prompt": [{"role": "user", "content": "1/3?"}], "solution": r"\frac{1}{3}",
     "completion": [{"role": "assistant", "content": "<think>\nthirds\n</think>\nIt is $\\boxed{\\frac{1}{3}}$."}]},
    {"prompt": [{"role": "user", "content": "1/3?"}], "solution": r"\frac{1}{3}",
     "completion": [{"role": "assistant", "content": "It is $\\boxed{\\frac{1}{2}}$."}]},
    {"prompt": [{"role": "user", "content": "1/3?"}], "solution": "no latex here at all",
     "completion": [{"role": "assistant", "content": "<think>x</think>$\\boxed{3}$"}]},
]


def _spec(tmp_path: Path, rewards: str) -> Path:
    spec = tmp_path / "trl.yaml"
    spec.write_text(f"version: 1\nname: trl\nrewards:\n{rewards}")
    return spec


def test_trl_rewards_score_as_they_do_when_called_directly(tmp_path: Path) -> None:
    from trl.rewards import accuracy_reward, think_format_reward

    spec_path = _spec(tmp_path, "  - {name: think, verifier: trl_reward, args: {function: 'trl.rewards:think_format_reward'}}\n"
                                "  - {name: accurate, verifier: trl_reward, args: {function: 'trl.rewards:accuracy_reward'}}\n")
    completions = [s["completion"] for s in CHAT]
    with load_spec(spec_path) as spec:
        table = spec.score(CHAT)
    assert list(table.column("think")) == think_format_reward(completions)
    direct = accuracy_reward(completions, [s["solution"] for s in CHAT])
    got = list(table.column("accurate"))
    assert got[:2] == direct[:2] == [1.0, 0.0]
    assert direct[2] is None and math.isnan(got[2])  # TRL's "skip": an excluded cell, with the reason
    cell = table.cells[2][1]
    assert cell.error is not None and "accuracy_reward returned None (TRL: skip this example)" in cell.error
    # what it sent to log_extra rides along in the reason
    assert table.cells[1][1].reason == ("accuracy_reward: 0 (solution: \\frac{1}{3}; gold_parsed: [1/3, "
                                        "'\\\\frac{1}{3}']; answer_parsed: [1/2, '\\\\frac{1}{2}'])")


def test_text_completions_and_a_factory_with_completion_ids(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from trl.rewards import get_soft_overlong_punishment

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # one token per word
    samples = [{"prompt": "p", "completion": " ".join(["w"] * n)} for n in (3, 9, 12)]
    spec_path = _spec(tmp_path, "  - name: overlong\n    verifier: trl_reward\n    args:\n"
                                "      function: 'trl.rewards:get_soft_overlong_punishment'\n"
                                "      build: {max_completion_len: 10, soft_punish_cache: 4}\n")
    with load_spec(spec_path) as spec:
        table = spec.score(samples, ScoringContext(tokenizer=tokenizer))
        no_tokenizer = spec.score(samples)
    expected = get_soft_overlong_punishment(10, 4)(completion_ids=[[0] * n for n in (3, 9, 12)])
    assert list(table.column("overlong")) == pytest.approx(expected)
    assert expected[0] == 0.0 and expected[2] == -1.0
    assert "needs completion_ids: give a tokenizer (`rewardkit check --tokenizer PATH`" in no_tokenizer.cells[0][0].error


def test_think_format_on_text_samples_with_conversational_completions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_path = _spec(tmp_path, "  - name: think\n    verifier: trl_reward\n"
                                "    args: {function: 'trl.rewards:think_format_reward', completions: conversational}\n")
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"prompt": "q", "completion": "<think>a</think>b"}) + "\n"
                       + json.dumps({"prompt": "q", "completion": "b"}) + "\n")
    assert main(["check", str(spec_path), str(samples), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["scores"]["think"]["score"] for s in report["samples"]] == [1.0, 0.0]


def test_an_unimportable_function_is_a_load_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_path = _spec(tmp_path, "  - {name: x, verifier: trl_reward, args: {function: 'trl.rewards:no_such_reward'}}\n")
    assert main(["validate", str(spec_path)]) == 1
    assert "no function 'no_such_reward'" in capsys.readouterr().err
