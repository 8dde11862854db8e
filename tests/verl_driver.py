"""Runs verl 0.9.1's own code in verl's venv (`.cache/venv-verl`, numpy >= 2) for test_verl_parity.py.

    .cache/venv-verl/bin/python tests/verl_driver.py JOBS.json OUT.json   (a list of jobs in, of results out)

`gdpo` job: verl's `compute_gdpo_outcome_advantage` on given rewards, groups and response lengths,
called directly and through the trainer's own dispatch (`ray_trainer.compute_advantage`).
`overrides` job: verl's Hydra config composed with `rewardkit export verl`'s overrides.
`managers` job: the data file (written by `rewardkit export verl-data`) read by verl's
`RLHFDataset`, prompts through the tokenizer's chat template, responses tokenized, a real
`DataProto`; then every reward manager that runs without a GPU scores it through verl's own loader
(`get_custom_reward_fn` / `load_reward_manager` with a Hydra-style config), and verl's GDPO runs on
the Reward Loop gdpo manager's output. Ray is not started: the Reward Loop worker class is
instantiated in this process instead of as a Ray actor (its code is the same).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

RK_VERL = "rewardkit/integrations/verl.py"
RK_MANAGER = "rewardkit/integrations/verl_manager.py"


def gdpo_job(job: dict[str, Any]) -> dict[str, Any]:
    from verl.trainer.config import AlgoConfig
    from verl.trainer.ppo.core_algos import compute_gdpo_outcome_advantage
    from verl.trainer.ppo.ray_trainer import compute_advantage

    rewards = np.asarray(job["rewards"], dtype=np.float32)  # [batch, n_rewards]
    lengths = np.asarray(job["lengths"], dtype=np.int64)
    keys = [f"r{k}" for k in range(rewards.shape[1])]
    data = _token_batch(lengths, prompt_len=3)
    data.non_tensor_batch.update({key: rewards[:, k] for k, key in enumerate(keys)})
    data.non_tensor_batch["uid"] = np.asarray(job["groups"], dtype=object)
    data.batch["token_level_rewards"] = torch.zeros_like(data.batch["response_mask"], dtype=torch.float32)
    config = AlgoConfig(adv_estimator="gdpo", gdpo_reward_keys=keys, gdpo_reward_weights=list(job["weights"]),
                        norm_adv_by_std_in_grpo=job.get("norm_by_std", True))
    direct, _ = compute_gdpo_outcome_advantage(
        token_level_rewards=data.batch["token_level_rewards"], response_mask=data.batch["response_mask"],
        index=data.non_tensor_batch["uid"], norm_adv_by_std_in_grpo=config.norm_adv_by_std_in_grpo, config=config,
        non_tensor_batch=data.non_tensor_batch, batch=data.batch)
    out = compute_advantage(data, adv_estimator="gdpo", norm_adv_by_std_in_grpo=config.norm_adv_by_std_in_grpo,
                            config=config)
    return {"advantages": _per_sample(out.batch["advantages"], lengths), "direct": _per_sample(direct, lengths)}


def overrides_job(job: dict[str, Any]) -> dict[str, Any]:
    """verl's own Hydra config (`verl/trainer/config/ppo_trainer.yaml`, as `main_ppo` composes it) with
    the overrides `rewardkit export verl` printed, and the reward function it then loads."""
    from pathlib import Path

    import verl
    from hydra import compose, initialize_config_dir
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=job["overrides"])
    fn = get_custom_reward_fn(cfg)
    return {"values": {key: _plain_config(OmegaConf.select(cfg, key)) for key in job["keys"]},
            "function": fn.args[0].__name__ if fn is not None else None}


def _plain_config(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _token_batch(lengths: np.ndarray, prompt_len: int) -> Any:
    from verl import DataProto

    width = max(int(lengths.max()), 1)
    response_mask = torch.zeros(len(lengths), width, dtype=torch.int64)
    for i, n in enumerate(lengths):
        response_mask[i, : int(n)] = 1
    attention = torch.cat([torch.ones(len(lengths), prompt_len, dtype=torch.int64), response_mask], dim=1)
    return DataProto.from_dict(tensors={"prompts": torch.zeros(len(lengths), prompt_len, dtype=torch.int64),
                                        "responses": torch.zeros(len(lengths), width, dtype=torch.int64),
                                        "attention_mask": attention, "response_mask": response_mask})


def _per_sample(advantages: torch.Tensor, lengths: np.ndarray) -> list[float | None]:
    """Each response's advantage (constant over its tokens); None for an empty response."""
    out: list[float | None] = []
    for i, n in enumerate(lengths):
        row = advantages[i, : int(n)]
        assert torch.allclose(row, row[:1].expand_as(row)) if n else True, "advantage varies over tokens"
        out.append(float(row[0]) if n else None)
    return out


def managers_job(job: dict[str, Any]) -> dict[str, Any]:
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.workers.reward_manager.batch import BatchRewardManager
    from verl.workers.reward_manager.naive import NaiveRewardManager

    tokenizer = AutoTokenizer.from_pretrained(job["tokenizer"])
    dataset = RLHFDataset(job["data"], tokenizer, OmegaConf.create({"filter_overlong_prompts": False,
                                                                    "cache_dir": job["cache_dir"]}))
    data, lengths = _rollout_batch(dataset, tokenizer, job["completions"])
    reward_kwargs = {"spec": job["spec"], **job.get("reward_kwargs", {})}
    out: dict[str, Any] = {"response_lengths": lengths.tolist(),
                           "decoded": [tokenizer.decode(tokenizer(c, add_special_tokens=False)["input_ids"],
                                                        skip_special_tokens=True) for c in job["completions"]]}

    def config(manager: str, function: str, source: str = "register", module: str | None = None) -> Any:
        return OmegaConf.create({
            "trainer": {"experiment_name": "rewardkit-parity"},
            "actor_rollout_ref": {"model": {"path": job["tokenizer"], "tokenizer_path": None}},
            "reward": {"num_workers": 1,
                       "custom_reward_function": {"path": RK_VERL, "name": function, "reward_kwargs": reward_kwargs},
                       "reward_manager": {"source": source, "name": manager,
                                          "module": {"path": module, "name": "custom_reward_manager"}},
                       "reward_model": {"enable": False, "model_path": None}},
        })

    if job.get("expect_failure"):  # a reward that keeps failing: what each manager does with the error
        for name, cfg in {"loop_naive": config("naive", "compute_score"),
                          "loop_rewardkit": config("RewardkitRewardManager", "compute_score_batch", "importlib",
                                                   RK_MANAGER)}.items():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(RewardLoopWorker(cfg, None).compute_score_batch(data))
                out[name + "_error"] = None
            except Exception as exc:  # noqa: BLE001 - reported to the test
                out[name + "_error"] = f"{type(exc).__name__}: {exc}"
            loop.close()
        return out
    # Legacy reward managers (verl/workers/reward_manager), called as the legacy trainer did.
    naive = NaiveRewardManager(tokenizer, 0, compute_score=get_custom_reward_fn(config("naive", "compute_score")))
    out["legacy_naive"] = _extra(naive(data, return_dict=True))
    batch_fn = get_custom_reward_fn(config("batch", "compute_score_batch"))
    batch = BatchRewardManager(tokenizer, 0, compute_score=batch_fn)
    out["legacy_batch"] = _extra(batch(data, return_dict=True))
    # Reward Loop managers (verl 0.9.1's default), through RewardLoopWorker.compute_score_batch.
    for name, cfg in {
        "loop_naive": config("naive", "compute_score"),
        "loop_gdpo": config("gdpo", "compute_score"),
        "loop_rewardkit": config("RewardkitRewardManager", "compute_score_batch", "importlib", RK_MANAGER),
    }.items():
        loop = asyncio.new_event_loop()  # the worker and its manager keep the loop they were made in
        asyncio.set_event_loop(loop)
        worker = RewardLoopWorker(cfg, None)
        results = loop.run_until_complete(worker.compute_score_batch(data))
        loop.close()
        out[name + "_scoring_calls"] = _scoring_calls(worker.reward_manager.compute_score)
        keys = list(results[0]["reward_extra_info"])
        out[name] = {key: [_plain(r["reward_extra_info"][key]) for r in results] for key in keys}
        out[name + "_reward_score"] = [float(r["reward_score"]) for r in results]
    # verl's GDPO on what the Reward Loop gdpo manager produced.
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

    keys = job["reward_keys"]
    data.batch["token_level_rewards"] = RewardManagerBase.assemble_rm_scores(data, out["loop_gdpo_reward_score"])
    for key in keys:
        data.non_tensor_batch[key] = np.asarray(out["loop_gdpo"][key])
    out["gdpo"] = gdpo_on(data, keys, job["weights"], lengths)
    return out


def gdpo_on(data: Any, keys: list[str], weights: list[float], lengths: np.ndarray) -> list[float | None]:
    from verl.trainer.config import AlgoConfig
    from verl.trainer.ppo.ray_trainer import compute_advantage

    config = AlgoConfig(adv_estimator="gdpo", gdpo_reward_keys=keys, gdpo_reward_weights=weights)
    result = compute_advantage(data, adv_estimator="gdpo", config=config)
    return _per_sample(result.batch["advantages"], lengths)


def _rollout_batch(dataset: Any, tokenizer: Any, completions: list[str]) -> tuple[Any, np.ndarray]:
    """A DataProto as verl's rollout leaves it: left-padded prompts, right-padded responses."""
    from verl import DataProto

    rows = [dataset[i] for i in range(len(dataset))]
    assert len(rows) == len(completions)
    prompts = [tokenizer.apply_chat_template(r["raw_prompt"], add_generation_prompt=True, tokenize=True) for r in rows]
    prompts = [list(p["input_ids"]) if isinstance(p, dict) or hasattr(p, "keys") else list(p) for p in prompts]
    responses = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in completions]
    pad = tokenizer.pad_token_id
    p_len, r_len = max(map(len, prompts)), max(max(map(len, responses)), 1)
    prompt_ids = torch.tensor([[pad] * (p_len - len(p)) + p for p in prompts])
    response_ids = torch.tensor([r + [pad] * (r_len - len(r)) for r in responses])
    attention = torch.tensor([[0] * (p_len - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (r_len - len(r))
                              for p, r in zip(prompts, responses, strict=True)])
    lengths = np.array([len(r) for r in responses])
    non_tensors = {
        "data_source": np.array([r["data_source"] for r in rows], dtype=object),
        "reward_model": np.array([r["reward_model"] for r in rows], dtype=object),
        "extra_info": np.array([dict(r["extra_info"]) for r in rows], dtype=object),
        "uid": np.array([json.dumps(r["raw_prompt"]) for r in rows], dtype=object),
    }
    data = DataProto.from_dict(tensors={"prompts": prompt_ids, "responses": response_ids,
                                        "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
                                        "attention_mask": attention}, non_tensors=non_tensors)
    return data, lengths


def _scoring_calls(wrapped: Any) -> int:
    """`spec.score` calls made through the copy of rewardkit's module that verl loaded by path."""
    raw_fn = wrapped.args[0]  # verl wraps the function as partial(_call_with_kwargs, raw_fn, reward_kwargs)
    return sum(scorer.scoring_calls for scorer in raw_fn.__globals__["_scorers"].values())


def _extra(result: dict[str, Any]) -> dict[str, list[Any]]:
    return {key: [_plain(v) for v in values] for key, values in result["reward_extra_info"].items()}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


if __name__ == "__main__":
    jobs = json.loads(open(sys.argv[1], encoding="utf-8").read())  # a list: one interpreter start for all
    kinds = {"gdpo": gdpo_job, "managers": managers_job, "overrides": overrides_job}
    result = [kinds[job["kind"]](job) for job in jobs]
    with open(sys.argv[2], "w", encoding="utf-8") as handle:
        json.dump(result, handle)
