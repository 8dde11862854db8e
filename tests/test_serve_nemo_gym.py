"""NeMo-Gym's `/verify` contract, checked with NeMo-Gym's own pydantic models (from its wheel; see
tests/peers/nemo_gym_models.py for what is loaded and the one stub) on its own example rollouts:
the request model builds the body, both response models accept the answer, `reward` is exactly
`sum(reward_components)`, the body comes back unchanged, and the components agree with the
verdicts NeMo-Gym's example server recorded for those rollouts."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from rk_serve import ROOT, Server

WHEEL = "nemo-gym==0.4.0"
OPENAI = "openai==2.7.2"  # nemo-gym 0.4.0's pin
PEERS = ROOT / ".cache" / "peers" / "nemo-gym-0.4.0"
HERE = Path(__file__).parent


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.skip(f"pip {' '.join(args[:2])} failed (no package index?): {done.stderr.strip()[-300:]}")


@pytest.fixture(scope="module")
def nemo_gym() -> Path:
    marker = PEERS / ".complete"
    if not marker.exists():
        _pip("download", "-q", "--no-deps", "--python-version", "3.12", "--only-binary=:all:", WHEEL,
             "-d", str(PEERS / "dl"))
        (wheel,) = (PEERS / "dl").glob("nemo_gym-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(PEERS / "wheel", [n for n in archive.namelist() if n.startswith(
                ("nemo_gym/", "resources_servers/example_tool_call_multireward/"))])
        _pip("install", "-q", "--target", str(PEERS / "deps"), OPENAI)
        marker.write_text("ok\n")
    return PEERS


def test_nemo_gym_models_accept_verify_answers_on_its_own_rollouts(nemo_gym: Path) -> None:
    with Server(HERE / "data" / "nemo_tool_call.yaml") as srv:
        done = subprocess.run([sys.executable, str(HERE / "peers" / "nemo_gym_client.py"), str(nemo_gym / "wheel"),
                               f"{srv.url}/verify"], capture_output=True, text=True, timeout=300,
                              env={"PYTHONPATH": str(nemo_gym / "deps"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 5
    for row in rows:
        answer, theirs = row["answer"], row["theirs"]
        assert answer["reward"] == sum(answer["reward_components"].values())
        assert row["reward"] == answer["reward"]
        assert answer["correctness"] == answer["reward_components"]["correctness"] == theirs["correctness"]
        assert answer["no_text"] == 0.0 == theirs["format"]  # their format is 0: the rollouts end with text
        assert {k: answer[k] for k in row["sent"]} == row["sent"]
        assert answer["rewardkit"]["correctness"]["reason"] == "get_weather call matches"
