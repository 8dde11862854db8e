"""`exact_match`: the extracted answer equals a reference field, after optional normalization."""

from __future__ import annotations

import re
import string
from typing import Literal

from pydantic import Field, StrictStr

from rewardkit.verifier import (
    Sample,
    Score,
    ScoringContext,
    Verifier,
    VerifierArgs,
    completion_text,
    field_value,
)


class ExactMatchArgs(VerifierArgs):
    reference: StrictStr = Field(
        "answer", description="Data field holding the gold answer (string or list of accepted strings)."
    )
    extract: Literal["all", "last_line", "tag", "regex"] = Field(
        "all", description="What part of the completion is compared: all of it, its last non-empty line, "
        "the inside of the last <tag>...</tag> (see `tag`), or the first group of `pattern`.")
    tag: str = Field("answer", description="Tag name for extract: tag.")
    pattern: str = Field("", description="Regular expression for extract: regex (group 1, else the match).")
    strip: bool = Field(True, description="Trim leading and trailing whitespace.")
    case_sensitive: bool = Field(True, description="Compare case-sensitively.")
    collapse_whitespace: bool = Field(False, description="Treat runs of whitespace as one space.")
    remove_punctuation: bool = Field(False, description="Drop ASCII punctuation before comparing.")


class ExactMatch(Verifier):
    """1 when the extracted answer equals the reference (or one of the references), else 0."""

    name = "exact_match"
    Args = ExactMatchArgs
    args: ExactMatchArgs

    def required_fields(self) -> list[str]:
        return [self.args.reference]

    def _normalize(self, text: str) -> str:
        a = self.args
        if a.strip:
            text = text.strip()
        if a.collapse_whitespace:
            text = re.sub(r"\s+", " ", text)
        if a.remove_punctuation:
            text = text.translate(str.maketrans("", "", string.punctuation))
        if not a.case_sensitive:
            text = text.casefold()
        return text

    def _extract(self, text: str) -> str | None:
        a = self.args
        if a.extract == "last_line":
            lines = [line for line in text.splitlines() if line.strip()]
            return lines[-1] if lines else ""
        if a.extract == "tag":
            found = re.findall(rf"<{re.escape(a.tag)}>(.*?)</{re.escape(a.tag)}>", text, flags=re.DOTALL)
            return found[-1] if found else None
        if a.extract == "regex":
            match = re.search(a.pattern, text, flags=re.DOTALL)
            if match is None:
                return None
            return match.group(1) if match.groups() else match.group(0)
        return text

    def score(self, sample: Sample, ctx: ScoringContext) -> Score:
        gold = field_value(sample, self.args.reference, self.name)
        golds = [str(g) for g in gold] if isinstance(gold, list) else [str(gold)]
        answer = self._extract(completion_text(sample))
        if answer is None:
            return Score(0.0, f"no answer found ({self.args.extract} extraction)")
        got = self._normalize(answer)
        normalized = f" (normalized {_clip(got)})" if got != answer else ""  # as written, then as compared
        if any(got == self._normalize(g) for g in golds):
            return Score(1.0, f"{_clip(answer)}{normalized} matches the reference")
        return Score(0.0, f"expected {_clip(golds[0])}, got {_clip(answer)}{normalized}")


def _clip(text: str, limit: int = 60) -> str:
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(text)
