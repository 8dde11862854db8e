"""Run the probes through a spec and decide what counts as a finding.

Each prompt of the samples file is probed once, from its first sample's reference fields and its
best-scoring completion (the honest one). All probe completions are scored in one batch, so code
probes share one sandbox round. A probe completion is a finding under the rules given:
`pass` (default) when it earns any reward at that reward's pass level (`pass_at`), `median`
(default) when its weighted total exceeds the median total of the honest samples, `max` when it
exceeds the best honest total of its prompt. Findings the spec lists under `audit: accept:` are
reported as accepted, with the spec's reason, and do not fail the audit.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardkit.audit.probes import Probe, ProbeInput, all_probes
from rewardkit.verifier import ScoringContext

RULES = ("pass", "median", "max")
DEFAULT_RULES = ("pass", "median")
MAX_CHARS = 20_000  # repetition probes stop here, whatever the length limit


@dataclass(frozen=True)
class Earned:
    reward: str
    value: float
    reason: str


@dataclass
class Finding:
    """A probe completion that earned what it should not."""

    probe: str
    hack: str
    variant: str
    prompt: str
    completion: str
    rule: str                       # pass | median | max
    earned: list[Earned]            # rewards at their pass level (all of them, for context)
    total: float
    honest_total: float             # the best honest completion of this prompt
    accepted: str | None = None     # the spec's reason, when accepted

    def to_json(self) -> dict[str, Any]:
        return {"probe": self.probe, "hack": self.hack, "variant": self.variant, "prompt": self.prompt,
                "completion": self.completion[:500], "rule": self.rule,
                "earned": [{"reward": e.reward, "score": e.value, "reason": e.reason} for e in self.earned],
                "total": self.total, "honest_total": self.honest_total, "accepted": self.accepted}


@dataclass
class ProbeSummary:
    """What one probe earned over every prompt: the best total and which rewards it ever passed."""

    probe: str
    hack: str
    family: str
    completions: int = 0
    best_total: float = -math.inf
    passed: set[str] = field(default_factory=set)


@dataclass
class AuditReport:
    spec: str
    rules: tuple[str, ...]
    honest_median: float
    findings: list[Finding]
    probes: list[ProbeSummary]
    unused_accepts: list[str]
    errors: dict[str, int]          # reward -> probe cells the verifier could not judge
    seconds: float

    @property
    def open_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.accepted is None]

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "rules": list(self.rules), "honest_median": self.honest_median,
                "findings": [f.to_json() for f in self.findings],
                "probes": [{"probe": p.probe, "hack": p.hack, "family": p.family, "completions": p.completions,
                            "best_total": p.best_total, "passed": sorted(p.passed)} for p in self.probes],
                "unused_accepts": self.unused_accepts, "errors": self.errors, "seconds": round(self.seconds, 2)}


def probe_inputs(spec: Any, rows: Sequence[dict[str, Any]], totals: Sequence[float]) -> list[ProbeInput]:
    """One input per prompt: its first sample's fields and its best honest completion."""
    args = {r.verifier.name: r.verifier.args for r in reversed(spec.rewards)}  # the first reward wins
    max_chars = _max_chars(spec)
    best: dict[str, int] = {}
    for i, row in enumerate(rows):
        key = json.dumps(row.get("prompt"), sort_keys=True, default=str)
        if key not in best or totals[i] > totals[best[key]]:
            best[key] = i
    firsts: dict[str, int] = {}
    for i, row in enumerate(rows):
        firsts.setdefault(json.dumps(row.get("prompt"), sort_keys=True, default=str), i)
    inputs = []
    for key, first in firsts.items():
        sample = rows[first]
        honest = sample_completion(rows[best[key]])
        refs = {}
        for name, a in args.items():
            field_name = getattr(a, "reference", None) or _first(getattr(a, "tests", None))
            if isinstance(field_name, str) and field_name in sample:
                refs[name] = sample[field_name]
        inputs.append(ProbeInput(sample=dict(sample), honest=honest, references=refs, args=args, max_chars=max_chars))
    return inputs


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _max_chars(spec: Any) -> int:
    longest = 0
    for r in spec.rewards:
        if r.verifier.name == "length_limit":
            a = r.verifier.args
            per_unit = {"characters": 1, "words": 8, "tokens": 4}.get(str(getattr(a, "unit", "tokens")), 4)
            longest = max(longest, 3 * int((a.max_length + (getattr(a, "buffer", 0) or 0)) * per_unit) + 1)
    return min(MAX_CHARS, longest or 4000)  # three times the limit: well past it whatever a unit weighs


def sample_completion(row: dict[str, Any]) -> str:
    from rewardkit.verifier import completion_text

    return completion_text(row) if "completion" in row else ""


def run_audit(spec: Any, rows: Sequence[dict[str, Any]], rules: Iterable[str] = DEFAULT_RULES,
              ctx: ScoringContext | None = None, probes: Sequence[Probe] | None = None) -> AuditReport:
    """Probe `spec` from the samples in `rows` (dicts with `completion` and the reference fields)."""
    t0 = time.monotonic()
    rules = tuple(rules)
    bad = [r for r in rules if r not in RULES]
    if bad:
        raise ValueError(f"unknown audit rule(s) {bad}; valid: {', '.join(RULES)}")
    ctx = ctx or ScoringContext()
    weights = spec.weights
    honest_table = spec.score(list(rows), _fresh(ctx))
    totals = [_total(honest_table.values[i], weights) for i in range(len(rows))]
    median = statistics.median(totals) if totals else 0.0
    probes = list(all_probes() if probes is None else probes)
    inputs = probe_inputs(spec, rows, totals)
    best_honest = {json.dumps(inp.sample.get("prompt"), sort_keys=True, default=str): -math.inf for inp in inputs}
    for i, row in enumerate(rows):
        key = json.dumps(row.get("prompt"), sort_keys=True, default=str)
        best_honest[key] = max(best_honest[key], totals[i])
    made: list[tuple[Probe, str, ProbeInput, str]] = []
    for inp in inputs:
        for probe in probes:
            if probe.applies(inp):
                made += [(probe, variant, inp, text) for variant, text in probe.make(inp)]
    table = spec.score([{**inp.sample, "completion": text} for _, _, inp, text in made], _fresh(ctx))
    accepts = list(getattr(getattr(spec.config, "audit", None), "accept", []) or [])
    used = [False] * len(accepts)
    summaries = {p.name: ProbeSummary(p.name, p.hack, p.family) for p in probes}
    findings: list[Finding] = []
    errors: dict[str, int] = {}
    for k, (probe, variant, inp, text) in enumerate(made):
        row = table.cells[k]
        total = _total(table.values[k], weights)
        earned = []
        for j, cell in enumerate(row):
            name = spec.rewards[j].name
            if cell.error is not None:
                errors[name] = errors.get(name, 0) + 1
            elif not cell.gated and not math.isnan(cell.value) and cell.value >= spec.rewards[j].pass_at:
                if not probe.targets or spec.rewards[j].verifier.name in probe.targets:
                    earned.append(Earned(name, cell.value, cell.reason))
        s = summaries[probe.name]
        s.completions += 1
        s.best_total = max(s.best_total, total)
        s.passed.update(e.reward for e in earned)
        prompt_key = json.dumps(inp.sample.get("prompt"), sort_keys=True, default=str)
        hits: list[tuple[str, list[str]]] = []
        if "pass" in rules and earned:
            hits.append(("pass", [e.reward for e in earned]))
        if "median" in rules and not probe.targets and total > median + 1e-9:
            hits.append(("median", ["total"]))
        if "max" in rules and not probe.targets and total > best_honest[prompt_key] + 1e-9:
            hits.append(("max", ["total"]))
        for rule, names in hits:
            reason = None
            if names:
                reason = _accepted(accepts, used, probe, names)
            findings.append(Finding(probe.name, probe.hack, variant, _clip(_prompt_text(inp.sample)), text, rule,
                                    earned, total, best_honest[prompt_key], reason))
    unused = [f"{a.probe} ({', '.join(a.rewards) or 'any reward'})" for a, u in zip(accepts, used, strict=True)
              if not u]
    return AuditReport(getattr(spec.config, "name", ""), rules, median, findings, list(summaries.values()), unused,
                       errors, time.monotonic() - t0)


def _accepted(accepts: list[Any], used: list[bool], probe: Probe, rewards: list[str]) -> str | None:
    """The spec's reason when every reward of the finding is accepted for this probe."""
    reasons = []
    for reward in rewards:
        for i, a in enumerate(accepts):
            if a.probe in (probe.name, probe.hack, "*") and (not a.rewards or reward in a.rewards):
                used[i] = True
                reasons.append(a.reason)
                break
        else:
            return None
    return "; ".join(dict.fromkeys(reasons))


def _fresh(ctx: ScoringContext) -> ScoringContext:
    return ScoringContext(tokenizer=ctx.tokenizer, sandbox=ctx.sandbox, workers=ctx.workers)


def _total(values: Any, weights: Sequence[float]) -> float:
    return float(sum(w * v for w, v in zip(weights, values, strict=True) if not math.isnan(v)))


def _prompt_text(sample: dict[str, Any]) -> str:
    prompt = sample.get("prompt")
    return prompt if isinstance(prompt, str) else json.dumps(prompt, default=str)


def _clip(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
