"""The trainer's own decode loops (`rollout.sample_loop`, `static_decode.StaticDecoder`) sample what
the settings ask for.

Checked on the real tiny Llama against an uncached, step-by-step reference computed here with full
forwards: greedy is the argmax continuation, top-k/top-p keep every token inside the cut, the
first-token frequencies match softmax(logits / T), an end token ends its row, and a seed fixes
the samples. Greedy output also agrees token for token with `transformers` `generate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardkit.trainers.rollout import SamplingSettings, TransformersEngine, sample_loop  # noqa: E402
from rewardkit.trainers.static_decode import StaticDecoder  # noqa: E402
from rewardkit.trainers.tiny_model import build_tiny_model  # noqa: E402

PAD, EOS = 0, 3


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    path = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    return AutoModelForCausalLM.from_pretrained(path).eval()


@pytest.fixture(scope="module")
def prompts() -> list[list[int]]:
    """Four prompts of different lengths (so left padding is exercised) over ordinary tokens."""
    g = torch.Generator().manual_seed(0)
    return [torch.randint(7, 29, (length,), generator=g).tolist() for length in (4, 9, 6, 12)]


def _next_logits(model: Any, prefix: list[int]) -> Any:
    """Next-token logits of one unpadded sequence, no cache: the reference for every check."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([prefix])).logits[0, -1]


def _greedy_reference(model: Any, prompt: list[int], steps: int, eos: set[int]) -> list[int]:
    out: list[int] = []
    for _ in range(steps):
        tok = int(_next_logits(model, prompt + out).argmax())
        out.append(tok)
        if tok in eos:
            break
    return out


Sampler = Callable[..., list[list[int]]]


@pytest.fixture(params=["loop", "static"])
def sample(request: pytest.FixtureRequest) -> Sampler:
    """Both decode loops answer every test: the growing-cache loop and the static-cache one
    (run eagerly here; on a GPU its decode step is compiled)."""

    def run(model: Any, prompts: list[list[int]], n: int, seed: int, eos: set[int] | None = None,
            **settings: Any) -> list[list[int]]:
        sampling = SamplingSettings(**{"max_new_tokens": 8, **settings})
        eos_ids = {EOS} if eos is None else eos
        if request.param == "static":
            return StaticDecoder(model, compile_step=False).generate(prompts, n, sampling, seed, eos_ids, PAD)
        return sample_loop(model, prompts, n, sampling, seed, eos_ids, PAD)

    return run


def test_greedy_is_the_stepwise_argmax(sample: Sampler, model: Any, prompts: list[list[int]]) -> None:
    """Greedy, top-k 1 and a tiny temperature all give the argmax continuation of every prompt."""
    no_stop = {99}  # not in the vocabulary: every row runs to max_new_tokens
    expected = [_greedy_reference(model, p, 8, no_stop) for p in prompts for _ in range(2)]
    assert sample(model, prompts, 2, seed=0, eos=no_stop, greedy=True) == expected
    assert sample(model, prompts, 2, seed=1, eos=no_stop, top_k=1) == expected
    assert sample(model, prompts, 2, seed=2, eos=no_stop, temperature=1e-6) == expected


@pytest.mark.parametrize("sampler", ["loop", "static"])
def test_greedy_matches_transformers_generate(model: Any, prompts: list[list[int]], sampler: str) -> None:
    sampling = SamplingSettings(max_new_tokens=12, greedy=True)
    loop = TransformersEngine(model, {EOS}, PAD, sampler=sampler).generate(prompts, 3, sampling, seed=0)
    ref = TransformersEngine(model, {EOS}, PAD, sampler="generate").generate(prompts, 3, sampling, seed=0)
    assert loop == ref


def test_end_token_ends_its_row_only(sample: Sampler, model: Any, prompts: list[list[int]]) -> None:
    """Declaring a token that greedy decoding emits mid-way an end token cuts exactly there (token
    kept, nothing after), while rows that never emit it, decoded in the same shrinking batch, are
    unchanged."""
    no_stop = {99}
    full = sample(model, prompts, 1, seed=0, eos=no_stop, greedy=True, max_new_tokens=10)
    stop = full[0][3]  # a token prompt 0 emits at step 4
    cut = sample(model, prompts, 1, seed=0, eos={stop}, greedy=True, max_new_tokens=10)
    for before, after in zip(full, cut, strict=True):
        expected = before[: before.index(stop) + 1] if stop in before else before
        assert after == expected
    assert len(cut[0]) <= 4 and any(stop not in row for row in full)  # both kinds of rows occur


def test_sampled_rows_stop_at_the_end_token_and_fit_the_budget(sample: Sampler, model: Any, prompts: list[list[int]]) -> None:
    # A token the random policy samples often, as the end token: many rows stop early.
    eos = {int(_next_logits(model, prompts[0]).argmax())}
    rows = sample(model, prompts, 16, seed=3, eos=eos, max_new_tokens=6)
    assert len(rows) == 64
    assert all(tok not in eos for r in rows for tok in r[:-1])  # an end token is always the last one
    assert all(r[-1] in eos if len(r) < 6 else len(r) == 6 for r in rows)  # cut at the end token or full
    assert 0 < sum(r[-1] in eos for r in rows) < 64  # some stopped, some ran to the budget


def test_same_seed_same_samples(sample: Sampler, model: Any, prompts: list[list[int]]) -> None:
    settings = {"temperature": 0.9, "top_p": 0.95, "top_k": 20}
    a = sample(model, prompts, 8, seed=11, **settings)
    assert a == sample(model, prompts, 8, seed=11, **settings)
    assert a != sample(model, prompts, 8, seed=12, **settings)


def test_global_rng_is_left_alone(sample: Sampler, model: Any, prompts: list[list[int]]) -> None:
    """Sampling uses its own generator: the rest of a training step's randomness does not depend
    on how many tokens were drawn."""
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    sample(model, prompts, 4, seed=0)
    assert torch.equal(torch.rand(3), expected)


def _ranked_prefixes(prompts: list[list[int]], rows: list[list[int]], n: int) -> list[tuple[list[int], int]]:
    """(context, sampled token) for every sampled token."""
    return [(prompts[i // n] + row[:t], tok) for i, row in enumerate(rows) for t, tok in enumerate(row)]


def test_top_k_samples_only_the_k_most_likely(sample: Sampler, model: Any, prompts: list[list[int]]) -> None:
    k = 3
    rows = sample(model, prompts, 4, seed=4, top_k=k, temperature=2.0)  # hot: the tail would show
    for context, tok in _ranked_prefixes(prompts, rows, 4):
        logits = _next_logits(model, context)
        assert int((logits > logits[tok]).sum()) < k


def test_top_p_samples_only_inside_the_nucleus(sample: Sampler, model: Any, prompts: list[list[int]]) -> None:
    top_p, temperature = 0.5, 1.5
    rows = sample(model, prompts, 4, seed=5, top_p=top_p, temperature=temperature)
    for context, tok in _ranked_prefixes(prompts, rows, 4):
        probs = torch.softmax(_next_logits(model, context) / temperature, -1)
        mass_above = float(probs[probs > probs[tok]].sum())
        assert mass_above < top_p + 1e-5  # the nucleus: tokens before it hold less than top_p


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_first_token_frequencies_follow_the_tempered_softmax(sample: Sampler, model: Any, prompts: list[list[int]],
                                                             temperature: float) -> None:
    n = 4000
    rows = sample(model, prompts[:1], n, seed=6, eos={99}, temperature=temperature, max_new_tokens=1)
    assert all(len(r) == 1 for r in rows)  # a sampled <pad> is a token like any other: kept
    counts = torch.bincount(torch.tensor([r[0] for r in rows]), minlength=model.config.vocab_size).double()
    probs = torch.softmax(_next_logits(model, prompts[0]).double() / temperature, -1)
    # 4 standard errors per token (at most 0.032 for p = 0.5): a wrong temperature is far off.
    assert torch.all((counts / n - probs).abs() <= 4 * (probs * (1 - probs) / n).sqrt() + 1e-3)


def test_prompts_of_one_length_sample_without_a_mask(sample: Sampler, model: Any) -> None:
    """No padding: the loop passes no attention mask; the continuation is still the argmax one."""
    g = torch.Generator().manual_seed(1)
    same = [torch.randint(7, 29, (6,), generator=g).tolist() for _ in range(3)]
    no_stop = {99}
    expected = [_greedy_reference(model, p, 8, no_stop) for p in same for _ in range(2)]
    assert sample(model, same, 2, seed=0, eos=no_stop, greedy=True) == expected


def test_sampling_in_inference_mode_leaves_a_dynamic_rope_model_trainable() -> None:
    """Dynamic RoPE rebuilds its frequencies past the trained length, here inside the sampler's
    inference mode; training on the same model afterwards still runs forward, backward and step."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(vocab_size=32, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=1, max_position_embeddings=16, pad_token_id=PAD, eos_token_id=EOS,
                         rope_scaling={"rope_type": "dynamic", "factor": 2.0})
    torch.manual_seed(0)
    policy = AutoModelForCausalLM.from_config(config)
    out = sample_loop(policy.eval(), [[5, 6, 7, 8] * 3], 2, SamplingSettings(max_new_tokens=20), 0, {99}, PAD)
    assert [len(o) for o in out] == [20, 20]  # ran to 32 positions, past the 16 it was built for
    assert policy.model.rotary_emb.inv_freq.is_inference()  # rebuilt while sampling
    policy.train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    for length in (32, 8):  # past the trained length (rebuilt again), then within it
        policy(input_ids=torch.tensor([[5, 6, 7, 8] * (length // 4)])).logits.square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(torch.isfinite(p).all() for p in policy.parameters())


def test_static_decoder_reuses_its_cache_and_repeats_itself(model: Any, prompts: list[list[int]]) -> None:
    """A second call of the same shape runs on the first call's cache (what keeps a captured GPU
    graph valid), emptied first: same seed, same samples; another shape gets its own cache."""
    decoder = StaticDecoder(model, compile_step=False)
    sampling = SamplingSettings(max_new_tokens=8, temperature=0.9)
    first = decoder.generate(prompts, 4, sampling, 7, {EOS}, PAD)
    cache = decoder._caches[next(iter(decoder._caches))]
    assert decoder.generate(prompts, 4, sampling, 7, {EOS}, PAD) == first
    assert list(decoder._caches.values()) == [cache]
    decoder.generate(prompts[:2], 4, sampling, 7, {EOS}, PAD)
    assert len(decoder._caches) == 2


def test_trainer_runs_on_the_static_loop(tmp_path: Any) -> None:
    """`train.sampler: static` reaches the engine: a training step samples through it."""
    from pathlib import Path

    from rewardkit.trainers import gdpo

    demo = str(Path(__file__).resolve().parents[1] / "specs" / "demo.yaml")
    tiny = str(build_tiny_model(tmp_path / "model"))
    run = gdpo.setup(demo, overrides={"model": tiny, "sampler": "static", "progress": False,
                                      "output_dir": str(tmp_path / "run")})
    metrics = gdpo.train_step(run)
    assert run.engine._static is not None and len(run.engine._static._caches) == 1
    assert 1 <= metrics["len/mean"] <= run.cfg.max_new_tokens


def test_a_failing_compiled_step_falls_back_to_eager(model: Any, prompts: list[list[int]],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in for a `torch.compile` that cannot handle the model (no GPU here): the call warns,
    starts over eagerly and returns what the eager loop returns."""

    def broken_compile(fn: Any, **kwargs: Any) -> Any:
        def step(*args: Any, **kw: Any) -> Any:
            raise RuntimeError("cannot compile this")
        return step

    monkeypatch.setattr(torch, "compile", broken_compile)
    sampling = SamplingSettings(max_new_tokens=8, temperature=0.9)
    expected = StaticDecoder(model, compile_step=False).generate(prompts, 2, sampling, 3, {EOS}, PAD)
    decoder = StaticDecoder(model, compile_step=True)
    with pytest.warns(UserWarning, match="decoding eagerly"):
        assert decoder.generate(prompts, 2, sampling, 3, {EOS}, PAD) == expected
    assert decoder.generate(prompts, 2, sampling, 3, {EOS}, PAD) == expected  # eager from now on, no warning
