"""Memory settings change memory only: chunked log-probs equal the plain computation (values,
entropies and gradients) to float tolerance, and gradient checkpointing leaves training unchanged."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardkit.trainers import gdpo  # noqa: E402
from rewardkit.trainers.batching import build_batch, token_logprobs  # noqa: E402
from rewardkit.trainers.logprobs import head_logprobs  # noqa: E402
from rewardkit.trainers.tiny_model import build_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "specs" / "demo.yaml")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def _plain(hidden: Any, head: Any, targets: Any, temperature: float) -> tuple[Any, Any]:
    logp_all = torch.log_softmax(head(hidden).float() / temperature, dim=-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp_all.gather(-1, targets[:, None]).squeeze(-1), entropy.detach()


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_head_equals_plain_log_softmax(chunk: int, bias: bool) -> None:
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(16, 301, bias=bias)
    hidden = torch.randn(50, 16, generator=g, requires_grad=True)
    targets = torch.randint(0, 301, (50,), generator=g)
    upstream = torch.randn(50, generator=g)  # a loss that weighs tokens differently

    expected, expected_ent = _plain(hidden, head, targets, 0.7)
    (expected * upstream).sum().backward()
    want = [hidden.grad.clone(), head.weight.grad.clone()] + ([head.bias.grad.clone()] if bias else [])
    hidden.grad = head.weight.grad = None
    if bias:
        head.bias.grad = None

    logp, entropy = head_logprobs(hidden, head, targets, 0.7, chunk)
    (logp * upstream).sum().backward()
    got = [hidden.grad, head.weight.grad] + ([head.bias.grad] if bias else [])
    assert torch.allclose(logp, expected, atol=1e-5) and torch.allclose(entropy, expected_ent, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got, want, strict=True))
    assert not entropy.requires_grad


def test_chunked_head_in_bfloat16_stays_close() -> None:
    g = torch.Generator().manual_seed(1)
    head = torch.nn.Linear(32, 500, bias=False).to(torch.bfloat16)
    hidden = torch.randn(40, 32, generator=g).to(torch.bfloat16).requires_grad_()
    targets = torch.randint(0, 500, (40,), generator=g)
    expected, _ = _plain(hidden, head, targets, 1.0)
    logp, _ = head_logprobs(hidden, head, targets, 1.0, 16)
    assert logp.dtype == torch.float32
    assert torch.allclose(logp, expected, atol=1e-3)  # same head matmul in bf16, then fp32 on both paths


@pytest.mark.parametrize("prompt_lengths", [(5, 5, 5), (3, 8, 5)])  # sliced and gathered layouts
def test_chunked_token_logprobs_equal_the_plain_pass_on_the_tiny_model(tiny: str, prompt_lengths: tuple) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny)
    g = torch.Generator().manual_seed(2)
    prompts = [torch.randint(7, 29, (n,), generator=g).tolist() for n in prompt_lengths]
    completions = [torch.randint(4, 29, (n,), generator=g).tolist() for n in (6, 1, 4)]
    batch = build_batch(prompts, completions, [0, 1, 2], 0, torch.device("cpu"))
    m = batch.mask.float()

    grads = []
    results = []
    for chunk in (0, 5):
        model.zero_grad()
        logp, entropy = token_logprobs(model, batch, 0.8, chunk)
        (logp * m).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        results.append((logp, entropy))
    (plain, plain_ent), (chunked, chunked_ent) = results
    real = batch.mask.bool()
    assert torch.allclose(chunked[real], plain[real], atol=1e-5)
    assert torch.allclose(chunked_ent[real], plain_ent[real], atol=1e-5)
    assert all(torch.allclose(grads[1][n], grads[0][n], atol=1e-5) for n in grads[0])


def _two_steps(tiny: str, tmp_path: Path, **settings: Any) -> list[dict]:
    run = gdpo.setup(DEMO, overrides={"model": tiny, "progress": False, "output_dir": str(tmp_path / "run"),
                                      "lr": 1e-2, **settings})
    checkpointing = any(getattr(m, "gradient_checkpointing", False) for m in run.model.modules())
    assert checkpointing == settings.get("gradient_checkpointing", False)
    return [gdpo.train_step(run) for _ in range(2)]


@pytest.mark.parametrize("setting", [{"logprob_chunk_tokens": 16}, {"gradient_checkpointing": True},
                                     {"logprob_chunk_tokens": 8, "lora": {"r": 4}}])
def test_memory_settings_train_like_the_default(tiny: str, tmp_path: Path, setting: dict) -> None:
    """Two steps with KL to the reference: same samples, same losses and gradient norms."""
    lora = {"lora": setting["lora"]} if "lora" in setting else {}
    base = _two_steps(tiny, tmp_path / "a", **lora)
    other = _two_steps(tiny, tmp_path / "b", **setting)
    for a, b in zip(base, other, strict=True):
        assert a["len/mean"] == b["len/mean"]
        for key in ("loss", "kl", "entropy", "grad_norm"):
            assert math.isclose(a[key], b[key], rel_tol=1e-4, abs_tol=1e-6), (key, a[key], b[key])
