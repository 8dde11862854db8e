"""What verl needs from a spec besides the reward function: Hydra overrides and its data layout.

`rewardkit export verl SPEC` prints `verl_overrides`; `rewardkit export verl-data DATA.jsonl -o
train.parquet` writes `verl_rows`. Keys are verl 0.9.1's (`verl/trainer/config/ppo_trainer.yaml`,
`AlgoConfig`); `gdpo_reward_keys`/`gdpo_reward_weights` are not in verl's YAML, hence the `+`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardkit.integrations.verl import FIELDS_KEY, _sole_reference_field

# rewardkit advantage method -> verl algorithm settings
_ESTIMATORS: dict[str, list[str]] = {
    "gdpo": ["algorithm.adv_estimator=gdpo"],
    "gdpo_verl": ["algorithm.adv_estimator=gdpo"],
    "grpo": ["algorithm.adv_estimator=grpo", "algorithm.norm_adv_by_std_in_grpo=true"],
    "grpo_no_std": ["algorithm.adv_estimator=grpo", "algorithm.norm_adv_by_std_in_grpo=false"],
}


def _hydra_list(values: Sequence[Any]) -> str:
    return "[" + ",".join(str(v) for v in values) + "]"


def verl_overrides(spec: Any, spec_path: str | Path, batch: bool = False, remote: str | None = None) -> list[str]:
    """Hydra overrides for `python -m verl.trainer.main_ppo` that train on this spec.

    GDPO gets the per-reward keys and weights (verl normalizes each key in its group); GRPO
    uses `score`, the weighted gated total. By default verl's Reward Loop calls `compute_score`
    once per sample (naive manager); `batch` selects rewardkit's Reward Loop manager
    (`verl_manager.py`), which scores each reward worker's chunk with one `compute_score_batch` call.
    `remote` (a `rewardkit serve` URL) moves the scoring onto that server.
    """
    import rewardkit.integrations.verl as module

    method = str(spec.config.advantage.method)
    if method not in _ESTIMATORS:
        raise ValueError(f"advantage method {method!r} has no verl estimator (supported: {', '.join(_ESTIMATORS)})")
    lines = list(_ESTIMATORS[method])
    if method.startswith("gdpo"):
        lines += [f"+algorithm.gdpo_reward_keys={_hydra_list(spec.reward_names)}",
                  f"+algorithm.gdpo_reward_weights={_hydra_list([float(w) for w in spec.weights])}"]
    here = Path(module.__file__).resolve()
    if batch:
        lines += ["reward.reward_manager.source=importlib", "reward.reward_manager.name=RewardkitRewardManager",
                  f"reward.reward_manager.module.path={here.with_name('verl_manager.py')}"]
    else:
        lines += ["reward.reward_manager.name=naive"]
    lines += [
        f"reward.custom_reward_function.path={here}",
        f"reward.custom_reward_function.name={'compute_score_batch' if batch else 'compute_score'}",
        f"+reward.custom_reward_function.reward_kwargs.spec={Path(spec_path).resolve()}",
    ]
    if remote:
        lines.append(f"+reward.custom_reward_function.reward_kwargs.remote={remote}")
    train = getattr(spec, "train", None)
    model = _model_path(train.model, Path(spec_path)) if train is not None else None
    if any(getattr(r.verifier.args, "unit", None) == "tokens" for r in spec.rewards):
        # token-length rewards count with the policy's tokenizer (a folder with tokenizer.json)
        lines.append(f"+reward.custom_reward_function.reward_kwargs.tokenizer={model or '<policy tokenizer folder>'}")
    if train is not None:
        lines += [
            f"actor_rollout_ref.model.path={model}",
            f"actor_rollout_ref.rollout.n={train.group_size}",
            f"data.train_batch_size={train.prompts_per_step}",
            f"data.max_response_length={train.max_new_tokens}",
            f"actor_rollout_ref.actor.optim.lr={train.lr}",
            f"trainer.total_training_steps={train.steps}",
        ]
    return lines


def _model_path(model: str, spec_path: Path) -> str:
    """A model path next to the spec, made absolute (verl runs from elsewhere); a hub name as is."""
    local = (spec_path.resolve().parent / model) if not Path(model).is_absolute() else Path(model)
    return str(local.resolve()) if local.exists() or model.startswith(("./", "../")) else model


def verl_rows(rows: Sequence[dict[str, Any]], spec: Any = None, prompt_field: str = "prompt",
              data_source: str | None = None, source: str = "data") -> list[dict[str, Any]]:
    """Rows in verl's layout: `data_source`, `prompt` (chat messages), `ability`,
    `reward_model: {style, ground_truth}`, `extra_info: {index, rewardkit_fields}`.

    Every field of the row travels in `extra_info.rewardkit_fields` as JSON (so any nesting survives
    parquet), which `compute_score` reads back. `ground_truth` is the spec's reference field (the one
    data field its verifiers read), as text, for verl's own logs and for other reward functions.
    """
    reference = _sole_reference_field(spec) if spec is not None else None
    name = data_source or (spec.config.name if spec is not None else "rewardkit")
    out = []
    for i, row in enumerate(rows):
        if prompt_field not in row:
            raise KeyError(f"{source}: row {i + 1} has no prompt field {prompt_field!r}; fields: {sorted(row)}")
        prompt = row[prompt_field]
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        truth = row.get(reference) if reference else None
        out.append({
            "data_source": str(row.get("data_source", name)),
            "prompt": messages,
            "ability": name,
            "reward_model": {"style": "rule",
                             "ground_truth": truth if isinstance(truth, str) or truth is None else json.dumps(truth)},
            "extra_info": {"index": i, FIELDS_KEY: json.dumps(row, ensure_ascii=False)},
        })
    return out


def write_verl_parquet(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write verl rows to a parquet file (needs pyarrow: `pip install pyarrow`)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError("writing parquet needs pyarrow: pip install pyarrow") from exc
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(list(rows)), out)
    return out
