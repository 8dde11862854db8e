"""Scoring a large batch of `tool_call_match` samples in worker processes (off by default: see
`ToolCallMatchArgs.pool_min_batch`)."""

from __future__ import annotations

import json
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from rewardkit.verifier import Sample, Score, ScoringContext, Verifier

if TYPE_CHECKING:
    from rewardkit.verifiers.tool_call_match import ToolCallMatch


def new_pool(workers: int) -> Executor:
    import multiprocessing

    # forkserver: forking a trainer process that holds threads (CUDA, tokenizers) is unsafe
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))


_WORKER_VERIFIERS: dict[str, ToolCallMatch] = {}  # per worker process, by config


def score_chunk(config: dict[str, Any], samples: list[Sample]) -> list[Score]:
    key = json.dumps(config, sort_keys=True)
    verifier = _WORKER_VERIFIERS.get(key)
    if verifier is None:
        from rewardkit.verifiers.tool_call_match import ToolCallMatch, ToolCallMatchArgs

        verifier = _WORKER_VERIFIERS[key] = ToolCallMatch(ToolCallMatchArgs(**config))
    return Verifier.score_batch(verifier, samples, ScoringContext())
