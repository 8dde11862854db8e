"""Hostile completions against format_regex, length_limit and math_equivalence: each one gets a
score and a one-line reason within bounded time, and nothing raises out of score_batch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardkit.verifier import Score, ScoringContext, Verifier
from rewardkit.verifiers.format_regex import FormatRegex
from rewardkit.verifiers.length_limit import LengthLimit
from rewardkit.verifiers.math_equivalence import MathEquivalence


def nested_frac(depth: int) -> str:
    s = "1"
    for _ in range(depth):
        s = "\\frac{1}{" + s + "}"
    return s


HOSTILE: dict[str, object] = {
    "empty": "",
    "1MB of one letter": "a" * 1_000_000,
    "1MB of prose ending in a box": ("We add the numbers carefully. " * 34_000)[:1_000_000] + " \\boxed{4}",
    "lone surrogates": "answer \ud800 is \udfff \\boxed{4} \udc80",
    "invalid UTF-8 bytes": b"\xff\xfe\\boxed{4} \xc3\x28 <think>\x80</think>",
    "surrogateescape-decoded bytes": b"\xff\\boxed{4}\xfe".decode("utf-8", errors="surrogateescape"),
    "JSON nested 10,000 deep": "[" * 10_000 + "]" * 10_000,
    "JSON object nested 10,000 deep": '{"a":' * 10_000 + "1" + "}" * 10_000,
    "1e999999": "The answer is 1e999999",
    "boxed 1e999999": "\\boxed{1e999999}",
    "frac nested 1,000 deep": "\\boxed{" + nested_frac(1000) + "}",
    "unbalanced braces 10,000": "\\boxed{" + "{" * 10_000,
    "huge power": "\\boxed{2^{2^{2^{2^{2^{10}}}}}}",
    "many boxes": "\\boxed{1}" * 50_000,
    "chat message list": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "\\boxed{4}"}],
    "not text at all": 12345,
    "None": None,
}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["we add the numbers carefully, the answer is 4"] * 20, trainer)
    d = tmp_path_factory.mktemp("tok")
    tok.save(str(d / "tokenizer.json"))
    return d


@pytest.fixture(scope="module")
def math_verifier() -> Iterator[MathEquivalence]:
    v = MathEquivalence(MathEquivalence.Args(timeout_s=1.0))
    yield v
    v.close()


def run_all(v: Verifier, budget_s: float) -> list[Score]:
    samples = [{"completion": c, "answer": "4"} for c in HOSTILE.values()]
    start = time.monotonic()
    scores = v.score_batch(samples, ScoringContext())
    elapsed = time.monotonic() - start
    assert elapsed < budget_s, f"{type(v).__name__} took {elapsed:.1f} s on the hostile batch"
    assert len(scores) == len(samples)
    for name, s in zip(HOSTILE, scores, strict=True):
        assert isinstance(s, Score), name
        assert s.reason and "\n" not in s.reason and len(s.reason) <= 400, (name, s.reason)
    return scores


def test_format_regex_on_hostile_completions() -> None:
    v = FormatRegex(FormatRegex.Args.model_validate({
        "pattern": r"<think>.*?</think>\s*<answer>.*?</answer>",
        "patterns": [{"pattern": r"(\w+\s?)*$", "mode": "search", "name": "backtracker"},
                     {"pattern": r"\\boxed\{", "max_count": 1}],
        "score": "share", "timeout_s": 0.5,
    }))
    scores = run_all(v, budget_s=len(HOSTILE) * 0.5 + 5)
    assert all(s.error is None and 0.0 <= s.value <= 1.0 for s in scores)
    by_name = dict(zip(HOSTILE, scores, strict=True))
    assert by_name["many boxes"].value < 1.0
    # On a loaded machine the whole-completion rule can hit its deadline on this 450k-char text, and its
    # longer reason then clips the others away: check the count rule on its own.
    count_only = FormatRegex(FormatRegex.Args.model_validate(
        {"patterns": [{"pattern": r"\\boxed\{", "max_count": 1}], "timeout_s": 0.5}))
    (boxes,) = count_only.score_batch([{"completion": HOSTILE["many boxes"]}], ScoringContext())
    assert boxes.value == 0.0
    assert "occurs at least 2 times, expected at most 1" in boxes.reason


def test_length_limit_on_hostile_completions(tokenizer_dir: Path) -> None:
    for unit in ("characters", "words", "tokens"):
        v = LengthLimit(LengthLimit.Args.model_validate(
            {"max_length": 1000, "unit": unit, "tokenizer": str(tokenizer_dir) if unit == "tokens" else None}))
        scores = run_all(v, budget_s=30)
        by_name = dict(zip(HOSTILE, scores, strict=True))
        assert all(s.error is None for s in scores), [(n, s.error) for n, s in by_name.items() if s.error]
        assert by_name["empty"].value == 1.0
        big = by_name["1MB of prose ending in a box"]
        assert big.value == 0.0 and "over the limit of 1000" in big.reason
        one_word = by_name["1MB of one letter"]
        assert one_word.value == (1.0 if unit == "words" else 0.0), one_word.reason


def test_math_equivalence_on_hostile_completions(math_verifier: MathEquivalence) -> None:
    math_verifier.score_batch([{"completion": "\\boxed{4}", "answer": "4"}], ScoringContext())  # start workers
    # Each pathological pair may use its 1 s limit; the pool runs two at a time at most.
    scores = run_all(math_verifier, budget_s=len(HOSTILE) * 1.0 + 10)
    by_name = dict(zip(HOSTILE, scores, strict=True))
    assert all(s.error is None for s in scores), [(n, s.error) for n, s in by_name.items() if s.error]
    for name in ("1MB of prose ending in a box", "lone surrogates", "invalid UTF-8 bytes",
                 "surrogateescape-decoded bytes", "chat message list"):
        assert by_name[name].value == 1.0, (name, by_name[name].reason)
    for name in ("empty", "JSON nested 10,000 deep", "1e999999", "frac nested 1,000 deep", "huge power", "None"):
        assert by_name[name].value == 0.0, (name, by_name[name].reason)
    assert "timed out after 1 s" in by_name["frac nested 1,000 deep"].reason
    assert by_name["None"].reason.startswith("the completion is empty")
