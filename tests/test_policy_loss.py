"""`trainers.loss.policy_loss` on a few hand-made tokens: the clip in both directions, the k3 KL,
both aggregations, padding, and micro-batches adding up to the whole batch."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from rewardkit.trainers.loss import policy_loss  # noqa: E402

LN = math.log


def _t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _loss(logp: torch.Tensor, old: torch.Tensor, adv: list[float], mask: list[list[bool]], **kw: object):
    options = {"clip_low": 0.2, "clip_high": 0.2, "normalizer": float(torch.tensor(mask).sum()), **kw}
    return policy_loss(logp, old, torch.tensor(adv, dtype=torch.float64), torch.tensor(mask), **options)


def test_on_policy_loss_is_minus_the_mean_advantage_per_token() -> None:
    logp = _t([[-1.0, -2.0], [-0.5, -0.7]])
    loss, stats = _loss(logp, logp.clone(), [1.0, -3.0], [[True, True], [True, True]])
    assert loss.item() == pytest.approx(-(1 + 1 - 3 - 3) / 4)
    assert stats.clipped_tokens == 0 and stats.kl_sum == 0.0


@pytest.mark.parametrize(
    "ratio, adv, expected_loss, clipped",
    [
        (1.5, 1.0, -1.2, 1),  # ratio above 1 + clip_high with A > 0: capped at 1.2 * A
        (0.5, -1.0, 0.8, 1),  # ratio below 1 - clip_low with A < 0: capped at 0.8 * A
        (1.5, -1.0, 1.5, 0),  # ratio up but A < 0: the pessimistic (unclipped) term counts
        (0.5, 1.0, -0.5, 0),  # ratio down with A > 0: unclipped as well
        (1.1, 2.0, -2.2, 0),  # inside the range
    ],
)
def test_clip(ratio: float, adv: float, expected_loss: float, clipped: int) -> None:
    old = _t([[-1.0]])
    logp = (old + LN(ratio)).requires_grad_()
    loss, stats = _loss(logp, old, [adv], [[True]])
    assert loss.item() == pytest.approx(expected_loss)
    assert stats.clipped_tokens == clipped
    loss.backward()
    assert logp.grad is not None
    # a clipped token passes no gradient; an unclipped one d/dlogp (-r * A) = -r * A
    assert logp.grad.item() == pytest.approx(0.0 if clipped else -ratio * adv)


def test_asymmetric_clip_range() -> None:
    old = _t([[-1.0]])
    loss, stats = _loss(old + LN(1.25), old, [1.0], [[True]], clip_high=0.28)
    assert loss.item() == pytest.approx(-1.25) and stats.clipped_tokens == 0  # within DAPO's 1.28


def test_k3_kl_to_the_reference() -> None:
    logp = _t([[-1.0, -2.0]])
    ref = logp + _t([[LN(2.0), 0.0]])  # the reference gives the first token twice the probability
    k3 = 2.0 - LN(2.0) - 1.0
    loss, stats = _loss(logp, logp.clone(), [0.0], [[True, True]], ref_logp=ref, kl_coef=0.5)
    assert stats.kl_sum == pytest.approx(k3)  # the second token agrees with the reference: 0
    assert loss.item() == pytest.approx(0.5 * k3 / 2)


def test_kl_without_reference_is_zero_and_kl_coef_alone_does_nothing() -> None:
    logp = _t([[-1.0]])
    loss, stats = _loss(logp, logp.clone(), [1.0], [[True]], kl_coef=1.0)
    assert loss.item() == pytest.approx(-1.0) and stats.kl_sum == 0.0


def test_token_mean_and_sequence_mean() -> None:
    logp = _t([[-1.0, 0.0, 0.0], [-1.0, -1.0, -1.0]])
    mask = [[True, False, False], [True, True, True]]  # one token, then three
    adv = [4.0, 1.0]
    token, _ = _loss(logp, logp.clone(), adv, mask)  # normalizer: 4 tokens
    assert token.item() == pytest.approx(-(4 + 1 + 1 + 1) / 4)
    sequence, _ = _loss(logp, logp.clone(), adv, mask, aggregation="sequence_mean", normalizer=2.0)
    assert sequence.item() == pytest.approx(-(4 / 1 + 3 / 3) / 2)


def test_padding_is_ignored_whatever_its_values() -> None:
    logp = _t([[-1.0, 50.0]])
    old = _t([[-1.0, -50.0]])  # a ratio of e^100 at the padded position
    loss, stats = _loss(logp, old, [1.0], [[True, False]])
    assert loss.item() == pytest.approx(-1.0) and stats.clipped_tokens == 0


def test_micro_batches_add_up_to_the_whole_batch() -> None:
    gen = torch.Generator().manual_seed(0)
    old = -torch.rand(4, 5, generator=gen, dtype=torch.float64)
    logp = old + 0.3 * torch.randn(4, 5, generator=gen, dtype=torch.float64)
    ref = old + 0.1 * torch.randn(4, 5, generator=gen, dtype=torch.float64)
    adv = torch.tensor([1.0, -0.5, 2.0, -1.5], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    for aggregation, normalizer in (("token_mean", float(mask.sum())), ("sequence_mean", 4.0)):
        options = {"clip_low": 0.2, "clip_high": 0.28, "normalizer": normalizer, "aggregation": aggregation,
                   "kl_coef": 0.1}
        whole, whole_stats = policy_loss(logp, old, adv, mask, ref_logp=ref, **options)  # type: ignore[arg-type]
        parts = [
            policy_loss(logp[rows], old[rows], adv[rows], mask[rows], ref_logp=ref[rows], **options)  # type: ignore[arg-type]
            for rows in (slice(0, 1), slice(1, 4))
        ]
        assert sum(p[0].item() for p in parts) == pytest.approx(whole.item())
        assert sum(p[1].kl_sum for p in parts) == pytest.approx(whole_stats.kl_sum)
        assert sum(p[1].clipped_tokens for p in parts) == whole_stats.clipped_tokens
