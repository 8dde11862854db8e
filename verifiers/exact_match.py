"""`exact_match`: the extracted answer equals a reference field, after optional normalization.

Extraction is bounded whatever the completion: the tag is found by a linear scan (the regex
`<t>(.*?)</t>` was quadratic on many unclosed tags, and `re` holds the GIL, so no time limit in
the same process could stop it), and `pattern` runs on the `regex` package with a timeout and
the GIL released, as format_regex does."""

from __future__ import annotations

import re
import string
from typing import Any, Literal

import regex
from pydantic import Field, StrictStr, field_validator, model_validator

from rewardkit.verifier import (
    Sample,
    Score,
    ScoringContext,
    Verifier,
    VerifierArgs,
    completion_text,
    field_value,
)
from rewardkit.verifiers._extraction import renamed


class ExactMatchArgs(VerifierArgs):
    reference: StrictStr = Field(
        "answer", description="Data field holding the gold answer (string or list of accepted strings)."
    )
    extract: Literal["full", "last_line", "tag", "regex"] = Field(
        "full", description="What part of the completion is compared: all of it (`full`; `all` is its old "
        "name), its last non-empty line, the inside of the last <tag>...</tag> (see `tag`), or the first "
        "group of `pattern`.")
    tag: str = Field("answer", description="Tag name for extract: tag.")
    pattern: str = Field("", description="Regular expression for extract: regex (group 1, else the match).")
    regex_timeout_s: float = Field(1.0, gt=0, le=60, description="Time limit of one `pattern` search; a "
                                   "completion that runs past it scores 0 with the reason.")
    strip: bool = Field(True, description="Trim leading and trailing whitespace.")
    case_sensitive: bool = Field(True, description="Compare case-sensitively.")
    collapse_whitespace: bool = Field(False, description="Treat runs of whitespace as one space.")
    remove_punctuation: bool = Field(False, description="Drop ASCII punctuation before comparing.")

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        return renamed(data, "exact_match", values={"extract": {"all": "full"}})

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            regex.compile(value, regex.DOTALL)
        except regex.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from None
        return value


class ExactMatch(Verifier):
    """1 when the extracted answer equals the reference (or one of the references), else 0."""

    name = "exact_match"
    Args = ExactMatchArgs
    args: ExactMatchArgs

    _pattern: regex.Pattern[str] | None = None

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
            return last_pair(text, f"<{a.tag}>", f"</{a.tag}>")
        if a.extract == "regex":
            if self._pattern is None:
                self._pattern = regex.compile(a.pattern, regex.DOTALL)
            match = self._pattern.search(text, timeout=a.regex_timeout_s, concurrent=True)
            if match is None:
                return None
            return match.group(1) if match.groups() else match.group(0)
        return text

    def score(self, sample: Sample, ctx: ScoringContext) -> Score:
        gold = field_value(sample, self.args.reference, self.name)
        golds = [str(g) for g in gold] if isinstance(gold, list) else [str(gold)]
        try:
            answer = self._extract(completion_text(sample))
        except TimeoutError:
            return Score(0.0, f"pattern search timed out after {self.args.regex_timeout_s:g} s on this "
                         f"{len(completion_text(sample)):,}-char completion; scored 0")
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


def last_pair(text: str, open_tag: str, close_tag: str) -> str | None:
    """The content of the last `open_tag ... close_tag` pair, pairs read left to right without
    overlap (what `re.findall(open(.*?)close)[-1]` gives), in linear time."""
    found, i = None, 0
    while True:
        start = text.find(open_tag, i)
        if start < 0:
            return found
        end = text.find(close_tag, start + len(open_tag))
        if end < 0:
            return found
        found = text[start + len(open_tag): end]
        i = end + len(close_tag)
