"""`length_limit`: is the completion short enough (and, optionally, long enough)?

Hard mode scores 1 at or under the limit and 0 over it. Soft mode is DAPO's overlong reward
shaping shifted into [0, 1]: 1 up to `max_length - buffer`, then falling linearly to 0 at
`max_length`, and 0 beyond (DAPO's penalty in [-1, 0] is this score minus 1; under GDPO's
per-reward normalization the shift makes no difference).

Tokens are counted with the policy's tokenizer when the trainer passes one (`ctx.tokenizer`),
else with a local `tokenizer.json` loaded through the `tokenizers` package. `transformers` is
never imported here: importing it pulls in torch, which the verifiers must not need.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs
from rewardkit.verifiers._text import one_line, sample_text

Unit = Literal["tokens", "words", "characters"]


class LengthLimitArgs(VerifierArgs):
    """`length_limit` args: the unit, the limit and its shape (hard or DAPO-style soft), an optional minimum."""

    max_length: int = Field(gt=0, description="The limit, in `unit`s; a completion longer than this scores 0.")
    unit: Unit = Field("tokens", description="What is counted: `tokens` (policy tokenizer), `words` "
                       "(whitespace-separated) or `characters` (Unicode code points).")
    mode: Literal["hard", "soft"] = Field(
        "hard", description="`hard`: 1 at or under max_length, 0 over. `soft`: DAPO overlong shaping, a "
        "linear fall from 1 to 0 over the last `buffer` units before max_length.")
    buffer: int | None = Field(
        None, gt=0, description="Soft mode: length of the linear-penalty zone just below max_length "
        "(DAPO's L_cache). Default: a fifth of max_length.")
    min_length: int | None = Field(
        None, ge=0, description="Optional minimum: a completion shorter than this scores 0.")
    tokenizer: str | None = Field(
        None, description="Local tokenizer for unit tokens when the trainer gives none: a tokenizer.json "
        "file or a model directory containing one.")
    token_count_field: str | None = Field(
        None, description="Data field holding the completion's token ids or token count (e.g. from the "
        "generator); used instead of re-tokenizing when present in a sample.")

    @model_validator(mode="after")
    def _consistent(self) -> LengthLimitArgs:
        if self.buffer is not None and self.buffer > self.max_length:
            raise ValueError(f"buffer {self.buffer} is larger than max_length {self.max_length}")
        if self.buffer is not None and self.mode == "hard":
            raise ValueError("buffer only applies to mode: soft")
        if self.min_length is not None and self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} > max_length {self.max_length}")
        if self.tokenizer is not None and self.unit != "tokens":
            raise ValueError(f"tokenizer is only used with unit: tokens (unit is {self.unit!r})")
        return self

    def soft_buffer(self) -> int:
        return self.buffer if self.buffer is not None else max(1, self.max_length // 5)


def load_tokenizer_file(path: str) -> Any:
    """A `tokenizers.Tokenizer` from a tokenizer.json file or a directory holding one."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ImportError("unit tokens with a `tokenizer:` path needs the `tokenizers` package "
                          "(pip install tokenizers, or rewardkit[train])") from exc

    p = Path(path).expanduser()
    file = p / "tokenizer.json" if p.is_dir() else p
    if not file.is_file():
        raise FileNotFoundError(
            f"no tokenizer.json at {file}; save one with AutoTokenizer.from_pretrained(...).save_pretrained(dir) "
            "or pass the policy tokenizer through the trainer")
    return Tokenizer.from_file(str(file))


def _encodable(text: str) -> str:
    """Rust tokenizers reject lone surrogates; replace them so the count still reflects the text."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")


def count_tokens(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Token counts for a batch, without special tokens, for a `tokenizers.Tokenizer` or an HF tokenizer."""
    clean = [_encodable(t) for t in texts]
    if hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer; the _fast variant skips offsets
        encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        return [len(enc.ids) for enc in encode(clean, add_special_tokens=False)]
    if callable(tokenizer):  # transformers PreTrainedTokenizerBase
        ids = tokenizer(clean, add_special_tokens=False)["input_ids"]
        return [len(x) for x in ids]
    return [len(tokenizer.encode(t)) for t in clean]


def _count_one(tokenizer: Any, text: str) -> int | None:
    try:
        return count_tokens(tokenizer, [text])[0]
    except Exception:  # noqa: BLE001 - reported as this sample's error
        return None


class LengthLimit(Verifier):
    """1 when the completion's length is within the limits; soft mode ramps down near the limit."""

    name = "length_limit"
    Args = LengthLimitArgs
    args: LengthLimitArgs

    def __init__(self, args: Any = None) -> None:
        super().__init__(args)
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _local_tokenizer(self) -> Any:
        with self._lock:  # loaded lazily, once, even when batches arrive from several threads
            if self._tokenizer is None and self.args.tokenizer is not None:
                self._tokenizer = load_tokenizer_file(self.args.tokenizer)
            return self._tokenizer

    def _lengths(self, texts: list[str], samples: Sequence[Sample], ctx: ScoringContext) -> list[int | None]:
        a = self.args
        if a.unit == "characters":
            return [len(t) for t in texts]
        if a.unit == "words":
            return [len(t.split()) for t in texts]
        out: list[int | None] = [None] * len(texts)
        todo = list(range(len(texts)))
        if a.token_count_field:
            todo = []
            for i, s in enumerate(samples):
                given = s.get(a.token_count_field)
                if isinstance(given, int) and not isinstance(given, bool):
                    out[i] = given
                elif isinstance(given, Sequence) and not isinstance(given, (str, bytes)):
                    out[i] = len(given)
                else:
                    todo.append(i)
        if todo:
            tokenizer = ctx.tokenizer if ctx.tokenizer is not None else self._local_tokenizer()
            if tokenizer is None:
                raise ValueError("unit tokens needs a tokenizer: pass `rewardkit check --tokenizer PATH` (a "
                                 "tokenizer.json or a folder with one), set `tokenizer:` in the reward's args, or "
                                 "use unit: words/characters (the trainer passes the policy's tokenizer)")
            try:
                counts: list[int | None] = list(count_tokens(tokenizer, [texts[i] for i in todo]))
            except Exception:  # noqa: BLE001 - find the culprit one text at a time
                counts = [_count_one(tokenizer, texts[i]) for i in todo]
            for i, n in zip(todo, counts, strict=True):
                out[i] = n
        return out

    def _score_length(self, n: int) -> Score:
        a = self.args
        unit = a.unit.removesuffix("s") if n == 1 else a.unit  # "1 word", "1 token"
        if a.min_length is not None and n < a.min_length:
            return Score(0.0, f"{n} {unit}, under the minimum of {a.min_length}")
        if n > a.max_length:
            return Score(0.0, f"{n} {unit}, over the limit of {a.max_length} by {n - a.max_length}")
        if a.mode == "soft":
            start = a.max_length - a.soft_buffer()
            if n > start:
                value = (a.max_length - n) / a.soft_buffer()
                return Score(value, f"{n} {unit}, {n - start} into the {a.soft_buffer()}-{unit} overlong "
                             f"buffer before {a.max_length}: {value:.3f}")
        return Score(1.0, f"{n} {unit}, within the limit of {a.max_length}")

    def score_batch(self, samples: Sequence[Sample], ctx: ScoringContext) -> list[Score]:
        texts = [sample_text(s) for s in samples]
        try:
            lengths = self._lengths(texts, samples, ctx)
        except Exception as exc:  # noqa: BLE001 - a missing tokenizer must not sink the batch
            return [Score.failed(one_line(f"{type(exc).__name__}: {exc}"))] * len(samples)
        failed = "the tokenizer failed on this completion; check its text or the tokenizer"
        return [self._score_length(n) if n is not None else Score.failed(failed) for n in lengths]

    def score(self, sample: Sample, ctx: ScoringContext) -> Score:
        return self.score_batch([sample], ctx)[0]
