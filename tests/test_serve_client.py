"""`RewardClient` users: `rewardkit check --remote URL` prints what a local check prints, and the
compact trainer with `train.reward_url` trains exactly as with in-process scoring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rk_serve import ROOT, SPECS, Server

RK = str(Path(sys.executable).parent / "rewardkit")


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RK, "check", *args, "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_check_remote_prints_what_a_local_check_prints() -> None:
    spec, samples = str(SPECS / "tool_calling.yaml"), str(SPECS / "samples" / "tool_calling.jsonl")
    local = _check(spec, samples)
    with Server(spec) as srv:
        remote = _check(spec, samples, "--remote", srv.url)
    assert remote.returncode == local.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)


def test_check_remote_refuses_a_server_of_another_spec_or_other_settings(tmp_path: Path) -> None:
    changed = tmp_path / "quickstart.yaml"
    changed.write_text((SPECS / "quickstart.yaml").read_text().replace("    verifier: format_regex\n",
                                                                      "    verifier: format_regex\n    weight: 2\n"))
    samples = str(SPECS / "samples" / "quickstart.jsonl")
    with Server(SPECS / "quickstart.yaml") as srv:
        other = _check(str(SPECS / "tool_calling.yaml"), samples, "--remote", srv.url)
        reweighted = _check(str(changed), samples, "--remote", srv.url)
    assert other.returncode == 1
    assert "serves spec 'quickstart' with rewards ['format', 'correct', 'brief']" in other.stderr
    assert reweighted.returncode == 1
    assert "serves reward 'format' with weight = 1.0, but" in reweighted.stderr and "has 2.0" in reweighted.stderr


def test_trainer_with_reward_url_trains_as_with_local_scoring(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from rewardkit.trainers import gdpo
    from rewardkit.trainers.tiny_model import build_tiny_model

    tiny = str(build_tiny_model(tmp_path / "tiny"))
    common = {"model": tiny, "progress": False, "steps": 2, "prompts_per_step": 2, "group_size": 4,
              "eval_every": 0, "tensorboard": False, "checkpoint_every": 0}
    gdpo.train(str(SPECS / "demo.yaml"), overrides={**common, "output_dir": str(tmp_path / "local")})
    with Server(SPECS / "demo.yaml", "--tokenizer", tiny) as srv:
        gdpo.train(str(SPECS / "demo.yaml"), overrides={**common, "output_dir": str(tmp_path / "remote"),
                                                        "reward_url": srv.url})
        served = srv.get("/metrics").text

    def rewards(run: str) -> list[dict[str, float]]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k.startswith(("reward/", "adv/", "loss"))} for line in lines]

    assert rewards("remote") == rewards("local") != []
    assert 'rewardkit_samples_total{endpoint="score"} 16.0' in served
