"""Warm start: a short supervised pass on demonstrations before RL (`rewardkit warmstart`).

RL can only sharpen what a policy already does sometimes: a group whose completions all score
alike carries no signal. The GDPO paper starts from instruct models; at CPU scale the equivalent
is a tiny model taught, by plain next-token cross-entropy on the completion tokens, to imitate
demonstrations. When the demonstrations are imperfect on purpose (as the paper tasks' are, see
`rewardkit.trainers.paper_tasks`), the warm-started policy succeeds part of the time, which is
where RL begins.

Prompts are rendered and encoded exactly as the RL trainer does (same chat template, same
`prompt_format`), and each demonstration is followed by the end token, so the policy also learns
to stop. The result is a `save_pretrained` folder that a spec's `train.model` can point at.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .batching import build_batch, token_logprobs
from .data import DataError, batch_indices, encode_prompts, load_rows, render_prompt, resolve_path

SUMMARY_FILE = "warmstart.json"


@dataclass(frozen=True)
class WarmStartSettings:
    """How long and how hard to imitate; the defaults suit the tiny CPU models."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 20
    seed: int = 0
    prompt_field: str = "prompt"
    target_field: str = "completion"
    prompt_format: str = "auto"
    max_prompt_tokens: int | None = None
    cpu_threads: int | None = None


def warm_start(model: str | Path, rows: list[dict[str, Any]], out_dir: str | Path,
               settings: WarmStartSettings | None = None, chat_template: str | None = None,
               device: str = "cpu") -> Path:
    """Fine-tune `model` on (prompt, demonstration) rows; write it to `out_dir` and return that.

    The loss is the mean negative log-likelihood of the demonstration tokens (and the end token);
    the learning rate warms up linearly, then decays on a cosine to 0 at the last step.
    `out_dir/warmstart.json` records the settings and the loss every 10 steps.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    s = settings or WarmStartSettings()
    _check(rows, s)
    threads = torch.get_num_threads()
    if s.cpu_threads:
        torch.set_num_threads(s.cpu_threads)
    try:
        torch.manual_seed(s.seed)
        tokenizer = AutoTokenizer.from_pretrained(str(model))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        policy: Any = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32)
        policy.to(device).train()
        texts = [render_prompt(r[s.prompt_field], tokenizer, s.prompt_format, chat_template) for r in rows]
        prompts = encode_prompts(texts, tokenizer, s.max_prompt_tokens)
        eos = tokenizer.eos_token_id
        targets = [list(ids) + [eos] for ids in
                   tokenizer([str(r[s.target_field]) for r in rows], add_special_tokens=False)["input_ids"]]
        optimizer = torch.optim.AdamW(policy.parameters(), lr=s.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(s))
        losses: list[tuple[int, float]] = []
        started = time.perf_counter()
        for step in range(1, s.steps + 1):
            idx = batch_indices(len(rows), min(s.batch_size, len(rows)), step, s.seed)
            batch = build_batch([prompts[i] for i in idx], [targets[i] for i in idx], list(range(len(idx))),
                                tokenizer.pad_token_id, torch.device(device))
            logp, _ = token_logprobs(policy, batch, 1.0)
            mask = batch.mask.float()
            loss = -(logp * mask).sum() / mask.sum().clamp(min=1)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            if step % 10 == 0 or step == s.steps:
                losses.append((step, round(float(loss.detach()), 4)))
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        policy.save_pretrained(out)
        tokenizer.save_pretrained(out)
        summary = {"from": str(model), "rows": len(rows), "settings": asdict(s), "loss": losses,
                   "seconds": round(time.perf_counter() - started, 1)}
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
        return out
    finally:
        torch.set_num_threads(threads)


def _lr_factor(s: WarmStartSettings):  # -> Callable[[int], float]
    def factor(done: int) -> float:
        if done < s.warmup_steps:
            return (done + 1) / s.warmup_steps
        progress = (done - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _check(rows: list[dict[str, Any]], s: WarmStartSettings) -> None:
    if not rows:
        raise DataError("warm start: no demonstration rows")
    for i, row in enumerate(rows):
        for field in (s.prompt_field, s.target_field):
            if field not in row:
                raise DataError(f"warm start: row {i + 1} has no field {field!r} (fields: {sorted(row)})")


def warm_start_spec(spec_path: str, data: str, out_dir: str, from_model: str | None = None,
                    settings: WarmStartSettings | None = None) -> Path:
    """`rewardkit warmstart`: the spec's `train:` section says how prompts are rendered (prompt
    field, format, chat template) and, unless `from_model` is given, which model to start from."""
    from rewardkit import train_inputs
    from rewardkit.spec import load_spec

    spec = load_spec(spec_path)
    try:
        train = spec.train
        spec_dir = Path(spec_path).resolve().parent
        s = settings or WarmStartSettings()
        template = None
        if train is not None:
            s = WarmStartSettings(**{**asdict(s), "prompt_field": train.prompt_field,
                                     "prompt_format": train.prompt_format,
                                     "max_prompt_tokens": train.max_prompt_tokens})
            template = train_inputs.chat_template(train.chat_template, spec_dir)
        source = from_model or (train.model if train is not None else None)
        if source is None:
            raise DataError(f"{spec_path}: no `train:` section, so pass the model to start from (--from)")
        path = resolve_path(data, spec_dir)
        if path is None:
            raise DataError(f"warm start: {data!r} not found next to {spec_path} nor in {Path.cwd()}")
        return warm_start(train_inputs.model_source(source, spec_dir, "--from"), load_rows(path), out_dir, s, template)
    finally:
        spec.close()

