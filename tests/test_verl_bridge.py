"""rewardkit's verl bridge in our own venv (no verl needed): how verl's arguments become samples, what
comes back, what an excluded cell returns, the batch form, the export command. verl's own managers
and GDPO on this bridge: test_verl_parity.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rewardkit.cli import main
from rewardkit.integrations import verl
from rewardkit.spec import load_spec_text

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "specs" / "quickstart.yaml"
FIELD_SPEC = """
version: 1
name: fields
rewards:
  - {name: value, verifier: "rk_test_verifiers:FieldValue", args: {field: value}, otherwise: -1.0}
  - {name: half, verifier: "rk_test_verifiers:FieldValue", args: {field: value}, weight: 0.5, on_error: otherwise}
advantage: {method: gdpo}
"""


def field_scorer(**kwargs: object) -> verl.VerlScorer:
    return verl.VerlScorer(load_spec_text(FIELD_SPEC, "fields.yaml"), **kwargs)  # type: ignore[arg-type]


def test_compute_score_returns_score_rewards_and_error_count() -> None:
    extra = {"rewardkit_fields": json.dumps({"prompt": "capital of France?", "answer": "Paris"}), "index": 3}
    out = verl.compute_score("quickstart", "<think>Paris.</think><answer>Paris</answer>", "Paris", extra,
                             spec=str(QUICKSTART))
    assert set(out) == {"score", "format", "correct", "brief", "rewardkit_errors"}
    assert out["format"] == out["correct"] == 1.0 and out["rewardkit_errors"] == 0
    assert out["score"] == pytest.approx(out["format"] + out["correct"] + out["brief"])
    wrong = verl.compute_score("quickstart", "<answer>Lyon</answer>", "Paris", extra, spec=str(QUICKSTART))
    assert wrong["correct"] == 0.0 and wrong["brief"] == 0.0  # gated: otherwise


def test_a_bare_ground_truth_fills_the_specs_reference_field() -> None:
    # Hand-made verl data: no rewardkit_fields, the answer only in reward_model.ground_truth.
    out = verl.compute_score("x", "<think>.</think><answer>Paris</answer>", "Paris", {"index": 0},
                             spec=str(QUICKSTART))
    assert out["correct"] == 1.0
    scorer = verl.scorer_for(QUICKSTART)
    sample = scorer.sample("x", "done", {"answer": "Rome", "tests": [1]}, None)
    assert sample["answer"] == "Rome" and sample["tests"] == [1] and sample["completion"] == "done"


def test_excluded_cell_returns_otherwise_and_counts_as_an_error() -> None:
    scorer = field_scorer()
    good, bad = scorer.score([{"completion": "", "value": 2}, {"completion": "", "value": "boom"}])
    assert good == {"score": 3.0, "value": 2.0, "half": 2.0, "rewardkit_errors": 0}
    # `value` is excluded (NaN inside rewardkit): verl gets its otherwise (-1), nothing in score;
    # `half` scores its otherwise (0) by policy, which does count in score (0 * 0.5).
    assert bad == {"score": 0.0, "value": -1.0, "half": 0.0, "rewardkit_errors": 2}
    assert all(not math.isnan(v) for v in bad.values())


def test_batch_form_scores_the_batch_with_one_spec_score_call() -> None:
    scorer = verl.scorer_for(QUICKSTART)
    before = scorer.scoring_calls
    out = verl.compute_score_batch(data_sources=["q"] * 3, solution_strs=["<answer>Paris</answer>", "x", "y"],
                                   ground_truths=["Paris"] * 3, extra_infos=[{}, None, {}], spec=str(QUICKSTART))
    assert len(out) == 3 and out[0]["correct"] == 1.0 and out[1]["correct"] == 0.0
    assert scorer.scoring_calls == before + 1


def test_a_reward_that_keeps_failing_stops_the_run() -> None:
    scorer = field_scorer(max_consecutive_errors=3)
    scorer.score([{"completion": "", "value": "boom"}] * 2 + [{"completion": "", "value": 1}])  # streak reset
    with pytest.raises(verl.VerlRewardError, match="reward 'value' failed on 3 samples in a row"):
        scorer.score([{"completion": "", "value": "boom"}] * 3)


def test_reserved_reward_names_and_missing_spec_are_refused() -> None:
    spec = load_spec_text(FIELD_SPEC.replace("name: value", "name: score"), "s.yaml")
    with pytest.raises(verl.VerlRewardError, match="'score' is a key verl's result dict already uses"):
        verl.VerlScorer(spec)
    with pytest.raises(verl.VerlRewardError, match="reward_kwargs.spec"):
        verl.compute_score("x", "y", "z")


def test_export_verl_prints_overrides_ready_to_paste(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "verl", str(QUICKSTART)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("python -m verl.trainer.main_ppo \\\n")
    for line in ("'algorithm.adv_estimator=gdpo'", "'+algorithm.gdpo_reward_keys=[format,correct,brief]'",
                 "'+algorithm.gdpo_reward_weights=[1.0,1.0,1.0]'", "'reward.custom_reward_function.name=compute_score'",
                 f"'+reward.custom_reward_function.reward_kwargs.spec={QUICKSTART}'"):
        assert line in text
    assert main(["export", "verl", str(QUICKSTART), "--batch"]) == 0
    text = capsys.readouterr().out
    assert "reward.reward_manager.name=RewardkitRewardManager" in text and "verl_manager.py" in text


def test_export_verl_data_writes_verls_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "train.parquet"
    samples = ROOT / "specs" / "samples" / "quickstart.jsonl"
    assert main(["export", "verl-data", str(samples), "-o", str(out), "--spec", str(QUICKSTART)]) == 0
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 8 and set(rows[0]) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    assert rows[0]["prompt"][0]["role"] == "user" and rows[0]["reward_model"]["ground_truth"] == "Paris"
    assert verl.row_fields(rows[0]["extra_info"])["answer"] == "Paris"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no prompt field"}\n')
    assert main(["export", "verl-data", str(bad), "-o", str(out)]) == 1
    assert "row 1 has no prompt field 'prompt'" in capsys.readouterr().err


def test_remote_scoring_on_a_rewardkit_server_gives_the_same_results() -> None:
    pytest.importorskip("fastapi")
    from rk_serve import Server

    args = {"data_sources": ["q"] * 4, "ground_truths": ["Paris"] * 4, "extra_infos": [{}] * 4,
            "solution_strs": ["<think>.</think><answer>Paris</answer>", "<answer>Lyon</answer>", "",
                              "<think>" + "long " * 40 + "</think><answer>Paris</answer>"]}
    local = verl.compute_score_batch(**args, spec=str(QUICKSTART))
    with Server(QUICKSTART) as srv:
        remote = verl.compute_score_batch(**args, spec=str(QUICKSTART), remote=srv.url)
        single = verl.compute_score("q", args["solution_strs"][0], "Paris", {}, spec=str(QUICKSTART), remote=srv.url)
        served = srv.get("/metrics").text
    assert remote == local and single == local[0]
    assert 'rewardkit_samples_total{endpoint="score"} 5.0' in served
