"""verl 0.9.1's own code on rewardkit's verl bridge: its reward managers give `spec.score`, and its GDPO
equals `rewardkit.engine_gdpo.gdpo_verl`.

verl needs numpy >= 2 (our bfcl-eval pins 1.26), so it lives in a venv of its own,
`.cache/venv-verl`, built by `scripts/engine_venvs.sh` (CI runs it); verl's side runs there as a
subprocess (`tests/verl_driver.py`) and these tests compare its JSON output with rewardkit computed
here. What runs of verl: its data loader (`RLHFDataset` on the parquet `rewardkit export verl-data`
writes), `DataProto`, its reward-function loader (`get_custom_reward_fn`, `load_reward_manager`),
the legacy naive and batch reward managers, the Reward Loop worker with its naive and gdpo managers
and with rewardkit's batching manager, and the trainer's advantage dispatch
(`ray_trainer.compute_advantage` -> `compute_gdpo_outcome_advantage`). What cannot run here: the
Ray actors around the Reward Loop worker (the worker class is made in-process instead), rollout
(vLLM/SGLang servers need a GPU) and the FSDP/Megatron actor update.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardkit.engine_gdpo import gdpo_verl
from rewardkit.integrations.verl_export import verl_rows, write_verl_parquet
from rewardkit.spec import load_spec
from rewardkit.verifier import ScoringContext
from rewardkit.verifiers.length_limit import load_tokenizer_file

ROOT = Path(__file__).resolve().parent.parent
VERL_PYTHON = Path(os.environ.get("RK_VERL_PYTHON", ROOT / ".cache" / "venv-verl" / "bin" / "python"))
pytestmark = pytest.mark.skipif(not VERL_PYTHON.exists(), reason=f"verl's venv {VERL_PYTHON} is absent; build it "
                                "with `bash scripts/engine_venvs.sh verl` (CI does)")
SPECS = [("quickstart.yaml", "quickstart.jsonl"), ("math_length.yaml", "math.jsonl"),
         ("tool_calling.yaml", "tool_calling.jsonl"), ("code.yaml", "code.jsonl")]
MANAGERS = ["legacy_naive", "legacy_batch", "loop_naive", "loop_gdpo", "loop_rewardkit"]
TOL = 2e-5  # verl computes in float32


def run_verl(jobs: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    (tmp / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    proc = subprocess.run([str(VERL_PYTHON), str(ROOT / "tests" / "verl_driver.py"), str(tmp / "jobs.json"),
                           str(tmp / "out.json")], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"verl driver failed:\n{proc.stderr[-4000:]}"
    return json.loads((tmp / "out.json").read_text(encoding="utf-8"))


def padded_groups(values: np.ndarray, groups: list[str], extra: np.ndarray | None = None) -> tuple[Any, ...]:
    """[B, K] rows into [G, N, K] groups (NaN rows pad short groups; they leave every statistic)."""
    keys = list(dict.fromkeys(groups))
    width = max(groups.count(k) for k in keys)
    out = np.full((len(keys), width, values.shape[1]), np.nan)
    lengths = np.zeros((len(keys), width))
    where = []
    for i, group in enumerate(groups):
        g = keys.index(group)
        n = sum(1 for w in where if w[0] == g)
        out[g, n] = values[i]
        if extra is not None:
            lengths[g, n] = extra[i]
        where.append((g, n))
    return out, lengths, where


# --- GDPO on random rewards -------------------------------------------------------------------------

def _random_case(rng: np.random.Generator) -> dict[str, Any]:
    groups, size, k = int(rng.integers(1, 6)), int(rng.integers(1, 7)), int(rng.integers(1, 4))
    if groups * size < 2:  # one response: verl whitens 0/0 and float32 noise decides the sign
        groups = 2
    kind = rng.integers(3)
    if kind == 0:
        rewards = rng.integers(0, 2, size=(groups * size, k)).astype(float)
    elif kind == 1:
        rewards = rng.normal(size=(groups * size, k)) * rng.uniform(0.1, 5, size=k)
    else:
        rewards = rng.integers(0, 4, size=(groups * size, k)) / 3.0
    order = rng.permutation(groups * size)  # verl groups by uid, wherever the rows sit
    return {"kind": "gdpo", "rewards": rewards[order].tolist(), "weights": rng.uniform(0.2, 2, size=k).round(2).tolist(),
            "groups": [f"p{i // size}" for i in order], "lengths": rng.integers(1, 40, size=groups * size).tolist(),
            "norm_by_std": bool(rng.random() < 0.8)}


def test_gdpo_verl_equals_verls_compute_gdpo_outcome_advantage(tmp_path: Path) -> None:
    rng = np.random.default_rng(2026)
    cases = [_random_case(rng) for _ in range(40)]
    cases.append({**cases[0], "lengths": [7] * len(cases[0]["lengths"])})  # equal lengths
    results = run_verl(cases, tmp_path)
    differs_from_paper, worst = 0, 0.0
    for case, result in zip(cases, results, strict=True):
        rewards = np.asarray(case["rewards"])
        grouped, lengths, where = padded_groups(rewards, case["groups"], np.asarray(case["lengths"]))
        ours = gdpo_verl(grouped, case["weights"], lengths=lengths, norm_by_std=case["norm_by_std"])
        got = np.array([ours[g, n] for g, n in where])
        np.testing.assert_allclose(got, np.asarray(result["direct"], dtype=float), rtol=0, atol=TOL)
        worst = max(worst, float(np.abs(got - np.asarray(result["direct"], dtype=float)).max()))
        # verl's trainer does not pass algorithm.norm_adv_by_std_in_grpo on to GDPO: it always divides.
        trained = gdpo_verl(grouped, case["weights"], lengths=lengths)
        np.testing.assert_allclose([trained[g, n] for g, n in where], np.asarray(result["advantages"], dtype=float),
                                   rtol=0, atol=TOL)
        from rewardkit.advantages import gdpo

        paper = gdpo(grouped, case["weights"], eps=1e-6)
        differs_from_paper += not np.allclose([paper[g, n] for g, n in where], got, atol=1e-3)
    assert differs_from_paper > 10, "token weighting should move most cases away from the paper's GDPO"
    print(f"\n{len(cases)} random cases: max |verl - gdpo_verl| = {worst:.2e}; "
          f"{differs_from_paper} of them differ from the paper's GDPO by > 1e-3")


# --- verl's reward managers on the bundled specs' samples ----------------------------------------------

def tiny_tokenizer_for(rows: list[dict[str, Any]], out: Path) -> Any:
    """The tiny model's tokenizer setup (its special and role tokens, chat template, left padding) over a
    word-level vocabulary of these samples' space-separated pieces. The tiny model's own vocabulary
    (30 tokens) decodes most sample text to <unk>, which verl's decode drops; this one round-trips
    the completions exactly, so the verifiers see what they would see in a real run."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from rewardkit.trainers.tiny_model import CHAT_TEMPLATE, ROLES, SPECIALS

    split = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never")
    pieces: set[str] = set()
    for row in rows:
        for text in (row["completion"], *(m["content"] for m in _messages(row["prompt"]))):
            pieces |= {piece for piece, _ in split.pre_tokenize_str(text)}
    vocab = SPECIALS + ROLES + sorted(pieces - set(SPECIALS) - set(ROLES))
    core = Tokenizer(models.WordLevel({tok: i for i, tok in enumerate(vocab)}, unk_token="<unk>"))
    core.pre_tokenizer = split
    core.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="never")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                        unk_token="<unk>", chat_template=CHAT_TEMPLATE, padding_side="left")
    tokenizer.save_pretrained(out)
    return tokenizer


def _messages(prompt: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


@pytest.fixture(scope="module")
def manager_runs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    pytest.importorskip("transformers")
    pytest.importorskip("pyarrow")
    tmp = tmp_path_factory.mktemp("verl")
    cases = []
    for spec_file, samples_file in SPECS:
        spec_path = ROOT / "specs" / spec_file
        rows = [json.loads(line) for line in (ROOT / "specs" / "samples" / samples_file).read_text().splitlines()
                if line.strip()]
        folder = tmp / spec_path.stem
        tokenizer = tiny_tokenizer_for(rows, folder / "tokenizer")
        with load_spec(spec_path) as spec:
            write_verl_parquet(verl_rows(rows, spec), folder / "train.parquet")
            decoded = [tokenizer.decode(tokenizer(r["completion"], add_special_tokens=False)["input_ids"],
                                        skip_special_tokens=True) for r in rows]
            # Token-length rewards count with the policy's tokenizer, passed as verl's reward_kwargs.
            tokens = any(getattr(r.verifier.args, "unit", None) == "tokens" for r in spec.rewards)
            reward_kwargs = {"tokenizer": str(folder / "tokenizer")} if tokens else {}
            ctx = ScoringContext(tokenizer=load_tokenizer_file(str(folder / "tokenizer")) if tokens else None)
            # What verl's managers hand the reward: the decoded response and the row's own fields.
            table = spec.score([{**r, "completion": d} for r, d in zip(rows, decoded, strict=True)], ctx)
            cases.append({"spec": spec, "rows": rows, "decoded": decoded, "table": table, "job": {
                "kind": "managers", "tokenizer": str(folder / "tokenizer"), "data": str(folder / "train.parquet"),
                "cache_dir": str(folder / "cache"), "completions": [r["completion"] for r in rows],
                "spec": str(spec_path), "reward_keys": spec.reward_names, "weights": spec.weights,
                "reward_kwargs": reward_kwargs}})
    results = run_verl([c["job"] for c in cases], tmp)
    return [{**case, "verl": result} for case, result in zip(cases, results, strict=True)]


@pytest.mark.parametrize("index", range(len(SPECS)), ids=[s for s, _ in SPECS])
def test_verl_reward_managers_give_spec_score(manager_runs: list[dict[str, Any]], index: int) -> None:
    run = manager_runs[index]
    spec, table, verl = run["spec"], run["table"], run["verl"]
    assert verl["decoded"] == run["decoded"]  # verl's transformers decodes as ours does
    expected: dict[str, list[float]] = {"rewardkit_errors": [sum(c.error is not None for c in row) for row in table.cells]}
    for j, reward in enumerate(spec.rewards):
        expected[reward.name] = [reward.otherwise if math.isnan(v) else v for v in table.values[:, j]]
    expected["score"] = [float(np.nansum(row * np.asarray(spec.weights))) for row in table.values]
    for manager in MANAGERS:
        extra = verl[manager]
        assert set(extra) == set(expected), manager
        for key, values in expected.items():
            np.testing.assert_allclose(extra[key], values, rtol=0, atol=1e-9, err_msg=f"{manager}: {key}")
    for manager in ("loop_naive", "loop_gdpo", "loop_rewardkit"):
        np.testing.assert_allclose(verl[manager + "_reward_score"], expected["score"], atol=1e-9)
    assert verl["loop_rewardkit_scoring_calls"] == 1  # the whole chunk in one spec.score
    assert verl["loop_naive_scoring_calls"] == len(run["rows"])
    assert len({tuple(col) for key, col in expected.items() if key in spec.reward_names}) > 1 or len(spec.rewards) == 1
    print(f"\n{spec.config.name}: {len(run['rows'])} samples, {', '.join(MANAGERS)} == spec.score; "
          f"spec.score calls: rewardkit manager {verl['loop_rewardkit_scoring_calls']}, naive {verl['loop_naive_scoring_calls']}")
    for key in [*spec.reward_names, "score", "rewardkit_errors"]:
        print(f"  {key:>16}: verl {verl['loop_gdpo'][key]}\n  {'':>16}  ours {expected[key]}")


@pytest.mark.parametrize("index", range(len(SPECS)), ids=[s for s, _ in SPECS])
def test_verls_gdpo_on_manager_output_equals_gdpo_verl(manager_runs: list[dict[str, Any]], index: int) -> None:
    run = manager_runs[index]
    spec, table, verl = run["spec"], run["table"], run["verl"]
    values = np.where(np.isnan(table.values), np.asarray([r.otherwise for r in spec.rewards]), table.values)
    groups = [json.dumps(_messages(r["prompt"])) for r in run["rows"]]
    grouped, lengths, where = padded_groups(values, groups, np.asarray(verl["response_lengths"]))
    ours = gdpo_verl(grouped, spec.weights, lengths=lengths)
    got = [float(ours[g, n]) for g, n in where]
    np.testing.assert_allclose(got, verl["gdpo"], rtol=0, atol=TOL)
    print(f"\n{spec.config.name} GDPO, response lengths {verl['response_lengths']}\n  verl compute_gdpo_outcome_advantage "
          f"{np.round(verl['gdpo'], 5).tolist()}\n  rewardkit gdpo_verl                 {np.round(got, 5).tolist()}")
    assert len({round(a, 4) for a in verl["gdpo"]}) > 2  # not a degenerate batch


@pytest.mark.parametrize("batch", [False, True])
def test_export_verl_overrides_compose_with_verls_own_config(tmp_path: Path, batch: bool) -> None:
    from rewardkit.integrations.verl_export import verl_overrides

    spec_path = ROOT / "specs" / "demo.yaml"
    with load_spec(spec_path) as spec:
        overrides = verl_overrides(spec, spec_path, batch=batch)
    keys = ["algorithm.adv_estimator", "algorithm.gdpo_reward_keys", "algorithm.gdpo_reward_weights",
            "reward.reward_manager.name", "reward.reward_manager.source", "reward.custom_reward_function.name",
            "reward.custom_reward_function.reward_kwargs", "actor_rollout_ref.rollout.n", "data.train_batch_size",
            "data.max_response_length", "actor_rollout_ref.actor.optim.lr", "trainer.total_training_steps"]
    [result] = run_verl([{"kind": "overrides", "overrides": overrides, "keys": keys}], tmp_path)
    values = result["values"]
    assert values["algorithm.adv_estimator"] == "gdpo"
    assert values["algorithm.gdpo_reward_keys"] == ["format", "correct", "short"]
    assert values["algorithm.gdpo_reward_weights"] == [1.0, 1.0, 1.0]
    assert values["reward.custom_reward_function.reward_kwargs"]["spec"] == str(spec_path)
    assert values["actor_rollout_ref.rollout.n"] == 8 and values["data.train_batch_size"] == 8
    assert values["data.max_response_length"] == 6 and values["trainer.total_training_steps"] == 300
    assert values["reward.reward_manager.name"] == ("RewardkitRewardManager" if batch else "naive")
    assert values["reward.reward_manager.source"] == ("importlib" if batch else "register")
    assert result["function"] == ("compute_score_batch" if batch else "compute_score")


def test_a_reward_that_keeps_failing_stops_verls_reward_loop(tmp_path: Path) -> None:
    """Every sample errors: after `max_consecutive_errors` the bridge raises inside verl's Reward Loop
    worker, through the naive manager and through rewardkit's batching manager alike."""
    pytest.importorskip("transformers")
    rows = [json.loads(line) for line in (ROOT / "specs" / "samples" / "quickstart.jsonl").read_text().splitlines()]
    (tmp_path / "rk_failing_reward.py").write_text("def broken(sample):\n    raise RuntimeError('the judge is down')\n")
    spec_path = tmp_path / "failing.yaml"
    spec_path.write_text("version: 1\nname: failing\nrewards:\n  - name: judged\n    verifier: python\n"
                         "    args: {function: 'rk_failing_reward:broken', in_process: true}\n")
    tiny_tokenizer_for(rows, tmp_path / "tokenizer")
    with load_spec(spec_path) as spec:
        write_verl_parquet(verl_rows(rows, spec), tmp_path / "train.parquet")
    [out] = run_verl([{"kind": "managers", "expect_failure": True, "tokenizer": str(tmp_path / "tokenizer"),
                       "data": str(tmp_path / "train.parquet"), "cache_dir": str(tmp_path / "cache"),
                       "completions": [r["completion"] for r in rows], "spec": str(spec_path),
                       "reward_kwargs": {"max_consecutive_errors": 3}}], tmp_path)
    for manager in ("loop_naive", "loop_rewardkit"):
        assert out[manager + "_error"] is not None, f"{manager} trained on through a broken reward"
        assert "VerlRewardError" in out[manager + "_error"] and "reward 'judged' failed on 3 samples in a row" in \
            out[manager + "_error"] and "the judge is down" in out[manager + "_error"], out[manager + "_error"]
