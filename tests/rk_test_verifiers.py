"""Small verifiers used by the engine tests through `module:Class` paths (as users' plugins are)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs

CALLS: dict[str, list[int]] = {}


class FieldArgs(VerifierArgs):
    field: str = Field("value", description="Sample field whose number is the score.")
    label: str = Field("", description="Key under which calls are counted in CALLS.")


class FieldValue(Verifier):
    """Scores a sample with the number in one of its fields; records which samples it saw."""

    name = "field_value"
    Args = FieldArgs
    args: FieldArgs

    def score_batch(self, samples: Sequence[Sample], ctx: ScoringContext) -> list[Score]:
        CALLS.setdefault(self.args.label, []).append(len(samples))
        out = []
        for sample in samples:
            value = sample[self.args.field]
            if value == "boom":
                out.append(Score.failed("could not judge 'boom'"))
            else:
                out.append(Score(float(value), f"{self.args.field}={value}"))
        return out


class Exploding(Verifier):
    """Raises on every batch: the engine must record errors, not crash."""

    name = "exploding"

    def score_batch(self, samples: Sequence[Sample], ctx: ScoringContext) -> list[Score]:
        raise RuntimeError("verifier bug")


class PerSampleRaise(Verifier):
    """Uses the default score_batch: raising in `score` on one sample marks only that sample."""

    name = "per_sample_raise"

    def score(self, sample: Sample, ctx: ScoringContext) -> Score:
        if sample.get("bad"):
            raise ValueError("cannot parse this one")
        return Score(1.0, "fine")


def word_count_reward(sample: Sample, limit: int = 5) -> tuple[float, str]:
    words = len(str(sample["completion"]).split())
    return (1.0 if words <= limit else 0.0, f"{words} words (limit {limit})")
