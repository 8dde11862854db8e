"""The verifier contract: every reward in a spec is one `Verifier` instance.

A verifier class declares `name` (the spec's `verifier:` value) and an `Args` pydantic model
(the spec's `args:`), validated when the spec loads. At score time it receives a batch of samples
(only those whose gate is open) and returns one `Score` per sample. Raising is allowed: the engine
records the exception as that reward's error for the batch cells it was called on, so verifiers
that can fail per sample should catch per sample and return `Score(..., error=...)` themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

Sample = Mapping[str, Any]
"""One completion to score: `completion` (str or list of chat messages), `prompt`, and every
other field of the data row (references, tests, ...)."""


class VerifierArgs(BaseModel):
    """Base for each verifier's `args` model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Score:
    """A verifier's verdict on one sample: a value, and a one-line reason a person can act on.

    `error` is set when the sample could not be judged (bad data, timeout inside the verifier);
    the spec's `on_error` policy then decides what the cell counts as.
    """

    value: float
    reason: str = ""
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Score:
        return cls(float("nan"), reason=error, error=error)


@dataclass
class ScoringContext:
    """What a scoring call shares across verifiers: the policy tokenizer (for token lengths),
    a sandbox (for code), and a cache so that two verifiers judging the same program share runs."""

    tokenizer: Any = None
    sandbox: Any = None
    cache: dict[Any, Any] = field(default_factory=dict)
    workers: int | None = None


class Verifier:
    """Base class. Subclasses set `name`, `Args`, and override `score` or `score_batch`.

    Example: a verifier in ten lines. A spec uses it as `verifier: my_module:Shout` (the spec's
    folder is importable), or by name once a package lists it in the `rewardkit.verifiers`
    entry-point group.

    >>> from rewardkit import Score, ScoringContext, Verifier, VerifierArgs
    >>> class ShoutArgs(VerifierArgs):
    ...     min_ratio: float = 0.5
    >>> class Shout(Verifier):
    ...     '''1 when at least `min_ratio` of the letters are upper case.'''
    ...     name = "shout"
    ...     Args = ShoutArgs
    ...     def score(self, sample, ctx):
    ...         letters = [c for c in sample["completion"] if c.isalpha()]
    ...         ratio = sum(c.isupper() for c in letters) / max(1, len(letters))
    ...         return Score(float(ratio >= self.args.min_ratio), f"{ratio:.0%} upper case")
    >>> shout = Shout(ShoutArgs(min_ratio=0.8))
    >>> [s.reason for s in shout.score_batch([{"completion": "HELLO there"}, {"completion": "LOUD"}],
    ...                                      ScoringContext())]
    ['50% upper case', '100% upper case']
    """

    name: ClassVar[str] = ""
    Args: ClassVar[type[VerifierArgs]] = VerifierArgs

    def __init__(self, args: VerifierArgs | None = None) -> None:
        self.args = args if args is not None else self.Args()

    def required_fields(self) -> list[str]:
        """Data fields this verifier reads from each sample (checked before training starts)."""
        return []

    def score(self, sample: Sample, ctx: ScoringContext) -> Score:
        raise NotImplementedError(f"verifier {self.name!r} implements neither score nor score_batch")

    def score_batch(self, samples: Sequence[Sample], ctx: ScoringContext) -> list[Score]:
        """Default: one sample at a time, an exception on one sample becomes that sample's error."""
        out: list[Score] = []
        for sample in samples:
            try:
                out.append(self.score(sample, ctx))
            except Exception as exc:  # noqa: BLE001 - one bad completion must not sink the batch
                out.append(Score.failed(f"{type(exc).__name__}: {exc}"))
        return out

    def warm_up(self, ctx: ScoringContext) -> None:
        """Start pools or sandboxes now, so that the first batch does not pay for them; raise if they
        cannot start. `rewardkit serve` calls it before it reports ready. Default: nothing to start."""

    def close(self) -> None:
        """Release pools or other resources; the engine calls it when the spec is closed."""


def completion_text(sample: Sample) -> str:
    """The completion as text: a plain string, or the content of the last assistant message."""
    completion = sample.get("completion", "")
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content") or "")
    if isinstance(completion, Sequence):
        for message in reversed(list(completion)):
            if isinstance(message, Mapping) and message.get("role", "assistant") == "assistant":
                return str(message.get("content") or "")
    return str(completion)


def field_value(sample: Sample, name: str, verifier: str = "") -> Any:
    """Read a data field named in the spec, with an error that says which field and which reward."""
    if name not in sample:
        where = f" (needed by verifier {verifier!r})" if verifier else ""
        raise KeyError(f"sample has no field {name!r}{where}; fields present: {sorted(sample)}")
    return sample[name]
