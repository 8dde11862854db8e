"""`math_equivalence`: is the completion's final answer mathematically equal to the gold answer?

The answer is extracted here (linear-time string scanning, see `_math/extract.py`); the verdict
comes from math-verify (`parse` + `verify`, with sympy under it), run in worker processes
(`_math/worker.py`, `_worker_pool.py`). That buys three things math-verify alone cannot give inside a
trainer: a per-pair time limit that holds whatever thread calls us (math-verify's `signal.alarm`
only works in the main thread), a hard kill for work stuck in C, and parallel scoring. The pool
is started on first use, reused across calls, and stopped by `close()`.
"""

from __future__ import annotations

import json
import math
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, StrictStr, model_validator

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs, field_value
from rewardkit.verifiers._extraction import renamed
from rewardkit.verifiers._math.extract import Extracted, extract_answer, gold_parse_input
from rewardkit.verifiers._text import clip, one_line, sample_text, strip_thinking
from rewardkit.verifiers._worker_pool import Task, WorkerPool

WORKER_MODULE = "rewardkit.verifiers._math.worker"


class MathEquivalenceArgs(VerifierArgs):
    """`math_equivalence` args: where the gold answer is, how the answer is extracted, the per-pair
    time limit, the worker pool, and math-verify's comparison options."""

    reference: StrictStr = Field(
        "answer", description="Data field holding the gold answer: a number, a plain string, LaTeX "
        "(with or without $...$), or a list of accepted answers. Digit commas follow one rule for gold "
        "and answer: three-digit groups are thousands separators (`1,234` = 1234), any other comma "
        "separates items (`1,2` is the list 1, 2, never 12).")
    extract: Literal["auto", "boxed", "tag", "last_number", "full"] = Field(
        "auto", description="Where the answer is taken from: `boxed` (last \\boxed{}, nested braces ok), "
        "`tag` (last <tag>...</tag>), `last_number`, `full` (math-verify searches the text "
        "itself), or `auto`: boxed, else tag, else full.")
    tag: str = Field("answer", pattern=r"^[A-Za-z][\w-]*$",
                     description="Tag name for the tag extraction (<answer>...</answer>); `answer_tag` is its "
                     "old name.")
    ignore_thinking: bool = Field(
        True, description="Drop <think>...</think> blocks before extracting: an answer inside the reasoning "
        "never counts (an unclosed <think> runs to the end).")
    tail_chars: int = Field(
        4000, gt=0, description="For `full` extraction: only the last this many characters are searched "
        "(the final answer is at the end; this bounds the cost of very long completions).")
    timeout_s: float = Field(
        5.0, gt=0, le=600, description="Time limit per gold/answer pair (parse + compare); holds in any "
        "thread. A pair still running is scored 0 (or an error, see on_timeout).")
    on_timeout: Literal["zero", "error"] = Field(
        "zero", description="What a timed-out pair counts as: `zero` (score 0 with a reason) or `error` "
        "(left to the spec's on_error policy).")
    workers: int | None = Field(
        None, ge=1, description="Most worker processes; default: the trainer's ctx.workers, else the CPU count.")
    parallel_min_batch: int = Field(
        32, ge=1, description="Batches at least this large are spread over all workers; smaller ones use "
        "one worker (starting more processes would cost more than it saves).")
    dedupe: bool = Field(
        True, description="Judge identical (gold, answer) pairs once per batch: rollouts of one prompt often "
        "agree, and a pathological answer repeated 8 times then costs one time limit, not 8.")
    memory_mb: int = Field(2048, ge=0, description="Address-space limit per worker process in MiB (0: none).")
    float_rounding: int = Field(6, ge=0, description="math-verify: decimal places floats are rounded to.")
    numeric_precision: int = Field(15, ge=1, description="math-verify: significant digits for numeric comparison.")
    strict: bool = Field(
        True, description="math-verify strict mode: variable names matter and sets do not equal tuples.")

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        return renamed(data, "math_equivalence", keys={"answer_tag": "tag"})


class MathEquivalence(Verifier):
    """1 when the extracted answer equals the gold answer according to math-verify, else 0."""

    name = "math_equivalence"
    Args = MathEquivalenceArgs
    args: MathEquivalenceArgs

    def __init__(self, args: Any = None) -> None:
        super().__init__(args)
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()

    def required_fields(self) -> list[str]:
        return [self.args.reference]

    # --- pool -------------------------------------------------------------------------------------
    def hard_deadline_s(self) -> float:
        """When the parent kills a worker: the in-worker alarm should have fired long before."""
        return self.args.timeout_s * 1.5 + 1.0

    def _get_pool(self, ctx: ScoringContext) -> WorkerPool:
        with self._pool_lock:
            if self._pool is None:
                a = self.args
                n = a.workers or ctx.workers or os.cpu_count() or 1
                options = {"float_rounding": a.float_rounding, "numeric_precision": a.numeric_precision,
                           "strict": a.strict}
                self._pool = WorkerPool(
                    WORKER_MODULE, n, deadline_s=lambda task: self.hard_deadline_s(), on_kill=_killed,
                    env={"REWARDKIT_MATH_MEMORY_MB": str(a.memory_mb),
                         "REWARDKIT_MATH_OPTIONS": json.dumps(options)})
                weakref.finalize(self, self._pool.close)
            return self._pool

    def warm_up(self, ctx: ScoringContext) -> None:
        """Start a worker (math-verify imports take seconds) with one pair that must compare equal."""
        score = self.score_batch([{"completion": "\\boxed{1}", self.args.reference: "1"}], ctx)[0]
        if score.value != 1.0:
            raise RuntimeError(f"math_equivalence could not start its workers: {score.reason}")

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # --- scoring ----------------------------------------------------------------------------------
    def _prepare(self, sample: Sample) -> tuple[list[str], Extracted] | Score:
        a = self.args
        try:
            gold = field_value(sample, a.reference, self.name)
            golds = gold if isinstance(gold, list) else [gold]
            if not golds:
                raise ValueError("gold answer list is empty")
            gold_inputs = [gold_parse_input(g) for g in golds]
        except (KeyError, ValueError) as exc:
            return Score.failed(one_line(str(exc).strip("\"'")))
        text = sample_text(sample)
        if a.ignore_thinking:
            text = strip_thinking(text)
        found = extract_answer(text, a.extract, a.tag, a.tail_chars)
        if found is None:
            return Score(0.0, _nothing_found(a.extract, a.tag))
        return gold_inputs, found

    def score_batch(self, samples: Sequence[Sample], ctx: ScoringContext) -> list[Score]:
        out: list[Score | None] = [None] * len(samples)
        tasks: list[Task] = []
        found: list[tuple[int, Extracted, int]] = []  # (sample, what was extracted, task)
        seen: dict[tuple[tuple[str, ...], str], int] = {}
        for k, sample in enumerate(samples):
            try:
                prepared = self._prepare(sample)
            except Exception as exc:  # noqa: BLE001 - one odd sample must not sink the batch
                prepared = Score.failed(one_line(f"{type(exc).__name__}: {exc}"))
            if isinstance(prepared, Score):
                out[k] = prepared
                continue
            gold_inputs, extracted = prepared
            key = (tuple(gold_inputs), extracted.parse_input)
            task_index = seen.get(key) if self.args.dedupe else None
            if task_index is None:
                task_index = seen[key] = len(tasks)
                tasks.append({"i": task_index, "g": gold_inputs, "p": extracted.parse_input, "t": self.args.timeout_s})
            found.append((k, extracted, task_index))
        if tasks:
            try:
                pool = self._get_pool(ctx)
                many = len(tasks) >= self.args.parallel_min_batch
                results = pool.run(tasks, _chunks(tasks, pool.max_workers if many else 1),
                                   pool.max_workers if many else 1)
            except Exception as exc:  # noqa: BLE001 - e.g. the workers cannot start
                results = [_killed(t, one_line(f"{type(exc).__name__}: {exc}")) for t in tasks]
            for k, extracted, task_index in found:
                out[k] = self._verdict(extracted, results[task_index], samples[k])
        return [s if s is not None else Score.failed("not scored") for s in out]

    def _verdict(self, found: Extracted, r: dict[str, Any], sample: Sample) -> Score:
        answer = clip(r.get("p") or found.text, 40)
        gold = clip(r.get("g") or str(sample.get(self.args.reference, "")), 40)
        where = f"{found.source} answer"
        if r.get("to") or r.get("killed"):
            why = (f"timed out after {self.args.timeout_s:g} s judging {where} '{clip(found.text, 40)}' "
                   f"against gold '{gold}'")
            if r.get("killed"):
                why += f" (worker {r['killed']})"
            if self.args.on_timeout == "error":
                return Score.failed(why)
            return Score(0.0, why + "; scored 0 (raise timeout_s if such answers are legitimate)")
        if r.get("ok") is None:
            return Score.failed(one_line(f"{r.get('e') or 'no verdict'}; gold field {self.args.reference!r} "
                                         f"= '{clip(str(sample.get(self.args.reference, '')), 40)}'"))
        if r.get("e"):
            return Score(0.0, one_line(f"{r['e']} in {where} '{clip(found.text, 40)}'; scored 0"))
        if r["ok"]:
            return Score(1.0, f"correct: {where} '{answer}' equals gold '{gold}'")
        if not r.get("p"):
            return Score(0.0, f"wrong: {where} '{clip(found.text, 40)}' has no math that math-verify can parse "
                         f"(gold '{gold}')")
        return Score(0.0, f"wrong: {where} '{answer}' does not equal gold '{gold}'")


def _killed(task: Task, why: str) -> dict[str, Any]:
    if why.startswith("killed"):
        return {"i": task["i"], "ok": False, "killed": why, "to": True}
    return {"i": task["i"], "ok": None, "e": f"math worker: {why}"}


def _chunks(tasks: list[Task], workers: int) -> list[list[int]]:
    """Runs of consecutive tasks, sent together: a GRPO group's samples (which share one gold answer,
    parsed once per worker) mostly land on one worker; chunks stay small enough that every worker
    gets several, so the last ones finish together."""
    size = max(1, min(8, math.ceil(len(tasks) / (4 * workers))))
    return [list(range(i, min(i + size, len(tasks)))) for i in range(0, len(tasks), size)]


def _nothing_found(mode: str, tag: str) -> str:
    return {
        "boxed": "no complete \\boxed{...} in the completion; scored 0",
        "tag": f"no <{tag}>...</{tag}> in the completion; scored 0",
        "last_number": "no number in the completion; scored 0",
    }.get(mode, "the completion is empty: no answer to check; scored 0")
