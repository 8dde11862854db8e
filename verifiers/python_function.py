"""`python`: a user's own function `module:function` as a verifier, for rewards no built-in covers.

The function receives one sample (a dict) and returns a number, a `(number, reason)` pair, or a
`rewardkit.Score`. It runs in the caller's process, so it is for trusted reward code, not for
executing the model's output (use `code_tests` for that)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs


class PythonFunctionArgs(VerifierArgs):
    function: str = Field(description="'module:function' importable from the working directory or sys.path.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra keyword arguments passed to the function.")

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
    name = "python"
    Args = PythonFunctionArgs
    args: PythonFunctionArgs

    def __init__(self, args: PythonFunctionArgs | None = None) -> None:
        super().__init__(args)
        self._func = _load(self.args.function)

    def score(self, sample: Sample, ctx: ScoringContext) -> Score:
        result = self._func(sample, **self.args.kwargs)
        if isinstance(result, Score):
            return result
        if isinstance(result, tuple) and len(result) == 2:
            return Score(float(result[0]), str(result[1]))
        return Score(float(result), f"{self.args.function} returned {result!r}")
