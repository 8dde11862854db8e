"""`tool_call_match`: the tool calls in a completion against the reference calls.

Calls are read from the completion in the formats policies emit (Hermes/Qwen `<tool_call>` JSON,
OpenAI `tool_calls`, bare JSON, Python call syntax; see `_tool_calls/parsing.py`). References are a
list of `{name, arguments}` or BFCL's possible answers `[{func: {param: [allowed, ...]}}]`, where
`""` among the allowed values means the parameter may be left out.

Each (predicted, reference) pair is judged by the rules of BFCL's AST checker, restated below
(`check_call`). `tests/test_tool_call_bfcl.py` measures the agreement with BFCL's own checker on
BFCL's data. In short:

- the function name must match exactly (or `a_b` for `a.b` with `dots_as_underscores`);
- parameters the schema marks required, and reference parameters without `""` among their
  allowed values, must be present; a parameter unknown to the schema or to the reference is wrong;
- types come from the schema (`string`, `integer`, `float`/`number`, `boolean`, `array`/`tuple`,
  `dict`/`object`); an integer is accepted where a float is expected; when the reference's values
  have another type than the schema says (BFCL's "variable" case), a value of the reference's type
  is compared as is. Without a schema, the type of the first allowed value is the expected type;
- strings are compared after BFCL's normalization (drop spaces and `,./-_*^`, lower-case, `'` as
  `"`) at the top level, inside top-level lists and as dict values; deeper values compare exactly;
- a dict must match one allowed dict: no unknown keys, each value among that key's allowed
  values, missing keys only where `""` is allowed; a list of dicts matches position by position;
- parallel calls are matched regardless of order, by a proper assignment (not first-fit).

Deliberate differences from BFCL, each pinned by a test in `tests/test_tool_call_bfcl.py`:
- the int-for-float allowance also applies to array items (BFCL rejects `[1, 2]` for an array
  of floats whose answer is `[1.0, 2.0]`);
- `any` means any type (BFCL treats it as `string`);
- a boolean never equals a number (Python's `True == 1` lets BFCL accept `True` for `1` inside
  lists and dicts);
- BFCL pairs parallel calls first-fit, so it can reject a correct set of calls when one call fits
  two references; the assignment here finds the pairing whenever one exists.

Modes (each mapped linearly onto `score_range`):
- `exact`: 1 when every call is right (BFCL's verdict), else 0.
- `partial`: calls are paired by a maximum-weight assignment; a same-name pair earns the share of
  its arguments that are right (right / (reference arguments + unexpected ones)); the sum is
  divided by max(#reference calls, #calls made).
- `component`: the correctness reward of ToolRL (Qian et al. 2025), which the GDPO paper uses for
  its tool-calling task, default range [-3, 3]:
  `(w_name * J(names) + sum over paired calls of (w_keys * J(keys) + w_values * #right values))
  / (w_name + sum over reference calls of (w_keys + w_values * #parameters))`, where J is the
  (multiset) Jaccard index. Two deliberate refinements over ToolRL's code: calls are paired by a
  maximum-weight assignment instead of ToolRL's greedy best-unused pick, and a value is "right" by
  the BFCL rules above (alternatives, normalized strings, int for float) instead of Python `==`.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs, field_value
from rewardkit.verifiers._tool_calls.parsing import (
    ParseError,
    RefCall,
    ToolCall,
    parse_completion,
    parse_functions,
    parse_reference,
    show,
)

Normalizer = Callable[[str], str]


class ComponentWeights(BaseModel):
    """Weights of the three parts of the `component` score (ToolRL uses 1 for each)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: float = Field(
        1.0, ge=0, description="Weight of the function-name match (multiset Jaccard of names)."
    )
    param_names: float = Field(
        1.0, ge=0, description="Weight, per reference call, of the parameter-name match (Jaccard of keys)."
    )
    param_values: float = Field(
        1.0, ge=0, description="Weight of each reference parameter whose value is right."
    )


class ToolCallMatchArgs(VerifierArgs):
    """`tool_call_match` args: where the reference calls (and optionally the function schemas) are,
    how a completion is scored against them, and how strings are compared.

    Calls are read from `<tool_call>` JSON, OpenAI `tool_calls`, bare JSON or Python call syntax;
    references are `{name, arguments}` lists or BFCL possible answers (`""` = may be omitted)."""

    reference: StrictStr = Field(
        "answer",
        description="Data field with the reference calls: a list of {name, arguments}, BFCL possible "
        "answers [{func: {param: [allowed values]}}], or a string holding either (JSON, <tool_call> "
        "text or Python call syntax).",
    )
    functions: StrictStr | None = Field(
        None,
        description="Optional data field with the function definitions (BFCL [{name, parameters}] or "
        "OpenAI tools). With it, required parameters, unknown parameters and types follow the schema.",
    )
    mode: Literal["exact", "partial", "component"] = Field(
        "exact",
        description="exact: every call right (BFCL's verdict); partial: share of calls and arguments "
        "right; component: ToolRL/GDPO weighted name + parameter-name + parameter-value score.",
    )
    score_range: tuple[float, float] | None = Field(
        None,
        description="[low, high] the score is mapped onto. Default [0, 1] for exact and partial, "
        "[-3, 3] for component (the GDPO paper's tool-calling correctness reward).",
    )
    weights: ComponentWeights = Field(default_factory=ComponentWeights, description="component mode weights.")
    string_match: Literal["bfcl", "casefold", "exact"] = Field(
        "bfcl",
        description="String comparison: bfcl drops spaces and ,./-_*^ and ignores case (BFCL's rule); "
        "casefold ignores case and surrounding spaces; exact compares as written.",
    )
    ordered: bool = Field(
        False, description="Require the calls in the reference's order (default: any order)."
    )
    dots_as_underscores: bool = Field(
        False, description="Accept 'math_factorial' for 'math.factorial' (APIs that forbid dots in names)."
    )
    python_syntax: bool = Field(True, description="Also read Python call syntax f(a=1) (parsed, never run).")
    max_calls: int = Field(64, ge=1, le=4096, description="More calls than this in one completion score low.")
    max_chars: int = Field(
        200_000, ge=1, description="Completions longer than this are not parsed and score low (bounded time)."
    )
    pool_min_batch: int | None = Field(
        None,
        ge=1,
        description="Spread batches of at least this many samples over ctx.workers processes. Off by "
        "default: judging a sample (~20 us) costs about what sending it to another process does "
        "(bench/toolcall_bench.py); worth it only for very large batches on idle cores.",
    )

    @model_validator(mode="after")
    def _range_ordered(self) -> ToolCallMatchArgs:
        if self.score_range is not None and not self.score_range[0] < self.score_range[1]:
            raise ValueError(f"score_range must be [low, high] with low < high, got {list(self.score_range)}")
        return self

    def bounds(self) -> tuple[float, float]:
        if self.score_range is not None:
            return self.score_range
        return (-3.0, 3.0) if self.mode == "component" else (0.0, 1.0)


class ToolCallMatch(Verifier):
    """The completion's tool calls against the reference calls, by BFCL's AST-checker rules (name,
    required and unknown parameters, types, normalized strings, allowed alternatives, any order):
    `exact` 0/1, `partial` share right, or `component` (ToolRL/GDPO correctness, [-3, 3])."""

    name = "tool_call_match"
    Args = ToolCallMatchArgs
    args: ToolCallMatchArgs

    def __init__(self, args: VerifierArgs | None = None) -> None:
        super().__init__(args)
        self._pool: Executor | None = None
        self._pool_size = 0
        self._norm = NORMALIZERS[self.args.string_match]
        self._bounds = self.args.bounds()
        self._plans = _PlanCache()

    def required_fields(self) -> list[str]:
        fields = [self.args.reference]
        if self.args.functions:
            fields.append(self.args.functions)
        return fields

    def _compile(self, raw_reference: Any, raw_functions: Any) -> list[CallRule]:
        refs = parse_reference(raw_reference, python_syntax=self.args.python_syntax)
        schemas = parse_functions(raw_functions) if self.args.functions else None
        return [
            compile_call(r, schemas.get(r.name) if schemas is not None else None, self._norm) for r in refs
        ]

    def score(self, sample: Sample, ctx: ScoringContext) -> Score:
        a = self.args
        try:
            try:
                raw_reference = sample[a.reference]
                raw_functions = sample[a.functions] if a.functions else None
            except KeyError:  # say which field, for which reward
                raw_reference = field_value(sample, a.reference, self.name)
                raw_functions = field_value(sample, a.functions, self.name) if a.functions else None
            rules = self._plans.get(raw_reference, raw_functions, self._compile)
        except (ParseError, KeyError) as exc:
            return Score.failed(f"bad data: {_one_line(exc)}")
        low, high = self._bounds
        try:
            preds = parse_completion(
                sample.get("completion", ""),
                python_syntax=a.python_syntax,
                max_calls=a.max_calls,
                max_chars=a.max_chars,
            )
        except ParseError as exc:
            return Score(low, f"malformed tool call: {_one_line(exc)}")
        except Exception as exc:  # noqa: BLE001 - any other parser failure is still the completion's fault
            return Score(low, f"malformed tool call ({type(exc).__name__}): {_one_line(exc)}")
        if a.mode == "exact" and len(rules) == 1 and len(preds) == 1:  # most samples: one pair
            ref, pred = rules[0], preds[0]
            problem = first_problem(pred, ref, self._norm, a.dots_as_underscores)
            if problem is None:
                return Score(high, f"{ref.name} call matches")
            named = names_match(pred.name, ref.name, a.dots_as_underscores)
            return Score(low, f"{ref.name}: {problem()}" if named else problem())
        judge = _Judge(rules, preds, self._norm, a)
        if a.mode == "exact":
            ok, reason = judge.exact()
            return Score(high if ok else low, reason)
        share, reason = judge.partial() if a.mode == "partial" else judge.component()
        return Score(low + (high - low) * share, reason)

    def score_batch(self, samples: Sequence[Sample], ctx: ScoringContext) -> list[Score]:
        workers = ctx.workers or 1
        threshold = self.args.pool_min_batch
        if workers > 1 and threshold is not None and len(samples) >= threshold:
            try:
                return self._score_in_pool(samples, workers)
            except Exception:  # noqa: BLE001 - e.g. unpicklable samples or a broken pool: score here
                self.close()
        return super().score_batch(samples, ctx)

    def _score_in_pool(self, samples: Sequence[Sample], workers: int) -> list[Score]:
        if self._pool is None or self._pool_size != workers:
            self.close()
            self._pool = _new_pool(workers)
            self._pool_size = workers
        chunk = -(-len(samples) // (workers * 4))
        parts = [list(samples[i : i + chunk]) for i in range(0, len(samples), chunk)]
        config = self.args.model_dump()
        out: list[Score] = []
        for scores in self._pool.map(_score_chunk, [config] * len(parts), parts):
            out.extend(scores)
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _new_pool(workers: int) -> Executor:
    import multiprocessing

    # forkserver: forking a trainer process that holds threads (CUDA, tokenizers) is unsafe
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))


_WORKER_VERIFIERS: dict[str, ToolCallMatch] = {}


def _score_chunk(config: dict[str, Any], samples: list[Sample]) -> list[Score]:
    key = json.dumps(config, sort_keys=True)
    verifier = _WORKER_VERIFIERS.get(key)
    if verifier is None:
        verifier = _WORKER_VERIFIERS[key] = ToolCallMatch(ToolCallMatchArgs(**config))
    return Verifier.score_batch(verifier, samples, ScoringContext())


class _PlanCache:
    """Compiled references by the identity (or, for text, the value) of the raw data fields.

    The rollouts of one group share a data row, so the same reference object comes back once per
    rollout. Entries hold the raw objects, so their ids cannot be reused while cached; callers
    must not mutate a data row in place between scoring calls (the engine never does).
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self.entries: dict[tuple[Any, Any], tuple[Any, Any, list[CallRule]]] = {}

    def get(
        self, reference: Any, functions: Any, build: Callable[[Any, Any], list[CallRule]]
    ) -> list[CallRule]:
        # text is keyed (and so compared) by value, anything else by identity
        key = (
            reference if type(reference) is str else id(reference),
            functions if functions is None or type(functions) is str else id(functions),
        )
        hit = self.entries.get(key)
        if (
            hit is not None
            and (hit[0] is reference or type(reference) is str)
            and (hit[1] is functions or type(functions) is str)
        ):
            return hit[2]
        rules = build(reference, functions)
        if len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = (reference, functions, rules)
        return rules


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text if len(text) <= 240 else text[:237] + "..."


# --------------------------------------------------------------------------- whole-completion judgment


class _Judge:
    """All the predicted calls against all the reference calls, for one sample."""

    def __init__(
        self, refs: list[CallRule], preds: list[ToolCall], norm: Normalizer, args: ToolCallMatchArgs
    ) -> None:
        self.refs, self.preds, self.norm, self.args = refs, preds, norm, args
        self._checks: dict[tuple[int, int], CallCheck] = {}
        self._valid: dict[tuple[int, int], bool] = {}

    def check(self, i: int, j: int) -> CallCheck:
        """Reference `i` against prediction `j`, every argument judged (memoized)."""
        key = (i, j)
        found = self._checks.get(key)
        if found is None:
            found = self._checks[key] = check_call(
                self.preds[j], self.refs[i], self.norm, self.args.dots_as_underscores
            )
        return found

    def valid(self, i: int, j: int) -> bool:
        """Whether prediction `j` is right for reference `i` (stops at the first problem)."""
        if self.args.ordered and i != j:
            return False
        if not names_match(self.preds[j].name, self.refs[i].name, self.args.dots_as_underscores):
            return False
        key = (i, j)
        found = self._valid.get(key)
        if found is None:
            found = self._valid[key] = (
                first_problem(self.preds[j], self.refs[i], self.norm, self.args.dots_as_underscores) is None
            )
        return found

    def exact(self) -> tuple[bool, str]:
        n_ref, n_pred = len(self.refs), len(self.preds)
        if n_ref != n_pred:
            return False, _count_reason(self.refs, self.preds)
        if n_ref == 0:
            return True, "no call expected and none made"
        if n_ref == 1:  # judge the one pair, stop at its first problem
            ref, pred = self.refs[0], self.preds[0]
            problem = first_problem(pred, ref, self.norm, self.args.dots_as_underscores)
            if problem is None:
                return True, f"{ref.name} call matches"
            named = names_match(pred.name, ref.name, self.args.dots_as_underscores)
            return False, f"{ref.name}: {problem()}" if named else problem()
        if all(self.valid(i, i) for i in range(n_ref)):  # the usual case: right, in order
            return True, "all calls match"
        unmatched = _first_unmatchable(n_ref, self.valid)
        if unmatched is None:
            return True, "all calls match"
        return False, self._explain(unmatched)

    def _explain(self, i: int) -> str:
        """Why reference `i` has no partner: the problems of its closest same-name call."""
        ref = self.refs[i]
        js = [i] if self.args.ordered else range(len(self.preds))
        candidates = [self.check(i, j) for j in js if self.check(i, j).name_ok]
        if not candidates:
            if len(self.preds) == 1 or self.args.ordered:
                return f"expected a call to {ref.name}, got {self.preds[js[0]].name}"
            made = ", ".join(p.name for p in self.preds[:6])
            return f"no call to {ref.name} (calls made: {made})"
        best = min(candidates, key=lambda c: len(c.problems))
        if not best.problems:  # right on its own, but the only partner of another reference too
            return f"{ref.name}: the one call that fits it is needed by another reference call"
        return f"{ref.name}: {best.problems[0]()}"

    def _assignment(self, weight: Callable[[int, int], float]) -> tuple[float, list[tuple[int, int]]]:
        n_ref, n_pred = len(self.refs), len(self.preds)
        if n_ref == 0 or n_pred == 0:
            return 0.0, []
        matrix = [
            [weight(i, j) if not self.args.ordered or i == j else 0.0 for j in range(n_pred)]
            for i in range(n_ref)
        ]
        pairs = _max_weight_assignment(matrix)
        return sum(matrix[i][j] for i, j in pairs), pairs

    def _same_name(self, i: int, j: int) -> bool:
        return names_match(self.preds[j].name, self.refs[i].name, self.args.dots_as_underscores)

    def partial(self) -> tuple[float, str]:
        n_ref, n_pred = len(self.refs), len(self.preds)
        if n_ref == 0 and n_pred == 0:
            return 1.0, "no call expected and none made"

        def share(i: int, j: int) -> float:
            if not self._same_name(i, j):
                return 0.0
            c = self.check(i, j)
            if c.valid:
                return 1.0
            denominator = c.n_ref_args + c.extra_args + c.unlisted_missing
            return c.ok_args / denominator if denominator else 0.0

        total, pairs = self._assignment(share)
        value = total / max(n_ref, n_pred)
        right = sum(1 for i, j in pairs if self._same_name(i, j) and self.check(i, j).valid)
        head = f"{right}/{n_ref} calls right" + (f", {n_pred} made" if n_pred != n_ref else "")
        return value, head + self._first_problem(pairs)

    def component(self) -> tuple[float, str]:
        w = self.args.weights
        name_score = _multiset_jaccard([r.name for r in self.refs], [p.name for p in self.preds])
        max_total = w.name + sum(w.param_names + w.param_values * len(r.params) for r in self.refs)

        def gain(i: int, j: int) -> float:
            if not self._same_name(i, j):
                return 0.0
            c = self.check(i, j)
            return w.param_names * c.key_jaccard + w.param_values * c.ok_args

        assigned, pairs = self._assignment(gain)
        named = [(i, j) for i, j in pairs if self._same_name(i, j)]
        total = w.name * name_score + assigned
        value = total / max_total if max_total > 0 else 1.0
        keys = sum(self.check(i, j).key_jaccard for i, j in named)
        values = sum(self.check(i, j).ok_args for i, j in named)
        n_values = sum(len(r.params) for r in self.refs)
        head = (
            f"names {name_score:.2f}, parameter names {keys:.2f}/{len(self.refs)}, values {values}/{n_values}"
        )
        if not self.preds and self.refs:
            head = "no tool call found; " + head
        return min(1.0, max(0.0, value)), head + self._first_problem(named)

    def _first_problem(self, pairs: list[tuple[int, int]]) -> str:
        named = [(i, j) for i, j in pairs if self._same_name(i, j)]
        for i, j in named:
            c = self.check(i, j)
            if c.problems:
                return f"; {self.refs[i].name}: {c.problems[0]()}"
        matched_refs = {i for i, _ in named}
        missing = [r.name for i, r in enumerate(self.refs) if i not in matched_refs]
        if missing:
            return f"; no matching call to {missing[0]}"
        matched_preds = {j for _, j in named}
        extra = [p.name for j, p in enumerate(self.preds) if j not in matched_preds]
        if extra:
            return f"; unexpected call to {extra[0]}"
        return ""


def _count_reason(refs: list[CallRule], preds: list[ToolCall]) -> str:
    made = ", ".join(p.name for p in preds[:6]) + (", ..." if len(preds) > 6 else "")
    wanted = ", ".join(r.name for r in refs[:6]) + (", ..." if len(refs) > 6 else "")
    if not preds:
        return f"no tool call found; expected {len(refs)} ({wanted})"
    if not refs:
        return f"expected no tool call, got {len(preds)} ({made})"
    return f"expected {len(refs)} call(s) ({wanted}), got {len(preds)} ({made})"


def _multiset_jaccard(a: list[str], b: list[str]) -> float:
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    ca, cb = Counter(a), Counter(b)
    shared = sum((ca & cb).values())
    return shared / (len(a) + len(b) - shared)


def _first_unmatchable(n: int, ok: Callable[[int, int], bool]) -> int | None:
    """The first row left out of a perfect bipartite matching, or None if there is one.

    Kuhn's augmenting paths: a row that cannot be augmented when its turn comes never can be,
    so the search stops there. `ok(row, col)` is asked lazily, the row's own column first, so
    that a nearly ordered answer costs few checks.
    """
    owner: list[int | None] = [None] * n

    def augment(row: int, seen: list[bool]) -> bool:
        for col in itertools.chain((row,), (c for c in range(n) if c != row)):
            if not seen[col] and ok(row, col):
                seen[col] = True
                holder = owner[col]
                if holder is None or augment(holder, seen):
                    owner[col] = row
                    return True
        return False

    for row in range(n):
        if not augment(row, [False] * n):
            return row
    return None


def _max_weight_assignment(weights: list[list[float]]) -> list[tuple[int, int]]:
    """Row/column pairs maximizing the total weight (Hungarian method, O(n^3))."""
    n_rows, n_cols = len(weights), len(weights[0])
    if n_rows == 1:
        j = max(range(n_cols), key=lambda c: weights[0][c])
        return [(0, j)]
    if n_cols == 1:
        i = max(range(n_rows), key=lambda r: weights[r][0])
        return [(i, 0)]
    transposed = n_rows > n_cols
    cost = [list(col) for col in zip(*weights, strict=True)] if transposed else weights
    n, m = len(cost), len(cost[0])
    inf = float("inf")
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    p = [0] * (m + 1)
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = -cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    pairs = [(p[j] - 1, j - 1) for j in range(1, m + 1) if p[j]]
    return sorted((b, a) for a, b in pairs) if transposed else sorted(pairs)


# --------------------------------------------------------------------------- one call against one reference

_SCHEMA_TYPES: dict[str, type] = {
    "string": str,
    "str": str,
    "integer": int,
    "int": int,
    "float": float,
    "number": float,
    "double": float,
    "boolean": bool,
    "bool": bool,
    "array": list,
    "tuple": list,
    "list": list,
    "dict": dict,
    "object": dict,
}
_JSON_NAMES = {str: "string", int: "integer", float: "float", bool: "boolean", list: "array", dict: "dict"}

_BFCL_DROP = str.maketrans("", "", " ,./-_*^")


def normalize_bfcl(text: str) -> str:
    """BFCL's string standardization: drop spaces and `,./-_*^`, lower-case, `'` -> `"`."""
    return text.translate(_BFCL_DROP).lower().replace("'", '"')


def normalize_casefold(text: str) -> str:
    """Case- and surrounding-whitespace-insensitive comparison."""
    return text.strip().casefold()


def normalize_exact(text: str) -> str:
    return text


NORMALIZERS: dict[str, Normalizer] = {
    "bfcl": normalize_bfcl,
    "casefold": normalize_casefold,
    "exact": normalize_exact,
}

Problem = Callable[[], str]
"""A problem found in a call, formatted only when a reason is shown (most never are)."""


@dataclass(slots=True)
class CallCheck:
    """The verdict on one (predicted, reference) pair.

    `ok_args` counts reference parameters judged right (an optional one left out counts as
    right); `problems` holds one actionable sentence (made on demand) per thing that is wrong.
    """

    name_ok: bool
    n_ref_args: int
    ok_args: int = 0
    problems: list[Problem] = field(default_factory=list)
    extra_args: int = 0
    unlisted_missing: int = 0
    key_jaccard: float = 0.0

    @property
    def valid(self) -> bool:
        return self.name_ok and not self.problems


@dataclass(frozen=True, slots=True)
class ParamRule:
    """One reference parameter, with what its checks need worked out once per data row."""

    name: str
    allowed: list[Any]
    omittable: bool  # `""` is among the allowed values
    expected: type | None  # from the schema, else from the allowed values; None = any type
    type_desc: str | None
    answer_type: type | None  # type of the first allowed value
    item_type: type | None  # for arrays
    variable: bool  # BFCL's "variable" case: the answers' type differs from the schema's
    strings: frozenset[str]  # the allowed strings, normalized

    def check(self, value: Any, norm: Normalizer) -> Problem | None:
        """None when `value` is acceptable, else what is wrong with it (one short clause, on demand)."""
        kind = type(value)
        expected = self.expected
        if kind is str and expected is str and not self.variable:  # the common case, first
            if norm(value) in self.strings:
                return None
            return lambda: _value_problem(value, self.allowed, norm)
        if expected is float and kind is int:
            value, kind = float(value), float
        variable = False
        if expected is not None:
            if kind is expected:
                variable = self.variable
                item_type = self.item_type
                if (
                    kind is list
                    and item_type is not None
                    and not _items_typed(value, self.allowed, item_type)
                ):
                    name = _JSON_NAMES.get(item_type, item_type.__name__)
                    return lambda: f"expected an array of {name}, got {show(value)}"
            elif kind is self.answer_type:
                variable = True
            else:
                got = _JSON_NAMES.get(kind, kind.__name__)
                return lambda: f"expected {self.type_desc}, got {got} {show(value)}"
        if variable:
            if any(same(value, a) for a in self.allowed):
                return None
        elif kind is str:
            if norm(value) in self.strings:
                return None
        elif any(_matches(value, a, self.item_type, norm) for a in self.allowed):
            return None
        return lambda: _value_problem(value, self.allowed, norm)


@dataclass(frozen=True, slots=True)
class CallRule:
    """One reference call compiled against its function's schema (if given)."""

    name: str
    params: dict[str, ParamRule]
    required: frozenset[str]  # the schema's required parameters
    known: frozenset[str] | None  # the schema's parameter names; None without a schema


def compile_call(ref: RefCall, schema: dict[str, Any] | None, norm: Normalizer) -> CallRule:
    props = schema.get("properties") if schema else None
    if not isinstance(props, dict):
        props = None
    required = schema.get("required") if schema else None
    required_set = (
        frozenset(r for r in required if isinstance(r, str)) if isinstance(required, list) else frozenset()
    )
    params = {}
    for name, allowed in ref.params.items():
        prop = props.get(name) if props is not None else None
        params[name] = _compile_param(name, allowed, prop if isinstance(prop, dict) else None, norm)
    return CallRule(ref.name, params, required_set, frozenset(props) if props is not None else None)


def _compile_param(name: str, allowed: list[Any], prop: dict[str, Any] | None, norm: Normalizer) -> ParamRule:
    answer_type = next((type(a) for a in allowed if not _is_omit(a)), None)
    type_desc = prop.get("type") if prop else None
    expected: type | None
    if isinstance(type_desc, str):
        expected = _SCHEMA_TYPES.get(type_desc)  # `any` and unknown types: no type constraint
    else:
        expected = answer_type if answer_type in _JSON_NAMES else None
        type_desc = _JSON_NAMES.get(expected) if expected else None
    return ParamRule(
        name=name,
        allowed=allowed,
        omittable=any(_is_omit(a) for a in allowed),
        expected=expected,
        type_desc=type_desc,
        answer_type=answer_type,
        item_type=_item_type(prop, allowed) if expected is list or expected is None else None,
        variable=expected is not None and answer_type is not None and answer_type is not expected,
        strings=frozenset(norm(a) for a in allowed if type(a) is str),
    )


def names_match(predicted: str, expected: str, dots_as_underscores: bool) -> bool:
    if predicted == expected:
        return True
    return dots_as_underscores and predicted == expected.replace(".", "_")


def _is_omit(value: Any) -> bool:
    return type(value) is str and value == ""


def _text(message: str) -> Problem:
    return lambda: message


def first_problem(
    pred: ToolCall, rule: CallRule, norm: Normalizer, dots_as_underscores: bool = False
) -> Problem | None:
    """The first thing wrong with `pred`, or None: `check_call` without building a verdict, for
    the hot path of exact matching (most pairs are either right or wrong early)."""
    if pred.name != rule.name and not names_match(pred.name, rule.name, dots_as_underscores):
        return _text(f"expected a call to {rule.name}, got {pred.name}")
    args = pred.arguments
    if not rule.required <= args.keys():
        missing = min(rule.required - args.keys())
        return _text(f"missing required argument {missing!r}")
    params, known = rule.params, rule.known
    for param, value in args.items():
        param_rule = params.get(param)
        if param_rule is None or (known is not None and param not in known):
            return _text(f"unexpected argument {param!r}")
        error = param_rule.check(value, norm)
        if error is not None:
            return _argument_problem(param, error)
    if len(args) != len(params):  # some reference parameters were left out: may they be?
        for param, param_rule in params.items():
            if param not in args and not (param_rule.omittable and param not in rule.required):
                return _missing_problem(param, param_rule.allowed)
    return None


def check_call(
    pred: ToolCall, rule: CallRule, norm: Normalizer, dots_as_underscores: bool = False
) -> CallCheck:
    """Judge `pred` against the compiled reference call `rule`."""
    params = rule.params
    n_ref = len(params)
    if not names_match(pred.name, rule.name, dots_as_underscores):
        return CallCheck(False, n_ref, problems=[_text(f"expected a call to {rule.name}, got {pred.name}")])
    check = CallCheck(True, n_ref)
    problems = check.problems
    args = pred.arguments
    if not rule.required <= args.keys():
        for param in sorted(rule.required - args.keys()):
            problems.append(_text(f"missing required argument {param!r}"))
            if param not in params:
                check.unlisted_missing += 1
    known = rule.known
    for param, value in args.items():
        param_rule = params.get(param)
        if param_rule is None or (known is not None and param not in known):
            problems.append(_text(f"unexpected argument {param!r}"))
            check.extra_args += 1
            continue
        error = param_rule.check(value, norm)
        if error is None:
            check.ok_args += 1
        else:
            problems.append(_argument_problem(param, error))
    if len(args) - check.extra_args == n_ref:  # every reference parameter was given
        ref_keys = n_ref
    else:
        ref_keys = 0
        for param, param_rule in params.items():
            if param in args:
                ref_keys += 1
            elif param_rule.omittable and param not in rule.required:
                check.ok_args += 1
            else:
                ref_keys += 1
                if param not in rule.required:
                    problems.append(_missing_problem(param, param_rule.allowed))
    shared = len(args) - check.extra_args
    union = ref_keys + check.extra_args + check.unlisted_missing  # required by the schema, not given
    check.key_jaccard = shared / union if union else 1.0
    return check


def _argument_problem(param: str, error: Problem) -> Problem:
    return lambda: f"argument {param!r}: {error()}"


def _missing_problem(param: str, allowed: list[Any]) -> Problem:
    return lambda: f"missing argument {param!r} (expected {expect(allowed)})"


def _value_problem(value: Any, allowed: list[Any], norm: Normalizer) -> str:
    detail = _dict_detail(value, allowed, norm) if type(value) is dict else ""
    return detail or f"expected {expect(allowed)}, got {show(value)}"


def _item_type(prop: dict[str, Any] | None, allowed: list[Any]) -> type | None:
    if prop is not None:
        items = prop.get("items")
        if isinstance(items, dict) and isinstance(items.get("type"), str):
            return _SCHEMA_TYPES.get(items["type"])
        return None
    for entry in allowed:
        if type(entry) is list and entry:
            first = type(entry[0])
            return first if first in (dict, list) else None
    return None


def _items_typed(value: list[Any], allowed: list[Any], item_type: type) -> bool:
    """BFCL's one-level check of array item types (an int is also accepted for a float)."""
    for entry in allowed:
        if type(entry) is not list:
            return True  # BFCL skips the item check when `""` (or a non-list) is allowed
        inner = next((type(x) for x in entry if not _is_omit(x)), None)
        if all(
            type(v) is item_type or type(v) is inner or (item_type is float and type(v) is int) for v in value
        ):
            return True
    return False


def _matches(value: Any, entry: Any, item_type: type | None, norm: Normalizer) -> bool:
    kind = type(value)
    if type(entry) is str and entry == "":
        if kind is list:
            return not value  # BFCL: an empty list stands for a parameter left out
        return kind is str and norm(value) == ""
    if kind is str:
        return type(entry) is str and norm(value) == norm(entry)
    if kind is dict:
        return type(entry) is dict and dict_matches(value, entry, norm)
    if kind is list:
        if type(entry) is not list or len(entry) != len(value):
            return False
        if item_type is dict or (item_type is None and entry and all(type(e) is dict for e in entry)):
            return all(
                type(v) is dict and type(e) is dict and dict_matches(v, e, norm)
                for v, e in zip(value, entry, strict=True)
            )
        return all(_top_item_equal(v, e, norm) for v, e in zip(value, entry, strict=True))
    return same(value, entry)


def _top_item_equal(value: Any, entry: Any, norm: Normalizer) -> bool:
    if type(value) is str:
        return type(entry) is str and norm(value) == norm(entry)
    return same(value, entry)


def dict_matches(value: dict[Any, Any], entry: dict[Any, Any], norm: Normalizer) -> bool:
    """`value` against one allowed dict whose values are lists of allowed values."""
    for key, item in value.items():
        if key not in entry:
            return False
        options = entry[key] if type(entry[key]) is list else [entry[key]]
        if not any(_top_item_equal(item, option, norm) for option in options):
            return False
    for key, options in entry.items():
        if key not in value and not (type(options) is list and any(_is_omit(o) for o in options)):
            return False
    return True


def _dict_detail(value: dict[Any, Any], allowed: list[Any], norm: Normalizer) -> str:
    """Name the first key that differs from the first allowed dict (for an actionable reason)."""
    entry = next((e for e in allowed if type(e) is dict), None)
    if entry is None:
        return ""
    for key, item in value.items():
        if key not in entry:
            return f"unexpected key {show(key, 30)}"
        options = entry[key] if type(entry[key]) is list else [entry[key]]
        if not any(_top_item_equal(item, option, norm) for option in options):
            return f"key {show(key, 30)}: expected {expect(options)}, got {show(item)}"
    for key, options in entry.items():
        if key not in value and not (type(options) is list and any(_is_omit(o) for o in options)):
            return f"missing key {show(key, 30)}"
    return ""


def same(a: Any, b: Any) -> bool:
    """Structural equality where numbers compare by value but booleans only equal booleans."""
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta in (int, float) and tb in (int, float):
        return bool(a == b)
    if ta is not tb:
        return False
    if ta is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def expect(allowed: list[Any]) -> str:
    """'celsius' | one of 'celsius', 'c' | ... (or omitted)."""
    real = [a for a in allowed if not _is_omit(a)]
    optional = len(real) < len(allowed)
    if not real:
        return "it left out"
    text = show(real[0]) if len(real) == 1 else "one of " + ", ".join(show(a, 30) for a in real[:4])
    if len(real) > 4:
        text += ", ..."
    return text + (" (or omitted)" if optional else "")
