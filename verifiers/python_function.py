"""`python`: a user's own function `module:function` as a verifier, for rewards no built-in covers.

The function receives one sample (a dict) and returns a number, a `(number, reason)` pair, or a
`rewardkit.Score`. It is for trusted reward code, not for executing the model's output (use
`code_tests` for that). By default it runs in worker processes (`_python_worker.py`) with a time
limit per sample: a function that hangs or crashes the interpreter on one completion costs that
sample an error, and the worker is killed and replaced. `in_process: true` calls it in the
caller's process instead (for functions that hold state that cannot be re-imported); then only
the reward's `timeout_s` bounds it, and stuck work cannot be killed.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field, field_validator

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs
from rewardkit.verifiers._worker_pool import Task, WorkerPool

WORKER_MODULE = "rewardkit.verifiers._python_worker"


class PythonFunctionArgs(VerifierArgs):
    function: str = Field(description="'module:function' importable from the working directory or sys.path.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra keyword arguments passed to the function "
                                   "(JSON values).")
    timeout_s: float = Field(10.0, gt=0, le=3600, description="Time limit per sample; past it the worker is killed "
                             "and the sample is an error (worker processes only).")
    workers: int | None = Field(None, ge=1, description="Worker processes; default: the trainer's ctx.workers, "
                                "else min(4, CPU count).")
    in_process: bool = Field(False, description="Call the function in the caller's process (no per-sample limit; "
                             "the reward's timeout_s still bounds each batch).")

    @field_validator("function")
    @classmethod
    def _importable(cls, value: str) -> str:
        _load(value)
        return value


def _load(path: str) -> Callable[..., Any]:
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'module:function', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from exc
    func = getattr(module, attr, None)
    if not callable(func):
        raise ValueError(f"{module_name!r} has no function {attr!r}")
    return func


class PythonFunction(Verifier):
    """A user's function `module:function` as a verifier, in killable worker processes."""

    name = "python"
    Args = PythonFunctionArgs
    args: PythonFunctionArgs

    def __init__(self, args: PythonFunctionArgs | None = None) -> None:
        super().__init__(args)
        self._func = _load(self.args.function)
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()

    def score(self, sample: Sample, ctx: ScoringContext) -> Score:
        return _to_score(self._func(sample, **self.args.kwargs), self.args.function)

    def score_batch(self, samples: Sequence[Sample], ctx: ScoringContext) -> list[Score]:
        if self.args.in_process:
            return super().score_batch(samples, ctx)
        out: list[Score | None] = [None] * len(samples)
        tasks: list[Task] = []
        where: list[int] = []
        for k, sample in enumerate(samples):
            try:
                json.dumps(sample, allow_nan=False)
            except (TypeError, ValueError) as exc:
                out[k] = Score.failed(f"the sample cannot be sent to the worker process: {exc} "
                                      "(in_process: true takes any value)")
                continue
            tasks.append({"i": len(tasks), "s": sample})
            where.append(k)
        if tasks:
            try:
                pool = self._get_pool(ctx)
                chunk = max(1, min(8, len(tasks) // (2 * pool.max_workers) or 1))
                chunks = [list(range(i, min(i + chunk, len(tasks)))) for i in range(0, len(tasks), chunk)]
                results = pool.run(tasks, chunks, pool.max_workers)
            except Exception as exc:  # noqa: BLE001 - e.g. the workers cannot start
                results = [{"i": t["i"], "e": f"python worker: {type(exc).__name__}: {exc}"} for t in tasks]
            for k, result in zip(where, results, strict=True):
                out[k] = self._result(result)
        return [s if s is not None else Score.failed("not scored") for s in out]

    def _result(self, r: dict[str, Any]) -> Score:
        if "killed" in r:
            return Score.failed(f"{self.args.function} ran past timeout_s={self.args.timeout_s:g} s on this "
                                f"sample; its worker was {r['killed']}")
        if "e" in r:
            return Score.failed(str(r["e"]))
        value = float(r.get("v", math.nan))
        return Score(value, str(r.get("r", "")))

    def _get_pool(self, ctx: ScoringContext) -> WorkerPool:
        with self._lock:
            if self._pool is None:
                n = self.args.workers or ctx.workers or min(4, os.cpu_count() or 1)
                env = {"REWARDKIT_PY_FUNCTION": self.args.function, "REWARDKIT_PY_KWARGS": json.dumps(self.args.kwargs),
                       "PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p)}
                self._pool = WorkerPool(WORKER_MODULE, n, deadline_s=lambda task: self.args.timeout_s,
                                        on_kill=_killed, env=env)
                weakref.finalize(self, self._pool.close)
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def _killed(task: Task, why: str) -> dict[str, Any]:
    if why.startswith("killed"):
        return {"i": task["i"], "killed": why}
    return {"i": task["i"], "e": f"python worker: {why}"}


def _to_score(result: Any, path: str) -> Score:
    if isinstance(result, Score):
        return result
    if isinstance(result, tuple) and len(result) == 2:
        return Score(float(result[0]), str(result[1]))
    return Score(float(result), f"{path} returned {result!r}")
