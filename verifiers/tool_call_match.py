"""`tool_call_match`: the tool calls in a completion against the reference calls.

Calls are read from the completion in the formats policies emit (Hermes/Qwen `<tool_call>` JSON,
OpenAI `tool_calls`, bare JSON, Python call syntax; see `_tool_calls/parsing.py`). References are a
list of `{name, arguments}` or BFCL's possible answers `[{func: {param: [allowed, ...]}}]`, where
`""` among the allowed values means the parameter may be left out.

Each (predicted, reference) pair is judged by the rules of BFCL's AST checker, restated in
`_tool_calls/bfcl.py`; `tests/test_tool_call_bfcl.py` measures the agreement with BFCL's own
checker on BFCL's data. In short:

- the function name must match exactly (or `a_b` for `a.b` with `dots_as_underscores`);
- parameters the schema marks required, and reference parameters without `""` among their
  allowed values, must be present; a parameter unknown to the schema or to the reference is wrong,
  except that a `{name, arguments}` reference (one right call, not a list of every acceptable
  parameter as BFCL's answers are) accepts an optional schema parameter it leaves out, with any
  value of that parameter's type;
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

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs, field_value
from rewardkit.verifiers._text import strip_thinking
from rewardkit.verifiers._tool_calls.bfcl import (
    NORMALIZERS,
    CallRule,
    compile_call,
    first_problem,
    names_match,
)
from rewardkit.verifiers._tool_calls.judge import Judge
from rewardkit.verifiers._tool_calls.parsing import (
    ParseError,
    parse_completion,
    parse_functions,
    parse_reference,
)
from rewardkit.verifiers._tool_calls.pool import new_pool, score_chunk


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
        "OpenAI tools). With it, required parameters, unknown parameters and types follow the schema (a "
        "{name, arguments} reference also accepts optional schema parameters it leaves out).",
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
    ignore_thinking: bool = Field(
        True, description="Drop <think>...</think> blocks of a text completion before parsing: calls written "
        "inside the reasoning are not made (an unclosed <think> runs to the end).")
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
            completion = sample.get("completion", "")
            if a.ignore_thinking and isinstance(completion, str):
                completion = strip_thinking(completion)
            preds = parse_completion(
                completion,
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
        judge = Judge(rules, preds, self._norm, a)
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
            self._pool = new_pool(workers)
            self._pool_size = workers
        chunk = -(-len(samples) // (workers * 4))
        parts = [list(samples[i : i + chunk]) for i in range(0, len(samples), chunk)]
        config = self.args.model_dump()
        out: list[Score] = []
        for scores in self._pool.map(score_chunk, [config] * len(parts), parts):
            out.extend(scores)
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None



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
