"""The trainer's phases on the real tiny model: data checks, log-probs, the update's direction, metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardkit.trainers import gdpo  # noqa: E402
from rewardkit.trainers.batching import token_logprobs  # noqa: E402
from rewardkit.trainers.data import DataError, TrainSetupError, batch_indices, load_rows  # noqa: E402
from rewardkit.trainers.tiny_model import build_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "specs" / "demo.yaml")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def _run(tiny: str, tmp_path: Path, **extra: object) -> gdpo.Run:
    overrides = {"model": tiny, "output_dir": str(tmp_path / "run"), "progress": False, **extra}
    return gdpo.setup(DEMO, overrides=overrides)


def test_tiny_model_round_trips_through_from_pretrained(tiny: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    text = tok.apply_chat_template([{"role": "user", "content": "copy 7"}], tokenize=False, add_generation_prompt=True)
    assert text == "<user> copy 7 <assistant> "
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<user>", "copy", "7", "<assistant>"]
    assert tok.decode(tok("<a>7</a>", add_special_tokens=False)["input_ids"]) == "<a> 7 </a>"
    assert model.config.vocab_size == len(tok)
    assert model.generation_config.eos_token_id == tok.eos_token_id


def test_batched_logprobs_equal_unpadded_forward(tiny: str, tmp_path: Path) -> None:
    """Prompts of different lengths, completions of different lengths, rows split into passes by
    length: each token gets the log-prob of running its sample alone, so the loss trains the policy
    that sampled."""
    run = _run(tiny, tmp_path)
    rows = [run.rows[0], next(r for r in run.rows if "number" in r["prompt"][0]["content"])]
    rollouts = gdpo.generate(run, rows, 3, seed=5)
    assert len({len(p) for p in rollouts.prompt_ids}) == 2  # really different prompt lengths
    seen = []
    with torch.no_grad():
        for batch in gdpo._batches(run, rollouts):
            batched, _ = token_logprobs(run.model, batch, 1.0)
            for r, i in enumerate(batch.rows):
                prompt, comp = rollouts.prompt_ids[i // 3], rollouts.completion_ids[i]
                full = torch.tensor([prompt + comp])
                logits = run.model(input_ids=full).logits[0, len(prompt) - 1 : -1]
                alone = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(comp)[:, None])[:, 0]
                assert torch.allclose(batched[r, : len(comp)], alone, atol=1e-5)
                assert int(batch.mask[r].sum()) == len(comp)
                seen.append(i)
    assert sorted(seen) == list(range(6))


def test_update_moves_logprobs_the_way_advantages_say(tiny: str, tmp_path: Path) -> None:
    run = _run(tiny, tmp_path, lr=1e-2, kl_coef=0.0)
    rollouts = gdpo.generate(run, run.rows[:1], 4, seed=1)

    def logp() -> np.ndarray:
        out = np.zeros(4)
        with torch.no_grad():
            for batch in gdpo._batches(run, rollouts):
                lp, _ = token_logprobs(run.model, batch, 1.0)
                out[batch.rows] = (lp * batch.mask).sum(-1).numpy()
        return out

    before = logp()
    gdpo.update(run, rollouts, np.array([[1.0, -1.0, 0.0, 0.0]]))
    after = logp()
    assert after[0] > before[0] and after[1] < before[1]


def test_zero_advantages_leave_the_policy_unchanged(tiny: str, tmp_path: Path) -> None:
    run = _run(tiny, tmp_path, kl_coef=0.0)
    before = [p.detach().clone() for p in run.model.parameters()]
    rollouts = gdpo.generate(run, run.rows[:2], 4, seed=1)
    gdpo.update(run, rollouts, np.zeros((2, 4)))
    assert all(torch.equal(a, b) for a, b in zip(before, run.model.parameters(), strict=True))


def test_several_updates_per_batch_clip_the_ratio(tiny: str, tmp_path: Path) -> None:
    run = _run(tiny, tmp_path, lr=3e-2, updates_per_batch=4, kl_coef=0.0, max_grad_norm=None)
    rollouts = gdpo.generate(run, run.rows[:2], 8, seed=3)
    adv = np.tile(np.array([1.0, -1.0] * 4), (2, 1))
    stats = gdpo.update(run, rollouts, adv)
    assert stats["clip_fraction"] > 0
    one = _run(tiny, tmp_path, lr=3e-2, kl_coef=0.0)
    assert gdpo.update(one, gdpo.generate(one, one.rows[:2], 8, seed=3), adv)["clip_fraction"] == 0


def test_missing_field_is_reported_before_training(tiny: str, tmp_path: Path) -> None:
    rows = load_rows(ROOT / "specs" / "data" / "demo_train.jsonl")[:5]
    del rows[2]["answer"]
    data = tmp_path / "bad.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as info:
        _run(tiny, tmp_path, data=str(data))
    message = str(info.value)
    assert "reward 'correct'" in message and "'answer'" in message and "row 3" in message and str(data) in message


def test_missing_prompt_field_is_reported(tiny: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="row 1 has no prompt field 'question'"):
        _run(tiny, tmp_path, prompt_field="question")


def test_parquet_data_gives_the_same_rows(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = load_rows(ROOT / "specs" / "data" / "demo_train.jsonl")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    assert load_rows(tmp_path / "d.parquet") == rows


def test_sampler_is_a_function_of_seed_and_step() -> None:
    first_epoch = [i for step in range(1, 6) for i in batch_indices(10, 2, step, seed=3)]
    assert sorted(first_epoch) == list(range(10))  # every row once per epoch
    assert batch_indices(10, 4, 7, seed=3) == batch_indices(10, 4, 7, seed=3)
    assert batch_indices(10, 4, 7, seed=3) != batch_indices(10, 4, 7, seed=4)


def test_each_step_logs_every_metric(tiny: str, tmp_path: Path) -> None:
    out = gdpo.train(DEMO, overrides={"model": tiny, "output_dir": str(tmp_path / "run"), "steps": 2,
                                      "eval_every": 2, "progress": False})
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2]
    m = lines[-1]
    for name in ("format", "correct", "short"):
        for stat in ("mean", "pass_rate", "gated_share", "errors"):
            assert f"reward/{name}/{stat}" in m
        assert f"eval/{name}/mean" in m
    for key in ("len/mean", "len/max", "adv/mean", "adv/std", "adv/distinct", "clip_fraction", "kl", "lr",
                "entropy", "grad_norm", "time/generate", "time/score", "time/update", "loss"):
        assert key in m, key
    assert m["reward/short/gated_share"] > 0  # `short` is gated on `correct`, mostly closed at the start
    assert m["kl"] is not None and m["kl"] >= 0  # the demo trains with a KL term
    assert (out / "checkpoints" / "step-000002" / "model" / "model.safetensors").exists()


def test_same_seed_same_run_other_seed_other_run(tiny: str, tmp_path: Path) -> None:
    def two_steps(seed: int) -> list[dict]:
        run = _run(tiny, tmp_path, seed=seed)
        out = [gdpo.train_step(run) for _ in range(2)]
        return [{k: v for k, v in m.items() if not k.startswith("time/")} for m in out]

    a, b, c = two_steps(3), two_steps(3), two_steps(4)
    assert a == b
    assert a != c


def test_missing_local_model_fails_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(TrainSetupError, match=r"train.model: './nowhere/tiny' not found.*tiny_model"):
        gdpo.setup(DEMO, overrides={"model": "./nowhere/tiny", "output_dir": str(tmp_path / "run")})
    assert time.monotonic() - started < 20  # no minute of hub retries


def test_tensorboard_gets_the_metrics_when_installed(tiny: str, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed: the trainer logs JSONL only")
    out = gdpo.train(DEMO, overrides={"model": tiny, "output_dir": str(tmp_path / "run"), "steps": 1,
                                      "progress": False, "tensorboard": True})
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    logged = json.loads((out / "metrics.jsonl").read_text())
    scalar = events.Scalars("reward/format/mean")
    assert [(e.step, round(e.value, 5)) for e in scalar] == [(1, round(logged["reward/format/mean"], 5))]
    assert {"time/generate", "adv/distinct", "lr"} <= set(events.Tags()["scalars"])


def test_bad_override_names_the_spec(tiny: str, tmp_path: Path) -> None:
    with pytest.raises(TrainSetupError, match=r"demo.yaml: invalid setting after --set .*top_p"):
        gdpo.setup(DEMO, overrides={"model": tiny, "top_p": 2.0})
    with pytest.raises(TrainSetupError, match="cannot override 'rewards.x'"):
        gdpo.setup(DEMO, overrides={"model": tiny, "rewards.x": 1})
