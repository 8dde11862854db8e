"""`rewardkit sample`: completions from a model or a checkpoint, written in the format `rewardkit
check` reads, made exactly as training makes them: the trainer's prompt rendering (chat template,
`prompt_format`, `max_prompt_tokens`) and sampling settings (`max_new_tokens`, temperature, top-p,
top-k), taken from a spec's `train:` section when one is given, through `gdpo.generate` itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.errors import TrainSetupError
from rewardkit.train_config import TrainConfig
from rewardkit.train_inputs import chat_template, load_rows, resolve_path

from . import checkpoint
from .gdpo import _apply_overrides, _eos_ids, _pick_device, generate
from .rollout import TransformersEngine


@dataclass
class Sampler:
    """What `gdpo.generate` reads from a run: settings, tokenizer, template, engine, model."""

    cfg: TrainConfig
    tokenizer: Any
    chat_template: str | None
    engine: TransformersEngine
    model: Any


def model_folder(path: str) -> str:
    """A model folder or hub id as given; a checkpoint (or a run folder: its newest) as its model."""
    p = Path(path)
    if (p / checkpoint.STATE_FILE).exists() or (p / "checkpoints").is_dir():  # a run folder has a config.json too
        return str(checkpoint.find(p) / checkpoint.MODEL_DIR)
    if p.is_dir() and not (p / "config.json").exists():
        raise TrainSetupError(f"{path}: neither a model folder (no config.json) nor a checkpoint")
    return path


def settings(model: str, data: str, spec_path: str | None,
             overrides: dict[str, Any] | None) -> tuple[TrainConfig, Path]:
    """The spec's train settings (or the defaults) for this model and data, with `--set` applied."""
    extra = {**(overrides or {}), "model": model, "data": data}
    if spec_path is None:
        return TrainConfig.model_validate({k.removeprefix("train."): v for k, v in extra.items()}), Path.cwd()
    from rewardkit.spec import load_spec

    with load_spec(spec_path) as spec:
        cfg, _ = _apply_overrides(spec, extra)
    return cfg, Path(spec_path).resolve().parent


def sample(model: str, data: str, n: int, output: str, *, spec_path: str | None = None,
           overrides: dict[str, Any] | None = None, limit: int | None = None, seed: int = 0,
           greedy: bool = False) -> Path:
    """Write `n` completions for each of the first `limit` rows of `data` to `output` (JSONL)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, spec_dir = settings(model_folder(model), data, spec_path, overrides)
    path = resolve_path(data, spec_dir)
    if path is None:
        raise TrainSetupError(f"--data: {data!r} not found next to the spec nor in {Path.cwd()}")
    rows = load_rows(path)[:limit]
    device = _pick_device(cfg.device)
    tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer or cfg.model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy: Any = AutoModelForCausalLM.from_pretrained(cfg.model)
    policy.to(device).eval()
    engine = TransformersEngine(policy, _eos_ids(policy, tokenizer), tokenizer.pad_token_id, sampler=cfg.sampler)
    run: Any = Sampler(cfg, tokenizer, chat_template(cfg.chat_template, spec_dir), engine, policy)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    chunk = max(1, cfg.prompts_per_step)
    with out.open("w", encoding="utf-8") as handle:
        for start in range(0, len(rows), chunk):
            rollouts = generate(run, rows[start : start + chunk], n, seed=seed + start, greedy=greedy)
            for row, truncated in zip(rollouts.samples(cfg.prompt_field), rollouts.truncated, strict=True):
                handle.write(json.dumps({**row, "_truncated": truncated}, ensure_ascii=False, default=str) + "\n")
    return out
