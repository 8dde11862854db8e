"""`trl_reward`: an existing TRL reward function, `f(completions, **kwargs) -> list[float | None]`,
as a verifier, unchanged (TRL's own `trl.rewards` functions or the ones a user wrote for
`GRPOTrainer`).

The function is called once per batch the way `GRPOTrainer` calls it: `prompts`, `completions`
(strings, or for chat samples TRL's conversational form `[{"role": "assistant", "content": ...}]`),
`completion_ids` when a tokenizer is at hand (the trainer's, or `check --tokenizer`), and every
other data field as a list, one value per sample. A `None` score (TRL: "skip this example") is an
error cell with that reason, so the spec's `on_error` decides what it counts as; what the function
sends to `log_extra` is appended to each sample's reason. Like `python` with `in_process: true`,
the function runs in the caller's process: it is for trusted reward code.

Factories such as `trl.rewards.get_soft_overlong_punishment(max_completion_len, soft_punish_cache)`
are called once with `build:` to make the reward function.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs, completion_text

_OWN = {"prompt", "completion"}


class TrlRewardArgs(VerifierArgs):
    function: str = Field(description="'module:function' of a TRL reward function, e.g. "
                          "'trl.rewards:think_format_reward' (or of a factory, with `build`).")
    build: dict[str, Any] | None = Field(
        None, description="Keyword arguments for a factory that returns the reward function, e.g. "
        "{max_completion_len: 512, soft_punish_cache: 64} for trl.rewards:get_soft_overlong_punishment.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra keyword arguments on every call.")
    completions: Literal["auto", "conversational", "standard"] = Field(
        "auto", description="How completions are passed: auto = as the sample holds them (chat messages stay "
        "messages, text stays text); conversational = always [{role, content}] (e.g. think_format_reward); "
        "standard = always text.")

    @model_validator(mode="after")
    def _loadable(self) -> TrlRewardArgs:
        _function(self)
        return self


def _function(args: TrlRewardArgs) -> Callable[..., Any]:
    module_name, sep, attr = args.function.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'module:function', got {args.function!r}")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from exc
    except AttributeError:
        raise ValueError(f"{module_name!r} has no function {attr!r}") from None
    func = target(**args.build) if args.build is not None else target
    if not callable(func):
        raise ValueError(f"{args.function} is not callable" + (" (after build)" if args.build else ""))
    return func  # type: ignore[no-any-return]


def _accepts(func: Callable[..., Any]) -> tuple[set[str], bool, set[str]]:
    """Parameter names, whether it takes **kwargs, and the required ones."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return set(), True, set()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    required = {p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params), required


def _token_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer
        return [list(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


class TrlReward(Verifier):
    """A TRL reward function (`f(completions, **kwargs) -> list[float | None]`) as a verifier."""

    name = "trl_reward"
    Args = TrlRewardArgs
    args: TrlRewardArgs

    def __init__(self, args: TrlRewardArgs | None = None) -> None:
        super().__init__(args)
        self._func = _function(self.args)
        self._names, self._any_kwargs, self._required = _accepts(self._func)

    def _completion(self, sample: Sample) -> Any:
        completion = sample.get("completion", "")
        mode = self.args.completions
        if mode == "standard" or (mode == "auto" and isinstance(completion, str)):
            return completion_text(sample)
        if isinstance(completion, list):
            return list(completion)
        return [{"role": "assistant", "content": completion_text(sample)}]

    def score_batch(self, samples: Sequence[Sample], ctx: ScoringContext) -> list[Score]:
        first = samples[0] if samples else {}
        columns = {key for key in first if key not in _OWN and all(key in s for s in samples)}
        call: dict[str, Any] = {key: [s[key] for s in samples] for key in columns}
        call.update(prompts=[s.get("prompt") for s in samples], completions=[self._completion(s) for s in samples])
        if ctx.tokenizer is not None:
            call["completion_ids"] = _token_ids(ctx.tokenizer, [completion_text(s) for s in samples])
        extra: dict[str, list[Any]] = {}
        call["log_extra"] = lambda name, values: extra.__setitem__(name, list(values))
        call.update(self.args.kwargs)
        if not self._any_kwargs:
            call = {k: v for k, v in call.items() if k in self._names}
        missing = sorted(self._required - call.keys())
        if missing == ["completion_ids"]:
            raise ValueError(f"{self.args.function} needs completion_ids: give a tokenizer (`rewardkit check "
                             "--tokenizer PATH`; the trainer passes the policy's)")
        if missing:
            raise ValueError(f"{self.args.function} needs {', '.join(missing)}, which the samples do not have")
        values = list(self._func(**call))
        if len(values) != len(samples):
            raise ValueError(f"{self.args.function} returned {len(values)} rewards for {len(samples)} completions")
        return [self._score(value, i, extra) for i, value in enumerate(values)]

    def _score(self, value: Any, i: int, extra: dict[str, list[Any]]) -> Score:
        logged = "; ".join(f"{k}: {v[i]}" for k, v in extra.items() if i < len(v))
        note = f" ({logged})" if logged else ""
        name = self.args.function.rpartition(":")[2]
        if value is None:
            return Score.failed(f"{name} returned None (TRL: skip this example){note}")
        value = float(value)
        if not math.isfinite(value):
            return Score.failed(f"{name} returned {value}{note}")
        return Score(value, f"{name}: {value:g}{note}")
