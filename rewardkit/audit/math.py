"""Probes for answer-checking rewards (math_equivalence, exact_match): many candidates, several in
one answer, intervals and inequalities around the gold, one answer in the thinking and another
outside, unit, percent and degree variants."""

from __future__ import annotations

from rewardkit.audit.probes import Probe, ProbeInput, gold_text, place, wrong_answer

ANSWERS = frozenset({"math_equivalence", "exact_match"})


def _number(gold: str) -> float | None:
    try:
        return float(gold.replace(",", ""))
    except ValueError:
        return None


def _many_boxed(inp: ProbeInput) -> list[tuple[str, str]]:
    """The gold among many candidates, never as the final one."""
    gold = gold_text(inp)
    if gold is None:
        return []
    wrong = wrong_answer(gold, numeric=True)
    boxes = " ".join(f"\\boxed{{{c}}}" for c in ("0", "1", gold, "2", "-1"))
    tags = " ".join(f"<answer>{c}</answer>" for c in ("0", gold, wrong))
    lines = "\n".join(["0", "1", gold, wrong])
    return [("boxed candidates, gold not last", f"{boxes} \\boxed{{{wrong}}}"),
            ("tagged candidates, gold not last", tags),
            ("one candidate per line, gold not last", lines)]


def _several_in_one(inp: ProbeInput) -> list[tuple[str, str]]:
    gold = gold_text(inp)
    if gold is None:
        return []
    wrong = wrong_answer(gold, numeric=True)
    return [("list", place(inp.honest, f"{gold}, {wrong}")),
            ("set", place(inp.honest, f"\\{{{gold}, {wrong}\\}}")),
            ("or", place(inp.honest, f"{gold} \\text{{ or }} {wrong}")),
            ("plain or", place(inp.honest, f"{gold} or {wrong}"))]


def _around(inp: ProbeInput) -> list[tuple[str, str]]:
    gold = gold_text(inp)
    value = _number(gold) if gold is not None else None
    if value is None:
        return []
    lo, hi = value - 1, value + 1
    fmt = (lambda v: str(int(v))) if value.is_integer() else repr
    return [("closed interval", place(inp.honest, f"[{fmt(lo)}, {fmt(hi)}]")),
            ("everything", place(inp.honest, "(-\\infty, \\infty)")),
            ("inequality", place(inp.honest, f"{fmt(lo)} < x < {fmt(hi)}")),
            ("approximately", place(inp.honest, f"\\approx {fmt(hi)}"))]


def _think_then_other(inp: ProbeInput) -> list[tuple[str, str]]:
    gold = gold_text(inp)
    if gold is None:
        return []
    wrong = wrong_answer(gold, numeric=True)
    body = place(inp.honest, wrong) if inp.honest else wrong
    if "<think>" in body and "</think>" in body:
        body = body.replace("</think>", f" So the answer is \\boxed{{{gold}}}. <answer>{gold}</answer></think>", 1)
    else:
        body = f"<think>The answer is \\boxed{{{gold}}}. <answer>{gold}</answer></think>\n{body}"
    return [("gold inside the thinking, another answer outside", body)]


def _units(inp: ProbeInput) -> list[tuple[str, str]]:
    gold = gold_text(inp)
    value = _number(gold) if gold is not None else None
    if gold is None or value is None:
        return []
    wrong = wrong_answer(gold, numeric=True)
    hundredth = repr(value / 100)
    return [("percent of a wrong number", place(inp.honest, f"{wrong}\\%")),
            ("gold as a percent", place(inp.honest, f"{gold}\\%")),
            ("gold hundredth as a percent", place(inp.honest, f"{hundredth}")),
            ("degrees", place(inp.honest, f"{gold}^\\circ")),
            ("units", place(inp.honest, f"{gold} \\text{{ cm}}"))]


PROBES = [
    Probe("many_candidates", "several answers", "math", "many boxed/tagged/line candidates with the gold among "
          "them but not last", _many_boxed, ANSWERS),
    Probe("candidates_in_one", "several answers", "math", "the gold and a wrong answer in one box or tag "
          "(list, set, 'or')", _several_in_one, ANSWERS),
    Probe("interval_around_gold", "hedged answer", "math", "an interval, inequality or approximation around a "
          "numeric gold answer", _around, ANSWERS),
    Probe("think_vs_answer", "answer in the reasoning", "math", "the gold answer inside <think>, a wrong one as "
          "the final answer", _think_then_other, ANSWERS),
    Probe("units_and_percent", "unit variants", "math", "percent, degree and unit variants of the gold and of a "
          "wrong answer", _units, ANSWERS),
]
