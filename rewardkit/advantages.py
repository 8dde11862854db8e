"""Group-relative advantages for several rewards at once: GDPO, GRPO and GRPO without std.

Rewards come as `[groups, group_size, n_rewards]`: one group per prompt, one row per rollout,
one column per reward. NaN marks a cell that is left out (a verifier error under the `exclude`
policy, or a reward that does not apply), the way TRL treats a reward function returning `None`.

Why two methods. GRPO sums the (weighted) rewards of a rollout and normalizes the sum inside the
group. Different reward combinations then collapse onto the same advantage: with two binary
rewards, the group {(0,0), (0,1)} and the group {(0,0), (1,1)} both normalize to
(-0.7071, +0.7071), although the second rollout of the second group satisfied twice as much
("signal collapse", GDPO paper, arXiv 2601.05242). GDPO normalizes each reward inside its group
first, sums the normalized rewards (weighted), and normalizes that sum once over the batch, so
the two groups above give (-0.7071, +0.7071) and (-1.4142, +1.4142) before the batch step.

The arithmetic matches TRL's `GRPOTrainer` (`multi_objective_aggregation="normalize_then_sum"` for
GDPO, `"sum_then_normalize"` with `scale_rewards="group"` / `"none"` for the GRPO variants):
sample (Bessel-corrected) standard deviations, `eps` added to the std, NaN-aware means and sums,
and a rollout whose rewards are all NaN gets advantage 0.

Every method is a row of one table, `ADVANTAGE_METHODS` (name, function, default eps, whether it
has a batch step, its TRL settings, its column in `rewardkit check`): the spec's choices, the
dispatch in `compute_advantages`, `check` and the TRL bridge all read it, and
`@register_advantage(...)` adds a row. The engines' own GDPO arithmetic (`gdpo_verl`,
`gdpo_nemo_rl`) is registered from `rewardkit.engine_gdpo`, with each formula written out there.

Works on numpy arrays and torch tensors and returns the same kind. Torch is never imported here
unless a tensor is passed in (the core must install without torch).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations_with_replacement, product
from typing import Any, TypeVar, cast

import numpy as np

Method = str
"""An advantage method's name: a key of `ADVANTAGE_METHODS`."""

DEFAULT_EPS = 1e-4
"""Added to standard deviations by `gdpo` and `grpo` (TRL's GRPOTrainer adds the same)."""

ArrayT = TypeVar("ArrayT")

# Largest number of enumerated groups `count_distinct_advantages` will build.
_MAX_ENUMERATED_GROUPS = 2_000_000


# --- backends -------------------------------------------------------------------------------------
# Two tiny op tables with the same surface, so that the formulas below are written once and run
# natively on either library (no round trip through numpy for tensors, device and dtype kept).


def _is_tensor(x: object) -> bool:
    """Duck-typed torch check that does not import torch."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "dim")


class _NumpyOps:
    def prepare(self, x: Any) -> Any:
        arr = np.asarray(x)
        if not np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float64)
        return arr

    def like(self, values: Any, ref: Any) -> Any:
        if _is_tensor(values):
            values = values.detach().cpu().numpy()
        return np.asarray(values, dtype=ref.dtype)

    def isnan(self, x: Any) -> Any:
        return np.isnan(x)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return np.where(cond, a, b).astype(_result_dtype(a, b), copy=False)

    def sum(self, x: Any, axis: int | tuple[int, ...], keepdims: bool) -> Any:
        return np.sum(x, axis=axis, keepdims=keepdims)

    def all(self, x: Any, axis: int) -> Any:
        return np.all(x, axis=axis)

    def max(self, x: Any, axis: int | tuple[int, ...]) -> Any:
        return np.max(x, axis=axis, keepdims=True)

    def min(self, x: Any, axis: int | tuple[int, ...]) -> Any:
        return np.min(x, axis=axis, keepdims=True)

    def sqrt(self, x: Any) -> Any:
        return np.sqrt(x)

    def cast(self, x: Any, ref: Any) -> Any:
        return np.asarray(x).astype(ref.dtype)

    def zeros(self, shape: tuple[int, ...], ref: Any) -> Any:
        return np.zeros(shape, dtype=ref.dtype)


def _result_dtype(a: Any, b: Any) -> Any:
    for v in (a, b):
        if isinstance(v, np.ndarray):
            return v.dtype
    return np.float64


class _TorchOps:
    def __init__(self) -> None:
        # Imported only once a tensor has been passed in, so torch is already loaded.
        self.torch: Any = importlib.import_module("torch")

    def prepare(self, x: Any) -> Any:
        if not x.is_floating_point():
            x = x.to(self.torch.get_default_dtype())
        return x

    def like(self, values: Any, ref: Any) -> Any:
        return self.torch.as_tensor(values, dtype=ref.dtype, device=ref.device)

    def isnan(self, x: Any) -> Any:
        return self.torch.isnan(x)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.torch.where(cond, a, b)

    def sum(self, x: Any, axis: int | tuple[int, ...], keepdims: bool) -> Any:
        return self.torch.sum(x, dim=axis, keepdim=keepdims)

    def all(self, x: Any, axis: int) -> Any:
        return self.torch.all(x, dim=axis)

    def max(self, x: Any, axis: int | tuple[int, ...]) -> Any:
        return self.torch.amax(x, dim=axis, keepdim=True)

    def min(self, x: Any, axis: int | tuple[int, ...]) -> Any:
        return self.torch.amin(x, dim=axis, keepdim=True)

    def sqrt(self, x: Any) -> Any:
        return self.torch.sqrt(x)

    def cast(self, x: Any, ref: Any) -> Any:
        return x.to(ref.dtype)

    def zeros(self, shape: tuple[int, ...], ref: Any) -> Any:
        return ref.new_zeros(shape)


_Ops = _NumpyOps | _TorchOps


def _ops_for(x: object) -> _Ops:
    return _TorchOps() if _is_tensor(x) else _NumpyOps()


# --- NaN-aware standardization (TRL's operation order: `torch.nanmean`, `trl.trainer.utils.nanstd`) --


def _standardize(ops: _Ops, x: Any, axis: int | tuple[int, ...], eps: float, scale: bool = True) -> Any:
    """`(x - mean) / (std + eps)` over `axis`, ignoring NaN, with the sample (n - 1) std.

    NaN where the std is undefined (fewer than two values) and at NaN inputs. A slice whose values
    are all equal is centered to exactly 0 (the float mean of equal values can be off by an ulp,
    which a small `eps` would otherwise blow up); TRL gets ~1e-13 there.
    """
    valid = ~ops.isnan(x)
    count = ops.cast(ops.sum(valid, axis, True), x)
    mean = ops.sum(ops.where(valid, x, 0.0), axis, True) / count
    constant = ops.max(ops.where(valid, x, -np.inf), axis) == ops.min(ops.where(valid, x, np.inf), axis)
    centered = ops.where(constant & valid, 0.0, x - mean)
    if not scale:
        return centered
    variance = ops.sum(ops.where(valid, centered * centered, 0.0), axis, True) / count
    correction = ops.where(count > 1, count / (count - 1), float("nan"))
    return centered / (ops.sqrt(variance * correction) + eps)


def _nansum(ops: _Ops, x: Any, axis: int) -> Any:
    return ops.sum(ops.where(ops.isnan(x), 0.0, x), axis, False)


def _zero_nan(ops: _Ops, x: Any) -> Any:
    return ops.where(ops.isnan(x), 0.0, x)


# --- input checking --------------------------------------------------------------------------------


def _prepare(rewards: Any, weights: Any) -> tuple[_Ops, Any, Any]:
    ops = _ops_for(rewards)
    x = ops.prepare(rewards)
    if x.ndim != 3:
        raise ValueError(f"rewards must have shape [groups, group_size, n_rewards]; got {tuple(x.shape)}")
    n_rewards = x.shape[2]
    w = ops.like([1.0] * n_rewards if weights is None else weights, x)
    if tuple(w.shape) != (n_rewards,):
        raise ValueError(f"weights must have one entry per reward ({n_rewards}); got shape {tuple(w.shape)}")
    if bool(ops.isnan(w).any()):
        raise ValueError("weights must not be NaN")
    return ops, x, w


def _run(fn: Any, rewards: Any, weights: Any, eps: float, *args: Any) -> Any:
    if not eps >= 0:
        raise ValueError(f"eps must be a number >= 0; got {eps!r}")
    ops, x, w = _prepare(rewards, weights)
    if 0 in tuple(x.shape):  # no groups, no rollouts or no rewards: nothing to learn from
        return ops.zeros(tuple(x.shape[:2]), x)
    # 0/0 and NaN statistics are expected (excluded cells, all-equal groups): silence numpy.
    with np.errstate(invalid="ignore", divide="ignore"):
        return fn(ops, x, w, eps, *args)


# --- the table of methods -------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvantageMethod:
    """One advantage method: everything the spec, `compute_advantages`, `rewardkit check` and the
    TRL bridge need to know about it.

    `compute(rewards, weights, **options)` returns `[groups, group_size]` advantages from
    `[groups, group_size, n_rewards]` rewards; it takes `eps=` when `default_eps` is not None and
    `batch_norm=` when `batch_norm` is True (the only options dispatch passes).
    """

    name: str
    compute: Callable[..., Any]
    summary: str  # one line, shown in the spec's JSON Schema and field listing
    default_eps: float | None = DEFAULT_EPS  # None: nothing is divided, `eps` is not used
    batch_norm: bool = False  # has a batch-level step that `advantage.batch_norm` switches off
    trl: Mapping[str, str] | None = None  # TRL GRPOConfig settings that compute the same; None: none do
    check_column: int = 0  # its place in `rewardkit check`'s side-by-side view; 0: not shown
    extra_options: tuple[str, ...] = ()  # further keyword options it takes (e.g. `lengths`), passed when given
    engine: str | None = None  # the engine whose arithmetic (quirks included) it reproduces; None: the paper's
    options: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = (("eps",) if self.default_eps is not None else ()) + (("batch_norm",) if self.batch_norm else ())
        object.__setattr__(self, "options", names + self.extra_options)


ADVANTAGE_METHODS: dict[str, AdvantageMethod] = {}
"""Every advantage method by name, in registration order (add one with `register_advantage`)."""


def register_advantage(
    name: str,
    *,
    summary: str,
    default_eps: float | None = DEFAULT_EPS,
    batch_norm: bool = False,
    trl: Mapping[str, str] | None = None,
    check_column: int = 0,
    extra_options: tuple[str, ...] = (),
    engine: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the decorated function to `ADVANTAGE_METHODS` under `name` (verl's `register_adv_est`).

    Example (a method usable as `advantage: {method: sum_only}` in a spec once its module is imported):

    >>> @register_advantage("sum_only", summary="weighted sum of the rewards, no normalization",
    ...                     default_eps=None)
    ... def sum_only(rewards, weights=None):
    ...     return (np.asarray(rewards) * (1.0 if weights is None else np.asarray(weights))).sum(axis=2)
    >>> compute_advantages([[[1.0, 2.0]]], [1.0, 0.5], method="sum_only")
    array([[2.]])
    >>> del ADVANTAGE_METHODS["sum_only"]
    """

    def add(compute: Callable[..., Any]) -> Callable[..., Any]:
        if name in ADVANTAGE_METHODS:
            raise ValueError(f"advantage method {name!r} is already registered")
        ADVANTAGE_METHODS[name] = AdvantageMethod(
            name, compute, summary, default_eps=default_eps, batch_norm=batch_norm, trl=trl, check_column=check_column,
            extra_options=extra_options, engine=engine,
        )
        return compute

    return add


def method_names() -> tuple[str, ...]:
    """The registered method names, in registration order."""
    return tuple(ADVANTAGE_METHODS)


def compared_methods() -> tuple[str, ...]:
    """The methods `rewardkit check` shows side by side, in their columns' order (GRPO, GDPO)."""
    shown = sorted((m for m in ADVANTAGE_METHODS.values() if m.check_column > 0), key=lambda m: m.check_column)
    return tuple(m.name for m in shown)


def advantage_method(name: str) -> AdvantageMethod:
    """The table entry for `name`; an unknown name raises ValueError listing the valid ones."""
    found = ADVANTAGE_METHODS.get(name)
    if found is None:
        raise ValueError(unknown_method_message(name))
    return found


def unknown_method_message(name: object) -> str:
    names = method_names()
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown advantage method {name!r}{hint} (expected one of {', '.join(names)})"


# --- the methods -----------------------------------------------------------------------------------


@register_advantage(
    "gdpo",
    summary="normalize each reward in its group, sum with weights, normalize over the batch",
    batch_norm=True,
    trl={"multi_objective_aggregation": "normalize_then_sum", "scale_rewards": "group"},
    check_column=2,
)
def gdpo(
    rewards: ArrayT,
    weights: Sequence[float] | Any | None = None,
    *,
    eps: float = DEFAULT_EPS,
    batch_norm: bool = True,
) -> ArrayT:
    """GDPO: normalize each reward inside its group, sum with weights, normalize over the batch.

    Decoupling keeps reward combinations apart that GRPO's summed normalization merges, and makes
    every reward's contribution independent of its scale and offset. Per reward and group:
    `(r - mean) / (std + eps)` over the non-NaN cells; a NaN cell contributes 0 to the weighted
    sum. With `batch_norm`, the sums are then standardized over all `[groups, group_size]`
    entries (again `/(std + eps)`), which keeps the magnitude from growing with the number of
    rewards. A rollout whose rewards are all NaN gets 0. Returns `[groups, group_size]`.
    """
    return cast(ArrayT, _run(_gdpo, rewards, weights, eps, batch_norm))


def _gdpo(ops: _Ops, x: Any, w: Any, eps: float, batch_norm: bool) -> Any:
    summed = _nansum(ops, _standardize(ops, x, 1, eps) * w, 2)
    unscorable = ops.all(ops.isnan(x), 2)
    if not batch_norm:
        return ops.where(unscorable, 0.0, _zero_nan(ops, summed))
    summed = ops.where(unscorable, float("nan"), summed)
    return _zero_nan(ops, _standardize(ops, summed, (0, 1), eps))


@register_advantage(
    "grpo",
    summary="sum the weighted rewards, then normalize the sum in its group",
    trl={"multi_objective_aggregation": "sum_then_normalize", "scale_rewards": "group"},
    check_column=1,
)
def grpo(rewards: ArrayT, weights: Sequence[float] | Any | None = None, *, eps: float = DEFAULT_EPS) -> ArrayT:
    """GRPO: sum the weighted rewards of each rollout, then `(s - mean) / (std + eps)` per group.

    This is what most multi-reward pipelines do, and it is where signal collapse happens: only the
    sum survives, so rollouts that satisfy different rewards can get identical advantages. As in
    TRL, a NaN cell counts as 0 in the sum (`nansum`), and a rollout whose rewards are all NaN is
    left out of its group's statistics and gets 0. Returns `[groups, group_size]`.
    """
    return cast(ArrayT, _run(_grpo, rewards, weights, eps, True))


@register_advantage(
    "grpo_no_std",
    summary="sum the weighted rewards, minus the group mean (Dr. GRPO)",
    default_eps=None,
    trl={"multi_objective_aggregation": "sum_then_normalize", "scale_rewards": "none"},
)
def grpo_no_std(rewards: ArrayT, weights: Sequence[float] | Any | None = None) -> ArrayT:
    """GRPO without the division by the group std (Dr. GRPO; TRL's `scale_rewards="none"`).

    Avoids up-weighting near-unanimous groups, but shares GRPO's collapse of reward combinations
    into one sum. Returns `[groups, group_size]`.
    """
    return cast(ArrayT, _run(_grpo, rewards, weights, 0.0, False))


def _grpo(ops: _Ops, x: Any, w: Any, eps: float, scale: bool) -> Any:
    summed = _nansum(ops, x * w, 2)
    summed = ops.where(ops.all(ops.isnan(x), 2), float("nan"), summed)
    return _zero_nan(ops, _standardize(ops, summed, 1, eps, scale))


def compute_advantages(
    rewards: ArrayT,
    weights: Sequence[float] | Any | None = None,
    *,
    method: Method = "gdpo",
    eps: float | None = None,
    batch_norm: bool = True,
    **extra: Any,
) -> ArrayT:
    """Advantages `[groups, group_size]` from rewards `[groups, group_size, n_rewards]`.

    `method` is a name in `ADVANTAGE_METHODS` (`gdpo`, `grpo`, `grpo_no_std`, the engines'
    `gdpo_verl` and `gdpo_nemo_rl`, ...); `eps=None` takes the method's default; a method ignores
    the options it has no use for (`batch_norm` outside GDPO, `eps` where nothing is divided,
    `extra` options such as `lengths` or `leave_one_out` that it does not declare).

    The GDPO paper's example: two groups of two rollouts scored by two binary rewards, whose
    sums are (0, 1) in one group and (0, 2) in the other. GRPO sees only the sums and gives both
    groups the same advantages; GDPO keeps them apart (its batch step rescales all groups
    together):

    >>> import numpy as np
    >>> rewards = np.array([[[0.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [1.0, 1.0]]])
    >>> compute_advantages(rewards, method="grpo").round(3)
    array([[-0.707,  0.707],
           [-0.707,  0.707]])
    >>> compute_advantages(rewards, method="gdpo", batch_norm=False).round(3)
    array([[-0.707,  0.707],
           [-1.414,  1.414]])
    >>> compute_advantages(rewards, method="gdpo").round(3)
    array([[-0.548,  0.548],
           [-1.095,  1.095]])
    """
    entry = advantage_method(method)
    options: dict[str, Any] = {}
    if entry.default_eps is not None:
        options["eps"] = entry.default_eps if eps is None else eps
    if entry.batch_norm:
        options["batch_norm"] = batch_norm
    options.update({key: value for key, value in extra.items() if key in entry.extra_options})
    return cast(ArrayT, entry.compute(rewards, weights, **options))


# --- resolution: how many different signals can a method give? ------------------------------------


def count_distinct_advantages(
    method: Method,
    group_size: int,
    n_rewards: int,
    weights: Sequence[float] | None = None,
    decimals: int = 6,
) -> int:
    """Count the distinct advantage assignments a method can give one group of binary rewards.

    This is the GDPO paper's resolution argument (its Figure 2): every rollout of a group of
    `group_size` gets each of `n_rewards` rewards as 0 or 1; rollouts are exchangeable, so a group
    is a multiset of reward rows. Every such group is pushed through the method and the resulting
    advantages (as a multiset, rounded to `decimals`) are counted once. Fewer distinct results
    means more reward combinations collapsed onto the same training signal.

    No `eps` is used here (it would separate advantages that differ only through it).
    GDPO is counted before its batch normalization: on a lone group that step only rescales, and
    would merge groups that differ only in scale, e.g. (-0.71, 0.71) and (-1.41, 1.41), which
    differ in a real batch where the scale is shared by all groups.
    """
    if group_size < 1 or n_rewards < 1:
        raise ValueError("group_size and n_rewards must be at least 1")
    rows = np.array(list(product((0.0, 1.0), repeat=n_rewards)))
    n_groups = _multiset_count(len(rows), group_size)
    if n_groups > _MAX_ENUMERATED_GROUPS:
        raise ValueError(
            f"{n_groups} groups to enumerate for group_size={group_size}, n_rewards={n_rewards}; "
            f"the limit is {_MAX_ENUMERATED_GROUPS}"
        )
    picks = np.array(list(combinations_with_replacement(range(len(rows)), group_size)), dtype=np.int64)
    groups = rows[picks]  # [n_groups, group_size, n_rewards]
    # eps=0: the count is about the formulas, and eps would split values that only differ by it.
    advantages = compute_advantages(groups, weights, method=method, eps=0.0, batch_norm=False)
    # Round, then turn -0.0 into 0.0 so that the two zeros compare equal.
    canonical = np.sort(np.round(advantages, decimals), axis=1) + 0.0
    return int(np.unique(canonical, axis=0).shape[0])


def _multiset_count(n_kinds: int, size: int) -> int:
    count = 1
    for i in range(size):
        count = count * (n_kinds + i) // (i + 1)
    return count


# The engines' own GDPO variants (verl, NeMo-RL) register themselves from their module.
import rewardkit.engine_gdpo  # noqa: E402,F401
