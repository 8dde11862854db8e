"""The update's layout: length-grouped passes (`plan_chunks`) are optimal and change nothing but speed."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardkit.trainers import gdpo  # noqa: E402
from rewardkit.trainers.batching import plan_chunks  # noqa: E402
from rewardkit.trainers.tiny_model import build_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "specs" / "demo.yaml")


def _cost(lengths: list[int], chunks: list[list[int]], overhead: int) -> int:
    return sum(overhead + len(c) * max(lengths[i] for i in c) for c in chunks)


def _brute_force(lengths: list[int], max_rows: int, overhead: int) -> int:
    """Cheapest split over every way of cutting the sorted rows into contiguous runs."""
    ordered = sorted(lengths)
    n = len(ordered)
    best = None
    for cuts in itertools.product([False, True], repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        runs = [ordered[a:b] for a, b in itertools.pairwise(bounds)]
        if any(len(r) > max_rows for r in runs):
            continue
        cost = sum(overhead + len(r) * r[-1] for r in runs)
        best = cost if best is None else min(best, cost)
    assert best is not None
    return best


def test_equal_lengths_stay_in_one_pass() -> None:
    assert plan_chunks([12] * 64, max_rows=64) == [list(range(64))]


def test_short_and_long_rows_get_their_own_passes() -> None:
    lengths = [5] * 32 + [70] * 32
    chunks = plan_chunks(lengths, max_rows=64)
    assert sorted(map(sorted, chunks)) == [list(range(32)), list(range(32, 64))]


def test_max_rows_bounds_every_pass_and_every_row_is_used_once() -> None:
    lengths = list(np.random.default_rng(0).integers(1, 70, size=50))
    chunks = plan_chunks(lengths, max_rows=7)
    assert all(len(c) <= 7 for c in chunks)
    assert sorted(i for c in chunks for i in c) == list(range(50))


@pytest.mark.parametrize("seed", range(25))
def test_the_split_is_the_cheapest_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 11))
    lengths = [int(x) for x in rng.integers(1, 60, size=n)]
    max_rows, overhead = int(rng.integers(1, n + 1)), int(rng.integers(0, 200))
    chunks = plan_chunks(lengths, max_rows, overhead)
    assert _cost(lengths, chunks, overhead) == _brute_force(lengths, max_rows, overhead)


def test_split_passes_give_the_one_pass_gradient(tmp_path: Path) -> None:
    """The same update, once with rows grouped by length into several passes and once in a single
    pass (a huge per-pass cost forbids splitting), moves the weights the same way."""
    from rewardkit.trainers import batching

    tiny = str(build_tiny_model(tmp_path / "model"))
    results = []
    for overhead in (0, 10**9):
        run = gdpo.setup(DEMO, overrides={"model": tiny, "output_dir": str(tmp_path / "run"), "progress": False,
                                          "kl_coef": 0.0, "lr": 1e-2, "max_new_tokens": 24, "optimizer": "sgd"})
        rollouts = gdpo.generate(run, run.rows[:4], 8, seed=2)
        adv = np.random.default_rng(1).standard_normal((4, 8))
        original = batching.PASS_OVERHEAD_TOKENS
        batching.PASS_OVERHEAD_TOKENS = overhead
        try:
            passes = len(gdpo._batches(run, rollouts))
            stats = gdpo.update(run, rollouts, adv)
        finally:
            batching.PASS_OVERHEAD_TOKENS = original
        results.append((passes, stats, [p.detach().clone() for p in run.model.parameters()]))
    (split, split_stats, split_w), (one, one_stats, one_w) = results
    assert split > 1 and one == 1
    assert split_stats["loss"] == pytest.approx(one_stats["loss"], rel=1e-5, abs=1e-7)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(split_w, one_w, strict=True))


def test_both_layouts_give_each_token_its_own_logprob(tmp_path: Path) -> None:
    """Prompts of one length (logits sliced) and of several lengths (logits gathered per row):
    every completion token gets the log-prob of its sample run alone."""
    from transformers import AutoModelForCausalLM

    from rewardkit.trainers.batching import build_batch, token_logprobs

    model = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "model")).eval()
    completions = [[10, 11, 3], [12], [13, 14, 15, 16, 3]]
    layouts = {"one length": [[4, 5, 6], [4, 7, 6], [4, 8, 6]], "several": [[4, 5, 6], [4, 7, 8, 9, 6], [6]]}
    for name, prompts in layouts.items():
        batch = build_batch(prompts, completions, [0, 1, 2], pad_id=0, device=torch.device("cpu"))
        assert (batch.index is None) == (name == "one length")
        with torch.no_grad():
            logp, _ = token_logprobs(model, batch, 1.0)
            for r, (p, c) in enumerate(zip(prompts, completions, strict=True)):
                logits = model(input_ids=torch.tensor([p + c])).logits[0, len(p) - 1 : -1]
                alone = torch.log_softmax(logits, -1).gather(-1, torch.tensor(c)[:, None])[:, 0]
                assert torch.allclose(logp[r, : len(c)], alone, atol=1e-5), name
                assert batch.mask[r].tolist() == [1] * len(c) + [0] * (5 - len(c))
