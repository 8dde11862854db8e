"""TRL across processes: `accelerate launch --multi_gpu --num_processes 2` on CPU (gloo; `--cpu` would
start a single process) trains the tiny model for two
steps with rewardkit's TRL bridge; each rank scores its own shard with the spec, TRL gathers the
reward matrix, and the advantages TRL computes over the gathered batch equal `rewardkit.advantages`
on the gathered rewards. The rank side is tests/trl_rank_run.py; this test reads what each rank wrote.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rewardkit.advantages import compute_advantages

pytest.importorskip("trl")
pytest.importorskip("accelerate")
ROOT = Path(__file__).resolve().parent.parent
ACCELERATE = Path(sys.executable).with_name("accelerate")
GROUP, PROCESSES, STEPS = 4, 2, 2

SPEC = f"""\
version: 1
name: trl-two-process
rewards:
  - name: tagged
    verifier: format_regex
    args: {{pattern: '<a>', mode: search}}
  - name: correct
    verifier: exact_match
    args: {{reference: answer, extract: regex, pattern: '(\\d)'}}
    when: tagged >= 1
    weight: 2.0
  - name: short
    verifier: length_limit
    args: {{unit: words, max_length: 4, mode: soft, buffer: 4}}
    weight: 0.5
  - name: digits
    verifier: python
    args: {{function: "rk_two_process_rewards:digits", in_process: true}}
    on_error: exclude
advantage: {{method: gdpo}}
train:
  model: model
  data: data.jsonl
  prompts_per_step: 2
  group_size: {GROUP}
  max_new_tokens: 8
  steps: {STEPS}
  lr: 0.001
  device: cpu
  seed: 0
"""


# A reward that varies with every completion and fails on some (TRL receives None: NaN, excluded).
REWARDS = """
def digits(sample):
    words = sample["completion"].split()
    if "?" in words:
        raise ValueError("a question mark")
    return sum(w.isdigit() for w in words) / max(1, len(words))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_processes_score_their_shards_and_trl_advantages_equal_rewardkits(tmp_path: Path) -> None:
    from rewardkit.trainers.tiny_model import build_tiny_model

    build_tiny_model(tmp_path / "model", seed=0)
    rows = [{"prompt": f"say the number {d} :", "answer": str(d)} for d in range(10)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(SPEC, encoding="utf-8")
    (tmp_path / "rk_two_process_rewards.py").write_text(REWARDS, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "MASTER_ADDR": "127.0.0.1"}
    command = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", str(PROCESSES), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
               "--main_process_port", str(_free_port()), "--num_cpu_threads_per_process", "1",
               str(ROOT / "tests" / "trl_rank_run.py"), str(tmp_path / "spec.yaml"), str(tmp_path / "out")]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.returncode == 0, f"accelerate launch failed ({proc.returncode}):\n{proc.stderr[-4000:]}"

    ranks = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in range(PROCESSES)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == PROCESSES for r in ranks)
    assert all(r["global_step"] == STEPS for r in ranks)
    assert all(r["backend"] == "gloo" and r["distributed_type"].endswith("MULTI_CPU") for r in ranks), ranks[0]["backend"]
    weights = [1.0, 2.0, 0.5, 1.0]
    compared = excluded = 0
    for step in range(len(ranks[0]["batches"])):
        batches = [r["batches"][step] for r in ranks]
        gathered = np.asarray(batches[0]["gathered_rewards"], dtype=np.float32)
        np.testing.assert_array_equal(gathered, np.asarray(batches[1]["gathered_rewards"], dtype=np.float32))
        n = len(batches[0]["completions"])
        assert gathered.shape == (PROCESSES * n, 4)
        excluded += int(np.isnan(gathered).sum())
        assert all(b["shard_scores_match"] for b in batches), "a rank's rows are its own shard scored by the spec"
        trl_advantages = np.concatenate([b["local_advantages"] for b in batches])  # rank order = gather order
        ours = compute_advantages(gathered.reshape(-1, GROUP, 4), weights, method="gdpo", eps=1e-4)
        np.testing.assert_allclose(trl_advantages, ours.reshape(-1), rtol=0, atol=1e-5)
        compared += int(np.abs(trl_advantages).max() > 0.1)
        print(f"step {step + 1}: gathered rewards {np.round(gathered.astype(float), 4).tolist()}\n  TRL advantages {np.round(trl_advantages.astype(float), 4).tolist()}"
              f"\n  rewardkit      {np.round(ours.reshape(-1).astype(float), 4).tolist()}")
    assert compared, "degenerate batches: every advantage was 0"
    print(f"excluded cells (None in TRL) across the run: {excluded}")
    # Each rank scored only its shard, once per generation batch.
    assert all(r["scoring_calls"] == len(r["batches"]) for r in ranks)
