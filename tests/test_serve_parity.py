"""Every endpoint of a real `rewardkit serve` process gives the numbers of `rewardkit check
--json` (in-process `spec.score` and rewardkit's advantages) on the same samples, for every
bundled spec; the code spec runs its programs in the real sandbox."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rk_serve import ROOT, SPECS, Server, read_samples, wire

DEMO_SAMPLES = [
    {"prompt": "copy 2", "answer": "2", "completion": "<a> 2 </a>"},
    {"prompt": "copy 2", "answer": "2", "completion": "<a> 3 </a>"},
    {"prompt": "copy 2", "answer": "2", "completion": "<a> 2 </a> and more"},
    {"prompt": "copy 2", "answer": "2", "completion": "2"},
]

# spec, samples, the field OpenRLHF's labels fill, and whether labels are JSON
CASES = [
    ("quickstart.yaml", "quickstart.jsonl", "answer", "text"),
    ("math_length.yaml", "math.jsonl", "answer", "text"),
    ("tool_calling.yaml", "tool_calling.jsonl", "answer", "json"),
    ("code.yaml", "code.jsonl", "tests", "json"),
    ("demo.yaml", None, "answer", "text"),
]
END = "<|im_end|>"


def _samples(name: str | None, tmp_path: Path) -> Path:
    if name is not None:
        return SPECS / "samples" / name
    path = tmp_path / "demo.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in DEMO_SAMPLES), encoding="utf-8")
    return path


def _check_json(spec: Path, samples: Path) -> dict[str, Any]:
    out = subprocess.run([str(Path(sys.executable).parent / "rewardkit"), "check", str(spec), str(samples), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    # 3: some cells errored (the math and demo specs count tokens and get no tokenizer here; the
    # server reports the same errors, which is part of what is compared)
    assert out.returncode in (0, 3), out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _weighted(scores: dict[str, Any], spec: dict[str, Any]) -> dict[str, float]:
    """What OpenRLHF and NeMo-Gym get per reward: weight x score, an excluded cell as `otherwise`."""
    out = {}
    for reward in spec["rewards"]:
        score = scores[reward["name"]]["score"]
        out[reward["name"]] = reward["weight"] * (reward["otherwise"] if score is None else score)
    return out


@pytest.mark.parametrize(("spec_name", "samples_name", "label_field", "labels"), CASES,
                         ids=[c[0].removesuffix(".yaml") for c in CASES])
def test_every_endpoint_equals_check_json(spec_name: str, samples_name: str | None, label_field: str,
                                          labels: str, tmp_path: Path) -> None:
    spec_path = SPECS / spec_name
    samples_path = _samples(samples_name, tmp_path)
    truth = _check_json(spec_path, samples_path)
    samples = read_samples(samples_path)
    expected_scores = [row["scores"] for row in truth["samples"]]
    with Server(spec_path, "--label-field", label_field, "--labels", labels) as srv:
        served_spec = srv.get("/spec").json()
        assert [r["name"] for r in served_spec["rewards"]] == truth["rewards"]

        # native: cells, and advantages per group, exactly as check --json prints them
        answer = srv.post("/score", {"samples": [wire(s) for s in samples]})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [r["scores"] for r in results] == expected_scores
        for result, row in zip(results, truth["samples"], strict=True):
            assert result["advantages"] == row["advantages"]
            scored = [(w, c["score"]) for w, c in zip(truth["weights"], row["scores"].values(), strict=True)
                      if c["score"] is not None]
            assert result["total"] == (pytest.approx(sum(w * s for w, s in scored)) if scored else None)

        # OpenRLHF: query = prompt + completion + end token; labels = the label field
        text_rows = [s for s in samples if isinstance(s["completion"], str) and isinstance(s.get("prompt"), str)]
        body = {"query": [s["prompt"] + s["completion"] + END for s in text_rows],
                "prompts": [s["prompt"] for s in text_rows],
                "labels": [s[label_field] if labels == "text" else json.dumps(s[label_field]) for s in text_rows]}
        answer = srv.post("/get_reward", body)
        assert answer.status_code == 200, answer.text
        got = answer.json()
        want = [_weighted(row["scores"], served_spec) for row, s in zip(truth["samples"], samples, strict=True)
                if s in text_rows]
        assert got["rewards"] == pytest.approx([sum(w.values()) for w in want])
        for name in truth["rewards"]:
            errors = [1.0 if row["scores"][name]["error"] else 0.0
                      for row, s in zip(truth["samples"], samples, strict=True) if s in text_rows]
            assert got["extra_logs"][f"{name}/errors"] == errors

        # NeMo-Gym: the completion as one output message, the data fields at the top level
        for sample, row in zip(samples, truth["samples"], strict=True):
            if not isinstance(sample["completion"], str):
                continue
            fields = {k: v for k, v in sample.items() if k not in ("completion", "prompt")}
            body = {"responses_create_params": {"input": sample.get("prompt")},
                    "response": {"output": [{"type": "message", "role": "assistant",
                                             "content": [{"type": "output_text", "text": sample["completion"]}]}]},
                    **fields}
            answer = srv.post("/verify", body)
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert got["reward_components"] == pytest.approx(_weighted(row["scores"], served_spec))
            assert got["reward"] == sum(got["reward_components"].values())  # exactly, as NeMo-RL checks
            for name, value in got["reward_components"].items():
                assert got[name] == value
            assert {k: got[k] for k in body} == body
            assert all(math.isfinite(v) for v in got["reward_components"].values())
