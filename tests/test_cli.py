"""The `rewardkit` command: exit codes 0/1/2, located errors, and check's GRPO vs GDPO report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "quickstart.yaml"
SAMPLES = ROOT / "specs" / "samples" / "quickstart.jsonl"


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SPEC)]) == 0
    assert "ok (3 rewards: format, correct, brief; advantage gdpo)" in capsys.readouterr().out


def test_validate_reports_all_problems_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nrewards:\n  - name: a\n    verifier: nope\n    wieght: 2\n")
    assert main(["validate", str(SPEC), str(bad)]) == 1
    captured = capsys.readouterr()
    assert "quickstart.yaml: ok" in captured.out
    assert f"{bad}:5:15: rewards[0].verifier: unknown verifier 'nope'" in captured.err
    assert f"{bad}:6:5: rewards[0].wieght: unknown key 'wieght'; did you mean 'weight'?" in captured.err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    assert info.value.code == 2
    assert main([]) == 2


def test_check_json_shows_collapse(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SPEC), str(SAMPLES), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rewards"] == ["format", "correct", "brief"]
    samples = report["samples"]
    assert len(samples) == 8
    # lines 2 and 4 satisfy different rewards with the same sum: GRPO merges them, GDPO does not
    scores = {s["line"]: tuple(v["score"] for v in s["scores"].values()) for s in samples}
    assert scores[2] == (1.0, 1.0, 0.0) and scores[4] == (0.0, 1.0, 1.0)
    adv = {s["line"]: s["advantages"] for s in samples}
    assert adv[2]["grpo"] == adv[4]["grpo"]
    assert adv[2]["gdpo"] != adv[4]["gdpo"]
    assert report["summary"]["distinct_advantages"] == {"grpo": 7, "gdpo": 8}
    brief = report["summary"]["rewards"][2]
    assert brief["gated"] == 3 and samples[2]["scores"]["brief"]["gated"] is True


def test_check_reports_malformed_lines_and_scores_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = SAMPLES.read_text().splitlines()
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([lines[0], "{not json", "[1, 2]", '{"prompt": "p"}', lines[1]]) + "\n")
    assert main(["check", str(SPEC), str(mixed), "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert [s["line"] for s in report["samples"]] == [1, 5]
    assert f"{mixed}:2: invalid JSON" in captured.err
    assert f"{mixed}:3: expected a JSON object, got list" in captured.err
    assert f"{mixed}:4: no 'completion' field" in captured.err


def test_check_table_in_a_terminal() -> None:
    if shutil.which("script") is None:
        pytest.skip("util-linux `script` is needed to give the command a terminal")
    command = f"{sys.executable} -m rewardkit.cli check {SPEC} {SAMPLES}"
    out = subprocess.run(["script", "-qc", command, "/dev/null"], capture_output=True, text=True,
                         env={"COLUMNS": "160", "PATH": "/usr/bin:/bin", "TERM": "dumb"}, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "GRPO adv" in out.stdout and "GDPO adv *" in out.stdout
    assert "distinct advantage values: GRPO 7, GDPO 8" in out.stdout


def test_schema_includes_verifier_args(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["required"]) >= {"version", "name", "rewards"}
    defs = schema["$defs"]
    assert "reference" in defs["args_exact_match"]["properties"]
    conditions = defs["RewardConfig"]["allOf"]
    assert {"if": {"properties": {"verifier": {"const": "exact_match"}}, "required": ["verifier"]},
            "then": {"properties": {"args": {"$ref": "#/$defs/args_exact_match"}}}} in conditions


def test_committed_schema_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    main(["schema"])
    current = json.loads(capsys.readouterr().out)
    committed = json.loads((ROOT / "specs" / "spec.schema.json").read_text())
    assert committed == current, "run `rewardkit schema -o specs/spec.schema.json`"


def test_verifiers_lists_args(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verifiers", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    names = {a["name"] for a in docs["exact_match"]["args"]}
    assert {"reference", "extract", "case_sensitive"} <= names
    assert docs["python"]["args"][0]["required"] is True


def test_every_bundled_spec_validates() -> None:
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    assert specs
    for spec in specs:
        assert main(["validate", str(spec)]) == 0, spec


def test_check_advantages_equal_compute_advantages_and_skip_unscorable_rows() -> None:
    import numpy as np

    from rewardkit.advantages import compute_advantages
    from rewardkit.check import group_advantages

    rng = np.random.default_rng(0)
    values = rng.integers(0, 2, size=(12, 3)).astype(float)
    groups = [f"g{i // 4}" for i in range(12)]
    weights = [1.0, 0.5, 2.0]
    for method in ("gdpo", "grpo", "grpo_no_std"):
        expected = np.asarray(compute_advantages(values.reshape(3, 4, 3), weights, method=method)).ravel()
        got = group_advantages(values, groups, weights, method=method, eps=1e-4, batch_norm=True)
        np.testing.assert_allclose(got, expected, atol=1e-9)
    values[5] = np.nan  # one rollout no reward could judge
    expected = np.asarray(compute_advantages(values.reshape(3, 4, 3), weights, method="gdpo")).ravel()
    np.testing.assert_allclose(group_advantages(values, groups, weights, method="gdpo"), expected, atol=1e-9)
    assert expected[5] == 0.0


def test_train_setup_problem_is_a_message_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    (tmp_path / "train.jsonl").write_text('{"prompt": "copy 1", "answer": "1"}\n')
    spec = tmp_path / "t.yaml"
    spec.write_text("version: 1\nname: t\nrewards:\n  - {name: correct, verifier: exact_match}\n"
                    "train: {model: ./no-such-model, data: train.jsonl, steps: 1}\n")
    assert main(["train", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no-such-model" in err and "Traceback" not in err
