"""`format_regex`: does the completion have the required shape (`<think>...</think><answer>...</answer>`)?

Matching uses the `regex` package rather than `re` because it takes a `timeout`: the deadline is
checked inside the matching loop itself, so a catastrophic pattern such as `(a+)+$` on an
adversarial completion stops on time in any thread, with no signals and no worker process (a
killable worker would cost a pipe round trip per sample, about 50x the cost of a typical match).
`concurrent=True` releases the GIL while matching, so thread pools scale. Note that `regex`
measures the timeout in CPU time: on an idle core that is wall time; on an overloaded machine the
wall time stretches with the load, but the work done per completion stays bounded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs
from rewardkit.verifiers._text import clip, one_line, sample_text

Mode = Literal["search", "fullmatch"]
FlagName = Literal["IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII", "i", "m", "s", "x", "a"]

_FLAG_BITS: dict[str, int] = {
    "IGNORECASE": regex.IGNORECASE, "i": regex.IGNORECASE,
    "MULTILINE": regex.MULTILINE, "m": regex.MULTILINE,
    "DOTALL": regex.DOTALL, "s": regex.DOTALL,
    "VERBOSE": regex.VERBOSE, "x": regex.VERBOSE,
    "ASCII": regex.ASCII, "a": regex.ASCII,
}


def flag_bits(names: Sequence[str]) -> int:
    bits = 0
    for name in names:
        bits |= _FLAG_BITS[name]
    return bits


def compile_pattern(pattern: str, flags: int) -> regex.Pattern[str]:
    """Compile, turning a syntax error into a ValueError that names the pattern and the position."""
    try:
        return regex.compile(pattern, flags)
    except regex.error as regex_exc:
        err: Exception = regex_exc
    try:  # `re` points at the offending token (e.g. the unclosed '['), `regex` at where it gave up
        re.compile(pattern, flags)
    except re.error as re_exc:
        err = re_exc
    pos = getattr(err, "pos", None)
    where = f" at position {pos}" if pos is not None else ""
    marker = f" (here: {clip(pattern[pos:], 20)!r})" if pos is not None and pos < len(pattern) else ""
    msg = getattr(err, "msg", str(err))
    raise ValueError(f"invalid regular expression {pattern!r}: {msg}{where}{marker}")


class PatternRule(BaseModel):
    """One pattern and what it must do; unset `mode`/`flags` inherit the verifier-level values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(description="Regular expression (Python `re` syntax, run by the `regex` package).")
    name: str = Field("", description="Short label used in reasons (default: the pattern itself).")
    mode: Mode | None = Field(
        None, description="`search`: the pattern occurs somewhere; `fullmatch`: it spans the whole "
        "completion. Default: the verifier-level `mode`.")
    flags: list[FlagName] | None = Field(
        None, description="Regex flags (IGNORECASE, MULTILINE, DOTALL, VERBOSE, ASCII or i/m/s/x/a). "
        "Default: the verifier-level `flags`.")
    count: int | None = Field(
        None, ge=0, description="Exact number of non-overlapping occurrences required (search mode), "
        "e.g. 1 for 'exactly one <think> block'.")
    min_count: int | None = Field(None, ge=0, description="Least number of occurrences (search mode).")
    max_count: int | None = Field(None, ge=0, description="Most occurrences allowed (search mode).")
    absent: bool = Field(
        False, description="Invert the rule: it passes when the pattern does NOT occur / match "
        "(e.g. no text after </answer>).")

    @model_validator(mode="after")
    def _counts_need_search(self) -> PatternRule:
        counted = self.count is not None or self.min_count is not None or self.max_count is not None
        if counted and self.mode == "fullmatch":
            raise ValueError(f"pattern {self.pattern!r}: count/min_count/max_count need mode 'search'")
        if counted and self.absent:
            raise ValueError(f"pattern {self.pattern!r}: use max_count: 0 instead of absent with counts")
        if self.count is not None and (self.min_count is not None or self.max_count is not None):
            raise ValueError(f"pattern {self.pattern!r}: give either count or min_count/max_count")
        if self.min_count is not None and self.max_count is not None and self.min_count > self.max_count:
            raise ValueError(f"pattern {self.pattern!r}: min_count {self.min_count} > max_count {self.max_count}")
        return self


class FormatRegexArgs(VerifierArgs):
    """`format_regex` args: the patterns, how each must match, and how the results add up to a score.

    Patterns are compiled when the spec loads, so a typo is a load-time error with its position."""

    mode: Mode = Field(
        "fullmatch", description="Default for every pattern: `fullmatch` (the pattern spans the whole "
        "completion) or `search` (it occurs somewhere). Patterns with a count always search.")
    flags: list[FlagName] = Field(
        default_factory=lambda: ["DOTALL"],  # type: ignore[arg-type]
        description="Default regex flags for every pattern; DOTALL by default so that `.` crosses lines.")
    pattern: str | None = Field(None, description="Shorthand for a single pattern (same as `patterns: [...]`).")
    patterns: list[str | PatternRule] = Field(
        default_factory=list, description="Patterns to check: plain strings, or objects with pattern, "
        "name, mode, flags, count/min_count/max_count, absent.")
    score: Literal["all", "share"] = Field(
        "all", description="`all`: 1 only when every pattern passes, else 0; `share`: the fraction that pass.")
    strip: bool = Field(
        False, description="Trim whitespace around the completion before matching (models often end with a newline).")
    timeout_s: float = Field(
        0.5, gt=0, le=60, description="Matching time budget per completion, all patterns together (inside "
        "one match `regex` counts CPU time); a pattern still running then fails with a 'timed out' reason.")
    on_timeout: Literal["fail", "error"] = Field(
        "fail", description="A timed-out pattern fails the rule (`fail`), or the whole sample is reported as "
        "an error for the spec's on_error policy (`error`).")

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            compile_pattern(value, flag_bits(info.data.get("flags") or []))
        return value

    @field_validator("patterns")
    @classmethod
    def _check_patterns(cls, value: list[str | PatternRule], info: ValidationInfo) -> list[str | PatternRule]:
        default_flags = info.data.get("flags") or []
        for item in value:
            if isinstance(item, str):
                compile_pattern(item, flag_bits(default_flags))
            else:
                compile_pattern(item.pattern, flag_bits(item.flags if item.flags is not None else default_flags))
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> FormatRegexArgs:
        if self.pattern is None and not self.patterns:
            raise ValueError("format_regex needs `pattern` or a non-empty `patterns` list")
        return self

    def rules(self) -> list[PatternRule]:
        """Every pattern as a fully resolved rule (inherited mode and flags filled in)."""
        items: list[str | PatternRule] = [self.pattern] if self.pattern is not None else []
        items += self.patterns
        out = []
        for item in items:
            rule = PatternRule(pattern=item) if isinstance(item, str) else item
            counted = rule.count is not None or rule.min_count is not None or rule.max_count is not None
            out.append(rule.model_copy(update={
                "mode": rule.mode or ("search" if counted else self.mode),
                "flags": rule.flags if rule.flags is not None else list(self.flags),
            }))
        return out


class _Timeout(Exception):
    """The per-completion matching budget ran out between two regex calls."""


class _Compiled:
    """A rule with its compiled pattern and the label used in reasons."""

    def __init__(self, rule: PatternRule) -> None:
        self.rule = rule
        self.regex = compile_pattern(rule.pattern, flag_bits(rule.flags or []))
        self.label = repr(rule.name) if rule.name else f"pattern '{clip(rule.pattern, 40)}'"


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Timeout
    return left


def _count(c: _Compiled, text: str, cap: int, deadline: float) -> int:
    """Non-overlapping occurrences, counting no further than `cap` (enough to decide the rule)."""
    n, pos = 0, 0
    while n < cap and pos <= len(text):
        m = c.regex.search(text, pos, timeout=_remaining(deadline), concurrent=True)
        if m is None:
            break
        n += 1
        pos = m.end() if m.end() > m.start() else m.end() + 1
    return n


def _break_point(c: _Compiled, text: str, deadline: float) -> str:
    """Why a fullmatch failed: trailing text after a match, a missing ending, or where it stops fitting."""
    head = c.regex.match(text, timeout=_remaining(deadline), concurrent=True)
    if head is not None:
        return f"it matches the first {head.end()} chars, then unexpected text '{clip(text[head.end():], 30)}'"
    if c.regex.fullmatch(text, partial=True, timeout=_remaining(deadline), concurrent=True) is not None:
        return "the completion ends before the pattern is complete (a closing part is missing)"
    lo, hi = 0, len(text) - 1  # text[:lo] can still grow into a match; text[:hi + 1] cannot, nor any longer
    while lo < hi:
        mid = (lo + hi + 1) // 2
        m = c.regex.fullmatch(text, endpos=mid, partial=True, timeout=_remaining(deadline), concurrent=True)
        if m is not None:
            lo = mid
        else:
            hi = mid - 1
    return f"it stops fitting at char {lo}: '{clip(text[max(0, lo - 15):lo], 18)}' then '{clip(text[lo:], 22)}'"


def _check(c: _Compiled, text: str, deadline: float) -> tuple[bool, str]:
    """(passed, why) for one rule; raises _Timeout when the budget runs out."""
    rule = c.rule
    if rule.mode == "fullmatch":
        ok = c.regex.fullmatch(text, timeout=_remaining(deadline), concurrent=True) is not None
        if rule.absent:
            return (not ok), f"{c.label} matches the whole completion but must not"
        if ok:
            return True, ""
        try:
            where = _break_point(c, text, deadline)
        except (_Timeout, TimeoutError):
            where = "no position found within the time budget"
        return False, f"{c.label} does not match the whole completion: {where}"
    if rule.count is None and rule.min_count is None and rule.max_count is None:
        found = c.regex.search(text, timeout=_remaining(deadline), concurrent=True) is not None
        if rule.absent:
            return (not found), f"{c.label} occurs in the completion but must not"
        return found, f"{c.label} does not occur in the completion"
    bounds = [b for b in (rule.count, rule.min_count, rule.max_count) if b is not None]
    n = _count(c, text, max(bounds) + 1, deadline)
    shown = f"at least {n}" if n > max(bounds) else str(n)
    if rule.count is not None:
        return n == rule.count, f"{c.label} occurs {shown} times, expected exactly {rule.count}"
    if rule.min_count is not None and n < rule.min_count:
        return False, f"{c.label} occurs {shown} times, expected at least {rule.min_count}"
    if rule.max_count is not None and n > rule.max_count:
        return False, f"{c.label} occurs {shown} times, expected at most {rule.max_count}"
    return True, ""


class FormatRegex(Verifier):
    """1 when the completion has the required shape (or the share of rules it satisfies)."""

    name = "format_regex"
    Args = FormatRegexArgs
    args: FormatRegexArgs

    def __init__(self, args: Any = None) -> None:
        super().__init__(args)
        self._compiled = [_Compiled(rule) for rule in self.args.rules()]

    def score(self, sample: Sample, ctx: ScoringContext) -> Score:
        text = sample_text(sample)
        if self.args.strip:
            text = text.strip()
        deadline = time.monotonic() + self.args.timeout_s
        passed: list[bool] = []
        failures: list[str] = []
        for c in self._compiled:
            try:
                ok, why = _check(c, text, deadline)
            except (_Timeout, TimeoutError):
                why = (f"{c.label} timed out after {self.args.timeout_s:g} s on this {len(text)}-char "
                       "completion (catastrophic backtracking? simplify nested quantifiers like (a+)+)")
                if self.args.on_timeout == "error":
                    return Score.failed(why)
                ok = False
            passed.append(ok)
            if not ok:
                failures.append(why)
        n_ok, n = sum(passed), len(passed)
        value = (n_ok / n) if self.args.score == "share" else float(n_ok == n)
        if not failures:
            return Score(value, f"format ok: {n}/{n} pattern{'s' if n > 1 else ''} passed")
        return Score(value, one_line(f"{n_ok}/{n} passed: " + " | ".join(failures), 400))
