"""OpenRLHF's own HTTP reward client (openrlhf 0.11.2, `_fetch_rewards_via_http`) against a real
`rewardkit serve`: its rewards equal `spec.score`'s weighted totals, cell for cell.

The client is installed without its dependencies (plus aiohttp) into `.cache/peers/` the first
time (cached after); with no package index the test skips and says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rk_serve import ROOT, SPECS, Server, read_samples

from rewardkit.spec import load_spec

OPENRLHF = "openrlhf==0.11.2"
TARGET = ROOT / ".cache" / "peers" / "openrlhf-0.11.2"
CLIENT = Path(__file__).parent / "peers" / "openrlhf_client.py"


@pytest.fixture(scope="module")
def openrlhf_dir() -> Path:
    marker = TARGET / ".complete"
    if not marker.exists():
        for args in (["--no-deps", OPENRLHF], ["aiohttp"]):
            done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(TARGET), *args],
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                pytest.skip(f"cannot install {args[-1]} into {TARGET}: {done.stderr.strip()[-300:]}")
        marker.write_text("ok\n")
    return TARGET


def _run_client(target: Path, url: str, batch: dict) -> dict:
    done = subprocess.run([sys.executable, str(CLIENT), str(target), url], input=json.dumps(batch),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_openrlhf_client_rewards_equal_spec_score(openrlhf_dir: Path) -> None:
    samples = read_samples(SPECS / "samples" / "quickstart.jsonl")
    with load_spec(SPECS / "quickstart.yaml") as spec:
        table = spec.score(samples)
        weights = spec.weights
    # as OpenRLHF builds it: the templated prompt, the response, the end token, decoded together
    prompts = [f"<|im_start|>user\n{s['prompt']}<|im_end|>\n<|im_start|>assistant\n" for s in samples]
    batch = {"query": [p + s["completion"] + "<|im_end|>" for p, s in zip(prompts, samples, strict=True)],
             "prompts": prompts, "labels": [s["answer"] for s in samples]}
    # the server sees the templated prompt; spec.score saw the bare one, which no quickstart reward reads
    with Server(SPECS / "quickstart.yaml") as srv:
        out = _run_client(openrlhf_dir, f"{srv.url}/get_reward", batch)
    assert out["agent_file"].startswith(str(openrlhf_dir))
    (answer,) = out["answers"]  # one server: one shard
    expected = [sum(w * v for w, v in zip(weights, row, strict=True)) for row in table.values.tolist()]
    assert answer["rewards"] == pytest.approx(expected, abs=1e-12)
    for j, name in enumerate(table.reward_names):
        assert answer["extra_logs"][name] == pytest.approx(table.values[:, j].tolist())
        assert answer["extra_logs"][f"{name}/errors"] == [0.0] * len(samples)
    print(f"OpenRLHF client ({out['agent_file']}): rewards {answer['rewards']} == spec.score totals {expected}")


def test_openrlhf_client_gets_errors_as_otherwise_and_counted(openrlhf_dir: Path) -> None:
    """A query that does not start with its prompt is an error in every reward: `otherwise` (0)
    in `rewards`, and 1 in each `<reward>/errors` log; the other queries score as usual."""
    batch = {"query": ["Q1 <think>t</think><answer>Paris</answer>", "something else entirely"],
             "prompts": ["Q1 ", "Q2 "], "labels": ["Paris", "Paris"]}
    with Server(SPECS / "quickstart.yaml") as srv:
        (answer,) = _run_client(openrlhf_dir, f"{srv.url}/get_reward", batch)["answers"]
    assert answer["rewards"] == [3.0, 0.0]
    assert answer["extra_logs"]["correct/errors"] == [0.0, 1.0]
