"""What a probe is, what it is given, and where probes come from (built-ins and plugins).

A probe turns one sample (its reference fields, its honest completion) into adversarial
completions of one hack class: text that should not earn the rewards it targets. Probes are
plugins like verifiers: a package adds its own under the entry-point group `rewardkit.probes`
(each entry point names a `Probe`, or a function returning a list of them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "rewardkit.probes"


@dataclass(frozen=True)
class ProbeInput:
    """One sample as the probes see it.

    `references` maps a verifier name to the sample value of the field its `reference` (or
    `tests`) arg names; `args` maps a verifier name to its args; `max_chars` is the longest
    completion the spec's length rewards allow (or a default)."""

    sample: dict[str, Any]
    honest: str
    references: dict[str, Any]
    args: dict[str, Any]
    max_chars: int = 4000

    @property
    def verifiers(self) -> set[str]:
        return set(self.args)


@dataclass(frozen=True)
class Probe:
    """An adversarial completion generator. `needs` lists verifier names of which at least one
    must be in the spec (empty: any spec). `make` returns `(variant, completion)` pairs."""

    name: str
    hack: str
    family: str
    description: str
    make: Callable[[ProbeInput], list[tuple[str, str]]]
    needs: frozenset[str] = field(default_factory=frozenset)
    targets: frozenset[str] = field(default_factory=frozenset)
    """Verifiers whose rewards this probe attacks. Empty: every reward, and the totals. A probe
    that keeps the honest answer (repetition) targets only what it pads against (length)."""

    def applies(self, inp: ProbeInput) -> bool:
        return not self.needs or bool(self.needs & inp.verifiers)


def builtin_probes() -> list[Probe]:
    from rewardkit.audit import code, generic, math, tool_calls

    return [*generic.PROBES, *math.PROBES, *tool_calls.PROBES, *code.PROBES]


def plugin_probes() -> list[Probe]:
    """Probes from installed packages' `rewardkit.probes` entry points."""
    found: list[Probe] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        items = obj() if callable(obj) and not isinstance(obj, Probe) else obj
        for item in items if isinstance(items, (list, tuple)) else [items]:
            if not isinstance(item, Probe):
                raise TypeError(f"entry point {ep.name!r} in {ENTRY_POINT_GROUP} gave {type(item).__name__}, "
                                "not a rewardkit.audit.Probe")
            found.append(item)
    return found


def all_probes() -> list[Probe]:
    probes = [*builtin_probes(), *plugin_probes()]
    seen: set[str] = set()
    for p in probes:
        if p.name in seen:
            raise ValueError(f"two probes are named {p.name!r}")
        seen.add(p.name)
    return probes


# --- helpers the families share -------------------------------------------------------------------
_CLOSE_TAG = re.compile(r"</([A-Za-z][\w-]*)>")


def answer_slot(text: str) -> tuple[int, int] | None:
    """Where the honest completion's final answer sits: the last \\boxed{...} content, else the
    content of the last closed tag (other than think), else the last fenced code block; None when
    there is none of these."""
    from rewardkit.verifiers._math.extract import _matching_brace

    pos = text.rfind("\\boxed{")
    if pos >= 0:
        close = _matching_brace(text, pos + len("\\boxed"))
        if close > 0:
            return pos + len("\\boxed{"), close
    for m in reversed(list(_CLOSE_TAG.finditer(text))):
        if m.group(1) == "think":
            continue
        start = text.rfind(f"<{m.group(1)}>", 0, m.start())
        if start >= 0:
            return start + len(m.group(1)) + 2, m.start()
    end = text.rfind("```")
    start = text.rfind("```", 0, end) if end > 0 else -1
    if start >= 0:
        body = text.find("\n", start)
        if 0 <= body < end:
            return body + 1, end
    return None


def place(honest: str, answer: str) -> str:
    """The honest completion with its final answer replaced by `answer` (appended when the
    completion has no answer slot)."""
    slot = answer_slot(honest)
    if slot is None:
        return f"{honest}\n{answer}" if honest else answer
    start, end = slot
    pad_left = " " if honest[start:end].startswith(" ") else ""
    pad_right = " " if honest[start:end].endswith(" ") else ""
    return honest[:start] + pad_left + answer + pad_right + honest[end:]


def gold_text(inp: ProbeInput) -> str | None:
    """The sample's gold answer as text (math_equivalence or exact_match), first if a list."""
    for name in ("math_equivalence", "exact_match"):
        if name in inp.references:
            gold = inp.references[name]
            if isinstance(gold, list):
                gold = gold[0] if gold else None
            return None if gold is None else str(gold)
    return None


def wrong_answer(gold: str, numeric: bool = False) -> str:
    """A plausible wrong answer of the same kind (a number when `numeric`, e.g. for LaTeX golds)."""
    try:
        number = float(gold.replace(",", ""))
    except ValueError:
        if numeric:
            return "987654"
        return "zzz" if gold.lower() != "zzz" else "yyy"
    if number.is_integer():
        return str(int(number) + 1)
    return repr(number + 1)
