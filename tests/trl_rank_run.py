"""One rank of test_trl_multiprocess.py: `accelerate launch --multi_gpu --num_processes 2 tests/trl_rank_run.py SPEC OUT`
(on a machine without GPUs accelerate runs the processes on CPU with gloo).

Trains the spec's tiny model with TRL's GRPOTrainer through rewardkit's bridge and writes, per
generation batch, what this rank saw: its shard's completions, the reward matrix TRL gathered from
every rank, the advantages TRL kept for this rank, and whether the spec scored on this rank's shard
alone gives this rank's rows of the gathered matrix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import trl

from rewardkit.integrations.trl import build_trl_trainer
from rewardkit.spec import load_spec


class RankRecorder(trl.GRPOTrainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[dict[str, Any]] = []

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # type: ignore[no-untyped-def]
        gathered = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self.batches.append({"inputs": [dict(x) for x in inputs], "prompts": list(prompts),
                             "completions": list(completions), "gathered_rewards": gathered.tolist()})
        return gathered

    def _generate_and_score_completions(self, inputs):  # type: ignore[no-untyped-def]
        output = super()._generate_and_score_completions(inputs)
        self.batches[-1]["local_advantages"] = output["advantages"].tolist()
        return output


def main(spec_path: str, out_dir: str) -> None:
    spec = load_spec(spec_path)
    trainer = build_trl_trainer(spec, trainer_cls=RankRecorder, output_dir=str(Path(out_dir) / "trl"),
                                report_to="none", save_strategy="no", disable_tqdm=True, logging_steps=1,
                                per_device_train_batch_size=4)
    trainer.train()
    rank, world = trainer.accelerator.process_index, trainer.accelerator.num_processes
    scorer = trainer.reward_funcs[0].scorer
    for batch in trainer.batches:
        n = len(batch["completions"])
        mine = np.asarray(batch["gathered_rewards"], dtype=np.float64)[rank * n:(rank + 1) * n]
        samples = [{**{k: v for k, v in row.items() if k != "prompt"}, "prompt": p, "completion": c}
                   for row, p, c in zip(batch["inputs"], batch["prompts"], batch["completions"], strict=True)]
        table = spec.score(samples)
        batch["shard_scores_match"] = bool(np.allclose(mine, table.values.astype(np.float32), equal_nan=True))
        for key in ("inputs", "prompts"):
            batch.pop(key)
    state = trainer.accelerator.state
    result = {"rank": rank, "world": world, "backend": state.backend, "distributed_type": str(state.distributed_type), "scoring_calls": scorer.scoring_calls, "batches": trainer.batches,
              "global_step": trainer.state.global_step}
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result), encoding="utf-8")
    spec.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
