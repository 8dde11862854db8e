"""A verl Reward Loop manager that scores each worker's chunk with one `spec.score` call.

verl 0.9.1 computes rewards in its Reward Loop: every reward worker gets a chunk of the batch and
starts one `run_single` task per sample (`RewardLoopWorker.compute_score_batch`), so a plain
custom function sees one sample at a time, and verl's batch reward manager (`reward_manager.name=
batch`) belongs to the legacy implementation the 0.9.1 trainer no longer calls. This manager
queues the samples that arrive in one event-loop turn (all tasks of a chunk start before any
awaits) and hands them to `rewardkit.integrations.verl.compute_score_batch` together, so verifier
batching and sandbox pools work. Select it with (`rewardkit export verl SPEC --batch` prints them):

    reward.reward_manager.source=importlib
    reward.reward_manager.name=RewardkitRewardManager
    reward.reward_manager.module.path=<this file>
    reward.custom_reward_function.path=<rewardkit/integrations/verl.py>
    reward.custom_reward_function.name=compute_score_batch

Imported only by verl (it subclasses verl's `RewardManagerBase`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase


class RewardkitRewardManager(RewardManagerBase):
    """Reward Loop manager: per-sample `run_single` calls, scored in batches."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any, reward_router_address: Any = None,
                 reward_model_tokenizer: Any = None) -> None:
        super().__init__(config, tokenizer, compute_score)
        if compute_score is None:
            raise ValueError("RewardkitRewardManager needs reward.custom_reward_function.path/name set to "
                             "rewardkit's compute_score_batch (see `rewardkit export verl SPEC --batch`)")
        self._pending: list[tuple[tuple[Any, str, Any, Any], asyncio.Future[Any]]] = []
        self._flush_scheduled = False

    async def run_single(self, data: DataProto) -> dict[str, Any]:
        item = data[-1:][0]  # multi-sequence outputs: the reward is the last sequence's
        response_ids = item.batch["responses"]
        valid = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
        solution = self.tokenizer.decode(response_ids[:valid], skip_special_tokens=True)
        args = (item.non_tensor_batch["data_source"], solution,
                item.non_tensor_batch["reward_model"]["ground_truth"], item.non_tensor_batch.get("extra_info", {}))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush, loop)  # runs after every task started in this turn has queued
        result = await future
        return {"reward_score": result["score"], "reward_extra_info": dict(result)}

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending, self._flush_scheduled = self._pending, [], False
        columns = list(zip(*(args for args, _ in batch), strict=True))

        def score() -> list[dict[str, Any]]:
            return list(self.compute_score(data_sources=list(columns[0]), solution_strs=list(columns[1]),
                                           ground_truths=list(columns[2]), extra_infos=list(columns[3])))

        def deliver(done: asyncio.Future[list[dict[str, Any]]]) -> None:
            error = done.exception()
            for i, (_, future) in enumerate(batch):
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(done.result()[i])

        loop.run_in_executor(None, score).add_done_callback(deliver)
