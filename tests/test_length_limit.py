"""length_limit: units, hard/soft (DAPO overlong shaping), minimum, tokenizers from ctx or a local file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from rewardkit.verifier import ScoringContext
from rewardkit.verifiers.length_limit import LengthLimit, load_tokenizer_file

tokenizers = pytest.importorskip("tokenizers")

CTX = ScoringContext()


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) byte-level BPE tokenizer trained here, saved as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the answer is forty two, so the answer is 42"] * 20, trainer)
    d = tmp_path_factory.mktemp("tok")
    tok.save(str(d / "tokenizer.json"))
    return d


def make(**args: object) -> LengthLimit:
    return LengthLimit(LengthLimit.Args.model_validate(args))


def values(v: LengthLimit, texts: list[str], ctx: ScoringContext = CTX) -> list[float]:
    return [s.value for s in v.score_batch([{"completion": t} for t in texts], ctx)]


def test_hard_limit_characters_and_words() -> None:
    v = make(max_length=5, unit="characters")
    assert values(v, ["", "abcde", "abcdef"]) == [1.0, 1.0, 0.0]
    s = v.score_batch([{"completion": "abcdefgh"}], CTX)[0]
    assert s.reason == "8 characters, over the limit of 5 by 3"
    w = make(max_length=3, unit="words")
    assert values(w, ["one two  three\n", "one two three four"]) == [1.0, 0.0]


def test_soft_dapo_shaping() -> None:
    # limit 10, buffer 4: full reward up to 6, then 0.75, 0.5, 0.25, 0 at 10, 0 beyond
    v = make(max_length=10, unit="characters", mode="soft", buffer=4)
    got = values(v, ["x" * n for n in (0, 6, 7, 8, 9, 10, 11, 500)])
    assert got == [1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0, 0.0]
    # DAPO's penalty is ((L_max - L_cache) - |y|) / L_cache in the buffer: ours is that + 1
    for n in range(7, 11):
        dapo = ((10 - 4) - n) / 4
        assert values(v, ["x" * n])[0] == pytest.approx(dapo + 1)
    reason = v.score_batch([{"completion": "x" * 8}], CTX)[0].reason
    assert reason == "8 characters, 2 into the 4-characters overlong buffer before 10: 0.500"


def test_soft_default_buffer_is_a_fifth() -> None:
    v = make(max_length=100, unit="characters", mode="soft")
    assert values(v, ["x" * 80, "x" * 90]) == [1.0, 0.5]


def test_minimum() -> None:
    v = make(max_length=10, min_length=3, unit="words")
    assert values(v, ["a b", "a b c"]) == [0.0, 1.0]
    assert "under the minimum of 3" in v.score_batch([{"completion": "a"}], CTX)[0].reason


def test_tokens_from_local_tokenizer_file(tokenizer_dir: Path) -> None:
    tok = load_tokenizer_file(str(tokenizer_dir))
    text = "the answer is 42"
    n = len(tok.encode(text, add_special_tokens=False).ids)
    assert 1 < n < len(text)
    v = make(max_length=n, tokenizer=str(tokenizer_dir))
    over = make(max_length=n - 1, tokenizer=str(tokenizer_dir / "tokenizer.json"))
    assert values(v, [text]) == [1.0]
    assert values(over, [text]) == [0.0]
    assert v.score_batch([{"completion": text}], CTX)[0].reason == f"{n} tokens, within the limit of {n}"


def test_tokens_from_policy_tokenizer_in_ctx(tokenizer_dir: Path) -> None:
    tok = load_tokenizer_file(str(tokenizer_dir))
    v = make(max_length=3)  # no path: the trainer's tokenizer is used
    ctx = ScoringContext(tokenizer=tok)
    n = len(tok.encode("the answer is forty two", add_special_tokens=False).ids)
    assert n > 3
    assert values(v, ["the", "the answer is forty two"], ctx) == [1.0, 0.0]


def test_token_count_field_skips_tokenizing() -> None:
    v = make(max_length=4, token_count_field="completion_ids")
    samples = [{"completion": "whatever", "completion_ids": [1, 2, 3]}, {"completion": "x", "completion_ids": 9}]
    assert [s.value for s in v.score_batch(samples, CTX)] == [1.0, 0.0]


def test_missing_tokenizer_is_an_actionable_error() -> None:
    v = make(max_length=10)
    s = v.score_batch([{"completion": "hi"}], CTX)[0]
    assert s.error is not None and "needs a tokenizer" in s.error
    bad = make(max_length=10, tokenizer="/nonexistent/dir")
    s = bad.score_batch([{"completion": "hi"}], CTX)[0]
    assert s.error is not None and "no tokenizer.json" in s.error


def test_invalid_args() -> None:
    with pytest.raises(ValidationError, match="buffer 20 is larger than max_length 10"):
        LengthLimit.Args.model_validate({"max_length": 10, "mode": "soft", "buffer": 20})
    with pytest.raises(ValidationError, match="only applies to mode: soft"):
        LengthLimit.Args.model_validate({"max_length": 10, "buffer": 2})
    with pytest.raises(ValidationError, match="min_length 11 > max_length 10"):
        LengthLimit.Args.model_validate({"max_length": 10, "min_length": 11})
    with pytest.raises(ValidationError):
        LengthLimit.Args.model_validate({"max_length": 0})
    for name, field in LengthLimit.Args.model_fields.items():
        assert field.description, name
    assert LengthLimit.Args.__dict__.get("__doc__") and LengthLimit.__dict__.get("__doc__")


def test_lone_surrogates_are_counted(tokenizer_dir: Path) -> None:
    v = make(max_length=100, tokenizer=str(tokenizer_dir))
    s = v.score_batch([{"completion": "the \ud800 answer"}], CTX)[0]
    assert s.error is None and s.value == 1.0


def test_does_not_import_torch_or_transformers(tokenizer_dir: Path) -> None:
    code = (
        "import sys, json\n"
        "from rewardkit.verifier import ScoringContext\n"
        "from rewardkit.verifiers.length_limit import LengthLimit\n"
        f"v = LengthLimit(LengthLimit.Args(max_length=5, tokenizer={str(tokenizer_dir)!r}))\n"
        "v.score_batch([{'completion': 'the answer'}], ScoringContext())\n"
        "print(json.dumps(['torch' in sys.modules, 'transformers' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, False]
