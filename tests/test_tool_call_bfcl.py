"""tool_call_match on BFCL's own data, with BFCL's own AST checker as the oracle.

The `bfcl-eval` package ships BFCL's test cases (`data/BFCL_v4_*.json`) and their possible
answers (`data/possible_answer/`). From them this module builds:

- ground-truth completions: allowed combinations of each entry's possible answers (all of them
  when there are at most `COMBOS_PER_ENTRY`, else a seeded sample), which must all score 1;
- perturbed completions (wrong name, missing required argument, extra argument, wrong type,
  wrong value, calls reordered, ...), whose verdict must equal BFCL's `ast_checker` verdict.

Completions are rendered as text in the formats policies emit (Hermes `<tool_call>` JSON, Python
call syntax, an OpenAI `tool_calls` message, a bare JSON list), so the parser is exercised too,
while BFCL's checker receives the same calls already decoded.

Documented disagreements (each asserted below, by kind, so a new one fails the test):
- `bfcl_first_fit`: BFCL pairs parallel calls first-fit, in reference order. When one predicted
  call fits two reference calls (e.g. two calls of one function where an argument may be left
  out), BFCL can give a correct, merely reordered answer 0; we find the assignment and give 1.
- `int_items_for_float`: not generated here (BFCL's data never expects it); pinned separately
  in `test_documented_difference_*` tests, like `any` and booleans-vs-numbers.

`pair_sets()` is also used by `bench/toolcall_bench.py` to time both checkers on the same pairs.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import random
import sys
import time
import types
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rewardkit.verifier import ScoringContext
from rewardkit.verifiers.tool_call_match import ToolCallMatch, ToolCallMatchArgs

CATEGORIES = [
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
]
COMBOS_PER_ENTRY = 24
ORACLE_MODEL = "gorilla-openfunctions-v2"  # a BFCL model config that keeps dots in function names
FORMATS = ("hermes", "python", "openai", "json")


def bfcl_data_dir() -> Path | None:
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data"
    return path if (path / "possible_answer").is_dir() else None


def load_bfcl_checker() -> Any:
    """BFCL's `ast_checker` and its `Language` enum.

    Importing it imports every BFCL model handler; one of them (qwen_agent) imports the audio
    library `soundfile`, which the AST checker never uses. When that library is not installed we
    register an empty stand-in module for it so that the import succeeds; the checker itself runs
    unmodified.
    """
    if importlib.util.find_spec("soundfile") is None and "soundfile" not in sys.modules:
        sys.modules["soundfile"] = types.ModuleType("soundfile")
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    return ast_checker, Language


@dataclass
class Entry:
    id: str
    category: str
    functions: list[dict[str, Any]]
    ground_truth: list[dict[str, dict[str, list[Any]]]]


@dataclass
class Pair:
    entry: Entry
    kind: str  # "ground_truth" or the perturbation's name
    calls: list[dict[str, dict[str, Any]]]  # BFCL's decoded form: [{name: {param: value}}]
    completion: Any  # the same calls rendered as a policy would write them


def load_entries(data_dir: Path) -> list[Entry]:
    entries = []
    for category in CATEGORIES:
        with open(data_dir / f"BFCL_v4_{category}.json", encoding="utf-8") as f:
            prompts = [json.loads(line) for line in f]
        with open(data_dir / "possible_answer" / f"BFCL_v4_{category}.json", encoding="utf-8") as f:
            answers = {a["id"]: a["ground_truth"] for a in map(json.loads, f)}
        for p in prompts:
            entries.append(Entry(p["id"], category, p["function"], answers[p["id"]]))
    return entries


# --------------------------------------------------------------------------- building calls


def _schema(entry: Entry, name: str) -> dict[str, Any]:
    for f in entry.functions:
        if f["name"] == name:
            return f["parameters"]
    return {}


def _concrete(value: Any, prop: dict[str, Any], rng: random.Random) -> Any:
    """One concrete value from an allowed value (dicts in BFCL answers hold lists of options)."""
    kind = prop.get("type")
    if kind == "dict" and isinstance(value, dict):
        out = {}
        for key, options in value.items():
            choice = rng.choice(options) if isinstance(options, list) and options else options
            if choice != "":
                out[key] = choice
        return out
    items = prop.get("items", {}) if isinstance(prop.get("items"), dict) else {}
    if kind == "array" and items.get("type") == "dict" and isinstance(value, list):
        return [_concrete(v, {"type": "dict"}, rng) for v in value]
    return value


def _call_choices(call: dict[str, dict[str, list[Any]]]) -> tuple[str, list[str], list[list[Any]]]:
    ((name, params),) = call.items()
    return name, list(params), [list(options) for options in params.values()]


def ground_truth_combos(entry: Entry, rng: random.Random, limit: int = COMBOS_PER_ENTRY) -> list[list[dict]]:
    """Allowed answers: every combination when few, else `limit` sampled ones (first one included)."""
    per_call = [_call_choices(c) for c in entry.ground_truth]
    flat = [options for _, _, options_list in per_call for options in options_list]
    total = 1
    for options in flat:
        total *= max(1, len(options))
    if total <= limit:
        picks = list(itertools.product(*flat))
    else:
        picks = [tuple(o[0] for o in flat)]
        picks += [tuple(rng.choice(o) for o in flat) for _ in range(limit - 1)]
    combos = []
    for pick in picks:
        it = iter(pick)
        calls = []
        for name, params, _ in per_call:
            schema = _schema(entry, name).get("properties", {})
            args = {}
            for param in params:
                value = next(it)
                if value != "":
                    args[param] = _concrete(value, schema.get(param, {}), rng)
            calls.append({name: args})
        combos.append(calls)
    return combos


_WRONG_TYPE = {
    "string": 42,
    "integer": "7",
    "float": "1.5",
    "boolean": "true",
    "array": "not a list",
    "tuple": "not a list",
    "dict": "not a dict",
    "any": [1, 2],
}


def _wrong_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 1.25
    if isinstance(value, str):
        return value + " extra"
    if isinstance(value, list):
        return value[1:] if value else ["extra"]
    if isinstance(value, dict):
        return {**value, "unexpected_key": "x"}
    return "changed"


def _sample_value(prop: dict[str, Any]) -> Any:
    return {
        "string": "abc",
        "integer": 3,
        "float": 2.5,
        "boolean": True,
        "array": ["a"],
        "dict": {"k": "v"},
    }.get(prop.get("type", "string"), "abc")


def perturbations(entry: Entry, base: list[dict], rng: random.Random) -> list[tuple[str, list[dict]]]:
    """Systematic mistakes on a correct answer, one of each kind that applies to this entry."""
    out: list[tuple[str, list[dict]]] = []
    k = rng.randrange(len(base))
    ((name, args),) = base[k].items()
    schema = _schema(entry, name)
    props = schema.get("properties", {})
    required = [p for p in schema.get("required", []) if p in args]
    present = list(args)

    def with_call(new_call: dict) -> list[dict]:
        calls = copy.deepcopy(base)
        calls[k] = new_call
        return calls

    if len(base) >= 2:
        out.append(("reordered", list(reversed(copy.deepcopy(base)))))
        shuffled = copy.deepcopy(base)
        rng.shuffle(shuffled)
        out.append(("shuffled", shuffled))
        out.append(("call_dropped", copy.deepcopy(base[:k] + base[k + 1 :])))
    out.append(("call_duplicated", copy.deepcopy(base + [base[k]])))
    out.append(("wrong_name", with_call({name + "_v2": copy.deepcopy(args)})))
    others = [f["name"] for f in entry.functions if f["name"] != name]
    if others:
        out.append(("other_function", with_call({rng.choice(others): copy.deepcopy(args)})))
    if "." in name:
        out.append(("dots_as_underscores", with_call({name.replace(".", "_"): copy.deepcopy(args)})))
    if required:
        p = rng.choice(required)
        out.append(("missing_required", with_call({name: {q: v for q, v in args.items() if q != p}})))
    optional_present = [p for p in present if p not in required]
    if optional_present:
        p = rng.choice(optional_present)
        out.append(("optional_dropped", with_call({name: {q: v for q, v in args.items() if q != p}})))
    out.append(("extra_unknown_arg", with_call({name: {**args, "verbose_mode": True}})))
    unused = [p for p in props if p not in args]
    if unused:
        p = rng.choice(unused)
        out.append(("extra_schema_arg", with_call({name: {**args, p: _sample_value(props[p])}})))
    if present:
        p = rng.choice(present)
        ptype = props.get(p, {}).get("type", "string")
        out.append(("wrong_type", with_call({name: {**args, p: _WRONG_TYPE.get(ptype, 42)}})))
        out.append(("wrong_value", with_call({name: {**args, p: _wrong_value(args[p])}})))
    strings = [p for p in present if isinstance(args[p], str) and args[p].swapcase() != args[p]]
    if strings:
        p = rng.choice(strings)
        out.append(("case_changed", with_call({name: {**args, p: args[p].swapcase()}})))
        out.append(("punctuation_changed", with_call({name: {**args, p: args[p].replace(" ", "-") + "."}})))
    floats = [
        p for p in present if isinstance(args[p], float) and args[p].is_integer() and abs(args[p]) < 1e15
    ]
    if floats:
        p = rng.choice(floats)
        out.append(("int_for_float", with_call({name: {**args, p: int(args[p])}})))
    lists = [p for p in present if isinstance(args[p], list) and len(args[p]) >= 2]
    if lists:
        p = rng.choice(lists)
        out.append(("list_reordered", with_call({name: {**args, p: list(reversed(args[p]))}})))
    return out


def render(calls: list[dict], fmt: str) -> Any:
    """The calls as a policy would write them."""
    plain = [{"name": n, "arguments": a} for call in calls for n, a in call.items()]
    if fmt == "hermes":
        return "\n".join(f"<tool_call>\n{json.dumps(c, ensure_ascii=False)}\n</tool_call>" for c in plain)
    if fmt == "python":
        parts = [f"{c['name']}({', '.join(f'{k}={v!r}' for k, v in c['arguments'].items())})" for c in plain]
        return "[" + ", ".join(parts) + "]"
    if fmt == "openai":
        tool_calls = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
            }
            for i, c in enumerate(plain)
        ]
        return [{"role": "assistant", "content": None, "tool_calls": tool_calls}]
    return json.dumps(plain)


def unsatisfiable(entry: Entry) -> bool:
    """A parameter with no allowed value at all (not even `""`): no answer can be right.

    BFCL v4 has a few (live_simple_106-63-0, live_simple_112-68-0); both checkers reject every
    answer to them, so they are left out of the generated pairs.
    """
    return any(
        not options for call in entry.ground_truth for params in call.values() for options in params.values()
    )


def consistent(entry: Entry, calls: list[dict]) -> bool:
    """Whether an allowed combination obeys the entry's own function definitions.

    A few possible answers contradict their schema: a parameter the schema does not define
    (parallel_multiple_12 `permeability`, live_multiple_862-181-3 `journey_start_time`, ...), or
    `""` (may be omitted) on a parameter the schema requires (simple_python_17 `formatted`,
    parallel_88 `initial_velocity`, ...). BFCL's checker rejects those combinations, and so do we;
    they are compared with BFCL as kind `answer_contradicts_schema` instead of counted as truth.
    """
    for call in calls:
        ((name, args),) = call.items()
        schema = _schema(entry, name)
        if not set(args) <= set(schema.get("properties", {})) or not set(schema.get("required", [])) <= set(
            args
        ):
            return False
    return True


def pair_sets(seed: int = 0, combos_per_entry: int = COMBOS_PER_ENTRY) -> tuple[list[Pair], list[Pair]]:
    """(ground-truth pairs, perturbed pairs) over all Python AST categories of BFCL."""
    data_dir = bfcl_data_dir()
    if data_dir is None:
        return [], []
    rng = random.Random(seed)
    truth, perturbed = [], []
    n = 0
    for entry in load_entries(data_dir):
        if unsatisfiable(entry):
            continue
        combos = ground_truth_combos(entry, rng, combos_per_entry)
        for calls in combos:
            kind = "ground_truth" if consistent(entry, calls) else "answer_contradicts_schema"
            (truth if kind == "ground_truth" else perturbed).append(
                Pair(entry, kind, calls, render(calls, FORMATS[n % len(FORMATS)]))
            )
            n += 1
        usable = [c for c in combos if consistent(entry, c)] or combos
        for kind, calls in perturbations(entry, rng.choice(usable), rng):
            perturbed.append(Pair(entry, kind, calls, render(calls, FORMATS[n % len(FORMATS)])))
            n += 1
    return truth, perturbed


def sample_of(pair: Pair) -> dict[str, Any]:
    """The row a spec would score: completion, reference field, function definitions."""
    return {
        "completion": pair.completion,
        "answer": pair.entry.ground_truth,
        "functions": pair.entry.functions,
    }


def bfcl_verdict(checker: Any, language: Any, pair: Pair) -> bool | None:
    """BFCL's verdict on the decoded calls (None if BFCL's checker itself crashes)."""
    try:
        result = checker(
            pair.entry.functions,
            copy.deepcopy(pair.calls),
            pair.entry.ground_truth,
            language.PYTHON,
            pair.entry.category,
            ORACLE_MODEL,
        )
    except Exception:  # noqa: BLE001 - some malformed inputs crash BFCL's checker
        return None
    return bool(result["valid"])


# --------------------------------------------------------------------------- fixtures

pytestmark = pytest.mark.skipif(
    bfcl_data_dir() is None, reason="bfcl-eval is not installed (pip install bfcl-eval)"
)


@pytest.fixture(scope="module")
def pairs() -> tuple[list[Pair], list[Pair]]:
    return pair_sets()


@pytest.fixture(scope="module")
def oracle() -> Any:
    return load_bfcl_checker()


@pytest.fixture(scope="module")
def exact() -> ToolCallMatch:
    return ToolCallMatch(ToolCallMatchArgs(reference="answer", functions="functions", mode="exact"))


# --------------------------------------------------------------------------- tests


def test_every_ground_truth_answer_scores_one(
    pairs: tuple[list[Pair], list[Pair]], exact: ToolCallMatch
) -> None:
    truth, _ = pairs
    assert len(truth) > 9000
    assert {p.entry.category for p in truth} == set(CATEGORIES)
    scores = exact.score_batch([sample_of(p) for p in truth], ScoringContext())
    bad = [(p.entry.id, s.reason, p.calls) for p, s in zip(truth, scores, strict=True) if s.value != 1.0]
    assert not bad, f"{len(bad)} ground-truth answers did not score 1, e.g. {bad[:3]}"


def test_bfcl_accepts_the_same_ground_truth(pairs: tuple[list[Pair], list[Pair]], oracle: Any) -> None:
    """The fixture is sound: BFCL's own checker accepts every ground-truth combination (in order)."""
    truth, _ = pairs
    checker, language = oracle
    rejected = [p.entry.id for p in truth if bfcl_verdict(checker, language, p) is not True]
    assert not rejected, f"BFCL rejects {len(rejected)} ground-truth combinations, e.g. {rejected[:5]}"


def classify(pair: Pair, ours: bool, theirs: bool, oracle: Any) -> str:
    """Why our verdict differs from BFCL's; 'unexplained' fails the test."""
    checker, language = oracle
    if ours and not theirs and len(pair.calls) > 1:
        # BFCL pairs calls first-fit: does BFCL accept the very same calls in another order?
        for order in itertools.islice(itertools.permutations(pair.calls), 720):
            if bfcl_verdict(checker, language, Pair(pair.entry, pair.kind, list(order), None)):
                return "bfcl_first_fit"
    return "unexplained"


def test_verdicts_agree_with_bfcl(
    pairs: tuple[list[Pair], list[Pair]], oracle: Any, exact: ToolCallMatch
) -> None:
    """Ground truth and perturbations together: our verdict against BFCL's checker, pair by pair."""
    truth, perturbed = pairs
    every = truth + perturbed
    checker, language = oracle
    start = time.perf_counter()
    ours = exact.score_batch([sample_of(p) for p in every], ScoringContext())
    theirs = [bfcl_verdict(checker, language, p) for p in every]
    compared = [(p, s.value == 1.0, t) for p, s, t in zip(every, ours, theirs, strict=True) if t is not None]
    crashed = len(every) - len(compared)
    disagreements = [(p, o, t) for p, o, t in compared if o != t]
    reasons = Counter(classify(p, o, t, oracle) for p, o, t in disagreements)
    by_kind = Counter((p.kind, t) for p, _, t in compared)
    report = (
        f"{len(compared)} pairs compared ({crashed} where BFCL's checker raised), "
        f"{len(compared) - len(disagreements)} agreements, {len(disagreements)} disagreements {dict(reasons)}, "
        f"agreement {1 - len(disagreements) / len(compared):.4%} ({time.perf_counter() - start:.1f} s)\n"
        + "\n".join(
            f"  {kind:<26} bfcl says {'right' if t else 'wrong'}: {n}"
            for (kind, t), n in sorted(by_kind.items())
        )
        + "".join(f"\n  disagreement {p.entry.id} {p.kind}: ours={o} bfcl={t}" for p, o, t in disagreements)
    )
    print(report)
    assert len(compared) >= 2000, report
    assert reasons.get("unexplained", 0) == 0, report
    assert len(disagreements) / len(compared) < 0.001, report
    # each kind of mistake really was made, and BFCL rejects it (a changed value can hit another allowed one)
    for kind in (
        "wrong_name",
        "missing_required",
        "extra_unknown_arg",
        "wrong_type",
        "wrong_value",
        "call_dropped",
    ):
        assert by_kind[(kind, False)] > 50 and by_kind[(kind, True)] <= by_kind[(kind, False)] // 100, (
            kind,
            report,
        )
    for kind in ("reordered", "case_changed", "int_for_float"):
        assert by_kind[(kind, True)] > 50, (kind, report)


@pytest.mark.parametrize(("mode", "top"), [("component", 3.0), ("partial", 1.0)])
def test_graded_modes_give_full_marks_exactly_when_exact_does(
    pairs: tuple[list[Pair], list[Pair]], exact: ToolCallMatch, mode: str, top: float
) -> None:
    """On every BFCL pair: full marks in `component` / `partial` if and only if `exact` says right,
    and mistakes still earn graded credit (the point of those modes)."""
    truth, perturbed = pairs
    every = truth + perturbed
    samples = [sample_of(p) for p in every]
    verdicts = [s.value == 1.0 for s in exact.score_batch(samples, ScoringContext())]
    graded = ToolCallMatch(ToolCallMatchArgs(reference="answer", functions="functions", mode=mode))
    values = [s.value for s in graded.score_batch(samples, ScoringContext())]
    mismatched = [
        (p.entry.id, p.kind, v) for p, v, ok in zip(every, values, verdicts, strict=True) if (v == top) != ok
    ]
    assert not mismatched, mismatched[:5]
    wrong = [v for v, ok in zip(values, verdicts, strict=True) if not ok]
    assert len(set(wrong)) > 20  # many distinct levels of partial credit among the wrong answers


# --------------------------------------------------------------------------- documented differences
# Each test shows BFCL's verdict (from its checker) next to ours, on a minimal case.


def _both(
    oracle: Any, functions: list[dict], calls: list[dict], answer: list[dict], category: str
) -> tuple[bool, float]:
    checker, language = oracle
    theirs = checker(functions, copy.deepcopy(calls), answer, language.PYTHON, category, ORACLE_MODEL)[
        "valid"
    ]
    verifier = ToolCallMatch(ToolCallMatchArgs(functions="functions"))
    plain = [{"name": n, "arguments": a} for call in calls for n, a in call.items()]
    sample = {"completion": json.dumps(plain), "answer": answer, "functions": functions}
    return theirs, verifier.score_batch([sample], ScoringContext())[0].value


def _function(name: str, props: dict[str, Any], required: list[str]) -> list[dict]:
    return [{"name": name, "parameters": {"type": "dict", "properties": props, "required": required}}]


def test_documented_difference_first_fit_pairing(oracle: Any) -> None:
    """BFCL pairs parallel calls first-fit in reference order; the first reference takes the
    call that only the second reference could use, so BFCL rejects a correct answer."""
    fn = _function("g", {"a": {"type": "integer"}, "b": {"type": "integer"}}, ["a"])
    answer = [{"g": {"a": [1], "b": ["", 2]}}, {"g": {"a": [1], "b": [2]}}]
    calls = [{"g": {"a": 1, "b": 2}}, {"g": {"a": 1}}]
    assert _both(oracle, fn, calls, answer, "parallel") == (False, 1.0)
    assert _both(oracle, fn, calls[::-1], answer, "parallel") == (True, 1.0)


def test_documented_difference_int_items_for_float_arrays(oracle: Any) -> None:
    """BFCL accepts an int for a float, but not inside an array."""
    fn = _function("f", {"xs": {"type": "array", "items": {"type": "float"}}}, ["xs"])
    assert _both(oracle, fn, [{"f": {"xs": [1, 2]}}], [{"f": {"xs": [[1.0, 2.0]]}}], "simple_python") == (
        False,
        1.0,
    )


def test_documented_difference_any_is_any_type(oracle: Any) -> None:
    """BFCL maps the schema type `any` to `string`."""
    fn = _function("f", {"x": {"type": "any"}}, ["x"])
    assert _both(oracle, fn, [{"f": {"x": 5}}], [{"f": {"x": ["five", 5]}}], "simple_python") == (False, 1.0)


def test_documented_difference_booleans_are_not_numbers(oracle: Any) -> None:
    """Inside a dict BFCL compares with Python's `==`, where `True == 1`."""
    fn = _function("f", {"d": {"type": "dict", "properties": {"k": {"type": "integer"}}}}, ["d"])
    assert _both(oracle, fn, [{"f": {"d": {"k": True}}}], [{"f": {"d": [{"k": [1]}]}}], "simple_python") == (
        True,
        0.0,
    )
