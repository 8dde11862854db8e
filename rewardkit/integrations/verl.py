"""A rewardkit spec as verl's custom reward function, single-sample and batch form.

verl loads the function by path and name and merges `reward_kwargs` into every call
(`rewardkit export verl SPEC` prints the overrides). With verl's naive reward manager:

    reward.custom_reward_function.path=<site-packages>/rewardkit/integrations/verl.py
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.spec=/abs/path/spec.yaml

verl 0.9.1's Reward Loop then calls `compute_score` once per sample. `compute_score_batch` scores a
whole batch with one `spec.score` call (verifier batching, sandbox pools): verl's legacy
`BatchRewardManager` calls it, and so does rewardkit's Reward Loop manager
(`rewardkit/integrations/verl_manager.py`, selected by `rewardkit export verl SPEC --batch`).

What the verifiers read. A verl row holds `data_source`, `prompt` (chat messages),
`reward_model.ground_truth` and `extra_info`; the reward manager hands over the decoded response
(`solution_str`), `ground_truth` and `extra_info`, not the prompt. A sample is built as:
  - `completion` <- `solution_str`; `data_source` <- `data_source`;
  - the row's fields <- `extra_info["rewardkit_fields"]` (a JSON object, written by
    `rewardkit export verl-data`), or else every key of `extra_info` itself;
  - `ground_truth` <- `ground_truth`; a dict's keys become fields; a plain value also fills
    the spec's reference field when the sample lacks it (`ground_truth_field` in `reward_kwargs`, or
    the one data field the spec's verifiers read), so hand-made verl data with a bare answer works.

What comes back: `{"score": weighted gated total, <reward>: value, ..., "rewardkit_errors": n}`.
`score` is for GRPO (`algorithm.adv_estimator=grpo`); the per-reward keys are for
`algorithm.gdpo_reward_keys`; `rewardkit_errors` counts the cells of this sample whose verifier
failed, so failures reach verl's logs. verl has no "unscorable": a NaN would turn every advantage
of the batch into NaN (its whitening is a batch mean), so an excluded cell (a verifier error under
`on_error: exclude`) returns the reward's `otherwise` value (0 by default), counts in
`rewardkit_errors`, and adds nothing to `score`. A reward that fails on
`max_consecutive_errors` samples in a row (default 256, a `reward_kwargs` key) raises, so a broken
verifier stops the run instead of training on zeros.

The spec loads once per worker process (verl calls the function from its reward workers) and
stays open for that process's life. Imports neither torch nor verl.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rewardkit.errors import RewardkitError

SCORE_KEY = "score"
ERRORS_KEY = "rewardkit_errors"
RESERVED_KEYS = (SCORE_KEY, ERRORS_KEY)
FIELDS_KEY = "rewardkit_fields"  # extra_info key holding the row's fields as JSON (export verl-data)
DEFAULT_MAX_CONSECUTIVE_ERRORS = 256


class VerlRewardError(RewardkitError, RuntimeError):
    """A spec that cannot serve verl (a reserved reward name) or a reward that keeps failing."""


class VerlScorer:
    """One loaded spec serving verl's calls: samples built from verl's arguments, results as dicts."""

    def __init__(self, spec: Any, *, ground_truth_field: str | None = None, tokenizer: Any = None,
                 max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS) -> None:
        clash = [name for name in spec.reward_names if name in RESERVED_KEYS]
        if clash:
            raise VerlRewardError(f"{spec.path}: reward name {clash[0]!r} is a key verl's result dict "
                                  f"already uses ({', '.join(RESERVED_KEYS)}); rename the reward")
        self.spec = spec
        self.tokenizer = tokenizer
        self.max_consecutive_errors = max_consecutive_errors
        self.reference_field = ground_truth_field or _sole_reference_field(spec)
        self._failing = {name: 0 for name in spec.reward_names}  # consecutive errored cells
        self._lock = threading.Lock()
        self.scoring_calls = 0  # `spec.score` calls so far (tests check the batch form makes one per batch)

    def sample(self, data_source: Any, solution_str: str, ground_truth: Any,
               extra_info: Mapping[str, Any] | None) -> dict[str, Any]:
        """The rewardkit sample for one verl item (see the module docstring for the mapping)."""
        sample = row_fields(extra_info)
        if isinstance(ground_truth, Mapping):
            for key, value in ground_truth.items():
                sample.setdefault(str(key), value)
        elif ground_truth is not None and self.reference_field and self.reference_field not in sample:
            sample[self.reference_field] = ground_truth
        sample["ground_truth"] = ground_truth
        sample["data_source"] = data_source
        sample["completion"] = solution_str
        return sample

    def score(self, samples: Sequence[dict[str, Any]]) -> list[dict[str, float | int]]:
        """Score samples with one `spec.score` call; one result dict per sample."""
        from rewardkit.verifier import ScoringContext

        table = self.spec.score(list(samples), ScoringContext(tokenizer=self.tokenizer))
        self.scoring_calls += 1
        self._watch(table)
        weights = self.spec.weights
        results: list[dict[str, float | int]] = []
        for row in table.cells:
            values = [c.value for c in row]
            result: dict[str, float | int] = {
                SCORE_KEY: float(sum(w * v for w, v in zip(weights, values, strict=True) if not math.isnan(v)))
            }
            for reward, cell in zip(self.spec.rewards, row, strict=True):
                result[reward.name] = float(reward.otherwise if math.isnan(cell.value) else cell.value)
            result[ERRORS_KEY] = sum(cell.error is not None for cell in row)
            results.append(result)
        return results

    def _watch(self, table: Any) -> None:
        with self._lock:
            for j, name in enumerate(table.reward_names):
                for row in table.cells:
                    cell = row[j]
                    self._failing[name] = self._failing[name] + 1 if cell.error is not None else 0
                    if self._failing[name] >= self.max_consecutive_errors:
                        self._failing[name] = 0
                        raise VerlRewardError(
                            f"{self.spec.path}: reward {name!r} failed on {self.max_consecutive_errors} samples "
                            f"in a row; last error: {cell.error}. Fix the verifier or the data "
                            "(or raise reward_kwargs.max_consecutive_errors)")


def row_fields(extra_info: Mapping[str, Any] | None) -> dict[str, Any]:
    """The data row's fields from verl's `extra_info`: the JSON that `export verl-data` wrote, or its keys."""
    if not extra_info:
        return {}
    packed = extra_info.get(FIELDS_KEY)
    if packed is None:
        return {str(k): v for k, v in extra_info.items()}
    fields = json.loads(packed) if isinstance(packed, str) else packed
    if not isinstance(fields, Mapping):
        raise ValueError(f"extra_info[{FIELDS_KEY!r}] must be a JSON object, got {type(fields).__name__}")
    return dict(fields)


def _sole_reference_field(spec: Any) -> str | None:
    """The one data field the spec's verifiers read (besides prompt and completion), if exactly one."""
    fields = {f for r in spec.rewards for f in r.verifier.required_fields()} - {"prompt", "completion"}
    return next(iter(fields)) if len(fields) == 1 else None


# --- the functions verl calls -----------------------------------------------------------------------

_scorers: dict[tuple[str, str | None, str | None, int, str | None], VerlScorer] = {}
_scorers_lock = threading.Lock()


def scorer_for(spec: str | Path, ground_truth_field: str | None = None, tokenizer: str | None = None,
               max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS, remote: str | None = None) -> VerlScorer:
    """The process's scorer for this spec path (loaded on first use, then reused). With `remote`,
    the URL of a `rewardkit serve` of the same spec, the scoring runs there (token from
    $REWARDKIT_TOKEN), so verl's reward workers need no sandbox or math workers of their own."""
    key = (str(Path(spec).resolve()), ground_truth_field, tokenizer, int(max_consecutive_errors), remote)
    with _scorers_lock:
        if key not in _scorers:
            from rewardkit.spec import load_spec

            tok = None
            if tokenizer:
                from rewardkit.verifiers.length_limit import load_tokenizer_file

                tok = load_tokenizer_file(tokenizer)
            loaded: Any = load_spec(key[0])
            if remote:
                from rewardkit.client import RewardClient

                loaded = RewardClient(remote).scoring_for(loaded)
            _scorers[key] = VerlScorer(loaded, ground_truth_field=ground_truth_field, tokenizer=tok,
                                       max_consecutive_errors=int(max_consecutive_errors))
        return _scorers[key]


def _scorer(kwargs: dict[str, Any]) -> VerlScorer:
    spec = kwargs.get("spec")
    if not spec:
        raise VerlRewardError("no spec: add +reward.custom_reward_function.reward_kwargs.spec=/path/to/spec.yaml "
                              "(see `rewardkit export verl SPEC`)")
    return scorer_for(spec, kwargs.get("ground_truth_field"), kwargs.get("tokenizer"),
                      kwargs.get("max_consecutive_errors", DEFAULT_MAX_CONSECUTIVE_ERRORS), kwargs.get("remote"))


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  **kwargs: Any) -> dict[str, float | int]:
    """verl's custom reward function (naive reward manager): one sample, one dict.

    `kwargs` are verl's `reward_kwargs`: `spec` (path, required), `ground_truth_field`,
    `tokenizer` (a tokenizer.json for token-length rewards), `max_consecutive_errors`, `remote`
    (score on a `rewardkit serve` of this spec).
    """
    scorer = _scorer(kwargs)
    return scorer.score([scorer.sample(data_source, solution_str, ground_truth, extra_info)])[0]


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                        extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
                        **kwargs: Any) -> list[dict[str, float | int]]:
    """verl's batch reward manager form: lists in, one dict per sample out, one `spec.score` call."""
    scorer = _scorer(kwargs)
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    samples = [scorer.sample(d, s, g, e)
               for d, s, g, e in zip(data_sources, solution_strs, ground_truths, infos, strict=True)]
    return scorer.score(samples)
