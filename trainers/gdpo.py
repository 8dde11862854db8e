"""The compact GDPO trainer: one spec file in, a trained policy out.

Read top to bottom, a step is:
  1. sample `prompts_per_step` rows (a pure function of seed and step, so resume is exact),
  2. `generate`: `group_size` completions per prompt (transformers, or vLLM on a GPU),
  3. `score`: every reward of the spec on every completion (gates, error policy, sandbox),
  4. `advantages`: GDPO or GRPO from `rewardkit.advantages`, one value per completion,
  5. `update`: clipped policy-gradient on the completion tokens, optional KL to a reference,
  6. log, evaluate, checkpoint.
`setup`, `generate`, `score`, `advantages`, `update` and `train_step` are public so that benches
and integrations can time or reuse one phase; `train` is what `rewardkit train SPEC` calls.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import math
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from pydantic import ValidationError

from rewardkit import train_inputs
from rewardkit.advantages import compute_advantages
from rewardkit.errors import TrainSetupError
from rewardkit.scoring import ScoreTable
from rewardkit.spec import Spec, load_spec
from rewardkit.spec_models import AdvantageConfig
from rewardkit.train_config import TrainConfig
from rewardkit.verifier import ScoringContext

from . import checkpoint, logprobs, lora, runlog, sample_log
from .batching import Batch, build_batch, plan_chunks, token_logprobs
from .data import batch_indices, encode_prompts, render_prompt
from .error_guard import ErrorGuard
from .hack_signals import HackSignals, gated_on
from .loss import policy_loss
from .rollout import (
    Engine,
    SamplingSettings,
    TransformersEngine,
    VLLMEngine,
    choose_backend,
)
from .signal_watch import SignalWatch

# Settings that may change between a run and its resume without breaking exactness.
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "keep_checkpoints", "eval_every", "output_dir", "progress",
                     "tensorboard", "score_workers", "max_error_share", "error_window"}


@dataclass
class Run:
    """Everything a training run holds; `train_step(run)` advances it by one step."""

    spec: Spec
    cfg: TrainConfig
    adv: AdvantageConfig
    model: Any
    tokenizer: Any
    ref_model: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    engine: Engine
    backend: str
    device: torch.device
    rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]
    output_dir: Path
    model_path: str
    step: int = 0
    stop_requested: bool = False
    chat_template: str | None = None


@dataclass
class Rollouts:
    """One step's samples: `group_size` completions for each of the prompt rows, prompt-major."""

    rows: list[dict[str, Any]]
    prompt_ids: list[list[int]]  # one per group
    completion_ids: list[list[int]]  # groups * group_size
    texts: list[str]
    group_size: int
    truncated: list[bool]  # True where generation hit max_new_tokens without an end token

    def samples(self, prompt_field: str) -> list[dict[str, Any]]:
        """What the verifiers see: the data row, `prompt`, and `completion` (text, or a message
        list when the prompt was a chat conversation)."""
        out = []
        for i, text in enumerate(self.texts):
            row = self.rows[i // self.group_size]
            prompt = row[prompt_field]
            completion: Any = [{"role": "assistant", "content": text}] if isinstance(prompt, list) else text
            out.append({**row, "prompt": prompt, "completion": completion})
        return out


# --- setup -----------------------------------------------------------------------------------------


def _step_seed(seed: int, step: int, salt: int = 0) -> int:
    """Independent, reproducible seed for one step: resume needs only the step number."""
    return int(np.random.SeedSequence([seed, step, salt]).generate_state(1)[0])


def _apply_overrides(spec: Spec, overrides: dict[str, Any] | None) -> tuple[TrainConfig, AdvantageConfig]:
    """`--set key=value` pairs: `train.<field>` (or a bare train field) and `advantage.<field>`.
    String values are read as YAML, so `--set lr=1e-3` and `--set ref_model=null` work."""
    train = spec.train if isinstance(spec.train, TrainConfig) else spec.config.train
    if train is None:
        raise TrainSetupError(f"{spec.path}: the spec has no `train:` section; add one to use `rewardkit train`")
    train_data = train.model_dump() if isinstance(train, TrainConfig) else dict(train)
    adv_data = spec.config.advantage.model_dump()
    for key, raw in (overrides or {}).items():
        value = yaml.safe_load(raw) if isinstance(raw, str) else raw
        section, _, name = key.rpartition(".")
        if section in ("", "train"):
            train_data[name] = value
        elif section == "advantage":
            adv_data[name] = value
        else:
            raise TrainSetupError(f"cannot override {key!r}: use train.<field> or advantage.<field>")
    return (_validated(TrainConfig, train_data, "train", spec.path, overrides),
            _validated(AdvantageConfig, adv_data, "advantage", spec.path, overrides))


def _validated(model: Any, data: dict[str, Any], section: str, path: str, overrides: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(model, section, e) for e in exc.errors())
        raise TrainSetupError(f"{path}: invalid setting after --set {overrides}: {problems}") from None


def _problem(model: Any, section: str, error: Any) -> str:
    """One validation error of an override, with validate's did-you-mean for an unknown key."""
    where = ".".join([section, *map(str, error["loc"])])
    if error["type"] == "extra_forbidden":
        fields = list(model.model_fields)
        close = difflib.get_close_matches(str(error["loc"][-1]), fields, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{where}: unknown key {error['loc'][-1]!r}{hint} (valid keys: {', '.join(fields)})"
    return f"{where}: {error['msg']} (got {error.get('input')!r})"


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _pick_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _lr_lambda(cfg: TrainConfig):  # -> Callable[[int], float]
    def factor(done: int) -> float:  # `done` optimizer-schedule steps taken so far
        if cfg.warmup_steps and done < cfg.warmup_steps:
            return (done + 1) / cfg.warmup_steps
        if cfg.lr_schedule == "constant":
            return 1.0
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress = min(1.0, (done - cfg.warmup_steps) / span)
        if cfg.lr_schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _make_optimizer(cfg: TrainConfig, model: Any) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    # fused: one kernel for all parameters instead of a loop over them (5x faster on a tiny model's
    # CPU step); only for float parameters on devices that have the kernel
    fused = all(p.is_floating_point() for p in params) and all(p.device.type in ("cpu", "cuda") for p in params)
    return cls(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=fused or None)


def _load_policy(cfg: TrainConfig, base: str, saved: Path | None, dtype: torch.dtype, device: torch.device) -> Any:
    """The policy in training mode: the base weights with fresh or restored LoRA adapters, or the
    whole (restored) model when every weight trains."""
    from transformers import AutoModelForCausalLM

    if cfg.lora is not None and saved is not None and not lora.is_adapter_folder(saved):
        raise TrainSetupError(f"{saved}: train.lora is set but this checkpoint holds a full model, not adapters")
    if cfg.lora is None and saved is not None and lora.is_adapter_folder(saved):
        raise TrainSetupError(f"{saved}: this checkpoint holds LoRA adapters; resume with the run's train.lora")
    model: Any = AutoModelForCausalLM.from_pretrained(base if cfg.lora else (saved or base), dtype=dtype)
    if cfg.gradient_checkpointing:
        # non-reentrant: it needs no input that requires grad, which frozen embeddings under LoRA lack
        if hasattr(model, "activation_checkpointing_enable"):  # the name since transformers 5.2x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.logprob_chunk_tokens:
        try:
            logprobs.check_supported(model)
        except ValueError as exc:
            raise TrainSetupError(str(exc)) from None
    if cfg.lora is not None:
        model = lora.resume(model, saved) if saved is not None else lora.attach(model, cfg.lora)
    return model.to(device).train()


def setup(spec_path: str, resume: str | None = None, overrides: dict[str, Any] | None = None) -> Run:
    """Load spec, data, policy (from a checkpoint when resuming), optimizer and rollout engine."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = load_spec(spec_path)
    cfg, adv = _apply_overrides(spec, overrides)
    if cfg.reward_url:  # one scoring box serves this trainer: the same spec, scored over HTTP
        from rewardkit.client import RewardClient

        spec = RewardClient(cfg.reward_url).scoring_for(spec)  # type: ignore[assignment]
    if cfg.wandb_project and importlib.util.find_spec("wandb") is None:
        raise TrainSetupError(f"{spec.path}: train.wandb_project is set but wandb is not installed "
                              "(pip install wandb), or remove the setting")
    spec_dir = Path(spec_path).resolve().parent
    rows, eval_rows = train_inputs.load_data(cfg, spec, spec_dir)

    restored = checkpoint.load(resume) if resume else None
    output_dir = restored.path.parent.parent if restored else Path(cfg.output_dir or f"runs/{spec.config.name}")
    if restored:
        _warn_config_changes(restored.extra.get("config", {}), cfg)
        if cfg.steps <= restored.step:
            _console(f"warning: train.steps is {cfg.steps} and the checkpoint is at step {restored.step}: "
                     f"nothing left to train; to go on, pass --set steps=N with N > {restored.step}")

    torch.manual_seed(cfg.seed)
    device = _pick_device(cfg.device)
    if device.type == "cpu" and cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)  # process-wide; train() restores it when done
    dtype = _pick_dtype(cfg.dtype, device)
    base = train_inputs.model_source(cfg.model, spec_dir)
    model_path = str(restored.model_dir) if restored else base
    tokenizer = AutoTokenizer.from_pretrained(
        train_inputs.model_source(cfg.tokenizer, spec_dir, "train.tokenizer") if cfg.tokenizer else model_path
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = _load_policy(cfg, base, restored.model_dir if restored else None, dtype, device)
    ref_model: Any = None
    if cfg.kl_coef > 0 and not (cfg.lora and cfg.ref_model is None):  # LoRA: the base is the reference
        ref_source = train_inputs.model_source(cfg.ref_model or cfg.model, spec_dir, "train.ref_model")
        ref_model = AutoModelForCausalLM.from_pretrained(ref_source, dtype=dtype)
        ref_model.to(device).eval().requires_grad_(False)

    optimizer = _make_optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    if restored:
        optimizer.load_state_dict(restored.optimizer)
        scheduler.load_state_dict(restored.scheduler)

    backend = choose_backend(cfg.backend, device)
    if backend == "vllm" and cfg.lora is not None:
        if cfg.backend == "vllm":
            raise TrainSetupError(f"{spec.path}: train.lora with backend vllm is not supported yet "
                                  "(the engine takes whole weights); use backend: transformers")
        backend = "transformers"
    eos_ids = _eos_ids(model, tokenizer)
    engine: Engine
    if backend == "vllm":
        engine = VLLMEngine(model_path, dtype=str(dtype).removeprefix("torch."),
                            gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                            max_model_len=(cfg.max_prompt_tokens or 1024) + cfg.max_new_tokens,
                            seed=cfg.seed, eos_ids=eos_ids)
    else:
        engine = TransformersEngine(model, eos_ids, tokenizer.pad_token_id, sampler=cfg.sampler)
    run = Run(spec=spec, cfg=cfg, adv=adv, model=model, tokenizer=tokenizer, ref_model=ref_model,
              optimizer=optimizer, scheduler=scheduler, engine=engine, backend=backend, device=device,
              rows=rows, eval_rows=eval_rows, output_dir=output_dir, model_path=base,
              step=restored.step if restored else 0,
              chat_template=train_inputs.chat_template(cfg.chat_template, spec_dir))
    if restored:
        checkpoint.set_rng_state(restored.rng)  # last: model loading above may draw random numbers
    return run


def _clear_earlier_run(output_dir: Path) -> None:
    """A fresh run owns its folder: an earlier run's checkpoints would otherwise be pruned in place
    of the new ones, and `--resume DIR` would pick the old run's newest step."""
    old = checkpoint.list_checkpoints(output_dir)
    if old:
        print(f"{output_dir} holds an earlier run (checkpoints up to {old[-1].name}): starting over there "
              f"(to continue it instead: --resume {output_dir})", file=sys.stderr)
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(output_dir / "tensorboard", ignore_errors=True)
    shutil.rmtree(output_dir / sample_log.FOLDER, ignore_errors=True)
    (output_dir / runlog.WANDB_ID_FILE).unlink(missing_ok=True)  # a new run, not the old W&B run


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    return found


def _warn_config_changes(saved: dict[str, Any], cfg: TrainConfig) -> None:
    free = RESUMABLE_CHANGES - ({"steps"} if cfg.lr_schedule != "constant" else set())  # decay spans `steps`
    changed = [k for k, v in cfg.model_dump(mode="json").items()
               if k in saved and saved[k] != v and k not in free]
    if changed:
        warnings.warn(f"resuming with changed settings {changed}: the run will not match an uninterrupted one",
                      stacklevel=3)


# --- the four phases -------------------------------------------------------------------------------


def _prompt_ids(run: Run, rows: Sequence[dict[str, Any]]) -> list[list[int]]:
    cfg = run.cfg
    texts = [render_prompt(r[cfg.prompt_field], run.tokenizer, cfg.prompt_format, run.chat_template) for r in rows]
    return encode_prompts(texts, run.tokenizer, cfg.max_prompt_tokens)


def generate(run: Run, rows: Sequence[dict[str, Any]], n: int, seed: int, greedy: bool = False) -> Rollouts:
    """`n` completions for each row's prompt, decoded for the verifiers."""
    cfg = run.cfg
    prompt_ids = _prompt_ids(run, rows)
    sampling = SamplingSettings(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.top_k, greedy)
    completions = run.engine.generate(prompt_ids, n, sampling, seed)
    eos = _eos_ids(run.model, run.tokenizer)
    truncated = [not (c and c[-1] in eos) for c in completions]
    # Only the final end token is dropped: special tokens inside a completion stay visible, so a
    # verifier sees everything the policy produced (no gaming a length limit with hidden tokens).
    texts = run.tokenizer.batch_decode([c if t else c[:-1] for c, t in zip(completions, truncated, strict=True)],
                                       skip_special_tokens=False)
    return Rollouts(list(rows), prompt_ids, completions, texts, n, truncated)


def score(run: Run, rollouts: Rollouts) -> ScoreTable:
    """Every reward on every completion; failures become cells, never exceptions."""
    ctx = ScoringContext(tokenizer=run.tokenizer, workers=run.cfg.score_workers)
    return run.spec.score(rollouts.samples(run.cfg.prompt_field), ctx)


def advantages(run: Run, table: ScoreTable, group_size: int, lengths: list[int] | None = None) -> np.ndarray:
    """One advantage per completion, `[groups, group_size]`, by the spec's method (`lengths`, the
    completions' token counts, are for methods that weigh by them: `gdpo_verl`)."""
    values = table.values.reshape(-1, group_size, len(table.reward_names))
    grid = None if lengths is None else np.asarray(lengths, dtype=np.float64).reshape(-1, group_size)
    adv = compute_advantages(values, run.spec.weights, method=run.adv.method, eps=run.adv.eps,
                             batch_norm=run.adv.batch_norm, leave_one_out=run.adv.leave_one_out, lengths=grid)
    return np.nan_to_num(np.asarray(adv, dtype=np.float64), nan=0.0)


def _batches(run: Run, rollouts: Rollouts) -> list[Batch]:
    """The update's forward passes: rows grouped by length, at most n / grad_accum rows each."""
    n = len(rollouts.completion_ids)
    prompts = [rollouts.prompt_ids[i // rollouts.group_size] for i in range(n)]
    lengths = [len(p) + len(c) for p, c in zip(prompts, rollouts.completion_ids, strict=True)]
    chunks = plan_chunks(lengths, max_rows=math.ceil(n / run.cfg.grad_accum))
    return [build_batch([prompts[i] for i in rows], [rollouts.completion_ids[i] for i in rows], rows,
                        run.tokenizer.pad_token_id, run.device) for rows in chunks]


def _reference_logprobs(run: Run, batch: Batch) -> torch.Tensor:
    """The KL reference's log-probs: its own model, or under LoRA the policy with adapters off."""
    if run.ref_model is not None:
        return token_logprobs(run.ref_model, batch, run.cfg.temperature, run.cfg.logprob_chunk_tokens)[0]
    with lora.adapters_off(run.model) as base:
        return token_logprobs(base, batch, run.cfg.temperature, run.cfg.logprob_chunk_tokens)[0]


def update(run: Run, rollouts: Rollouts, adv: np.ndarray) -> dict[str, float]:
    """Clipped policy-gradient step(s) on this batch; returns loss, clip fraction, KL, grad norm.

    The loss is `loss.policy_loss` (clipped ratio, optional k3 KL to the reference), summed over
    the micro-batches. With one update per batch pi_old is the current policy (r = 1, no
    clipping), so its log-probs come from the same forward pass; with more, they are computed
    once up front, as are the reference's.
    """
    cfg, model = run.cfg, run.model
    n = len(rollouts.completion_ids)
    a = torch.tensor(adv.reshape(-1), dtype=torch.float32, device=run.device)
    batches = _batches(run, rollouts)
    total_tokens = sum(b.tokens for b in batches)
    denom = float(max(1, total_tokens if cfg.loss_aggregation == "token_mean" else n))

    old_logp: list[torch.Tensor | None] = [None] * len(batches)
    ref_logp: list[torch.Tensor | None] = [None] * len(batches)
    with torch.no_grad():
        for k, batch in enumerate(batches):
            if cfg.updates_per_batch > 1:
                old_logp[k] = token_logprobs(model, batch, cfg.temperature, cfg.logprob_chunk_tokens)[0]
            if cfg.kl_coef > 0:
                ref_logp[k] = _reference_logprobs(run, batch)

    stats = {"loss": 0.0, "clip_fraction": 0.0, "kl": 0.0, "entropy": 0.0, "grad_norm": 0.0}
    for _ in range(cfg.updates_per_batch):
        clipped = kl_sum = ent_sum = loss_sum = 0.0
        for k, batch in enumerate(batches):
            logp, entropy = token_logprobs(model, batch, cfg.temperature, cfg.logprob_chunk_tokens)
            saved = old_logp[k]
            loss, micro = policy_loss(
                logp, saved if saved is not None else logp.detach(), a[batch.rows], batch.mask,
                clip_low=cfg.clip_low, clip_high=cfg.clip_high, normalizer=denom,
                aggregation=cfg.loss_aggregation, ref_logp=ref_logp[k], kl_coef=cfg.kl_coef,
            )
            loss.backward()
            loss_sum += float(loss.detach())
            clipped += micro.clipped_tokens
            kl_sum += micro.kl_sum
            ent_sum += float((entropy.detach() * batch.mask.float()).sum())
        if cfg.max_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        else:
            norm = torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
        tokens = max(1, total_tokens)
        stats["loss"] += loss_sum / cfg.updates_per_batch
        stats["clip_fraction"] += clipped / tokens / cfg.updates_per_batch
        stats["kl"] += kl_sum / tokens / cfg.updates_per_batch
        stats["entropy"] += ent_sum / tokens / cfg.updates_per_batch
        stats["grad_norm"] += float(norm) / cfg.updates_per_batch
    run.scheduler.step()
    if run.backend == "vllm":
        run.engine.sync(model)
    if cfg.kl_coef == 0:
        stats["kl"] = math.nan
    return stats


# --- one step, metrics -----------------------------------------------------------------------------


def reward_metrics(table: ScoreTable, prefix: str = "reward") -> dict[str, float]:
    """Per reward: mean, pass rate, gated share and error count."""
    out: dict[str, float] = {}
    for s in table.summary():
        out[f"{prefix}/{s.name}/mean"] = s.mean
        out[f"{prefix}/{s.name}/pass_rate"] = s.pass_rate
        out[f"{prefix}/{s.name}/gated_share"] = s.gated / max(1, s.count)
        out[f"{prefix}/{s.name}/errors"] = s.errors
    return out


def _advantage_metrics(adv: np.ndarray) -> dict[str, float]:
    flat = adv.reshape(-1)
    flat_groups = np.all(np.isclose(adv, adv[:, :1], atol=1e-9), axis=1)
    return {
        "adv/mean": float(flat.mean()), "adv/std": float(flat.std()),
        "adv/min": float(flat.min()), "adv/max": float(flat.max()),
        "adv/distinct": float(len(np.unique(np.round(flat, 6)))),
        "adv/zero_groups": float(flat_groups.mean()),
    }


def _eval_line(step: int, scores: dict[str, float], names: list[str]) -> str:
    parts = [f"{n} {scores.get(f'eval/{n}/mean', math.nan):.2f} "
             f"(pass {scores.get(f'eval/{n}/pass_rate', math.nan):.2f})" for n in names]
    return f"eval at step {step}: " + ", ".join(parts)


def _console(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_step(run: Run, guard: ErrorGuard | None = None,
               keep_samples: Callable[[int, list[dict[str, Any]]], None] | None = None) -> dict[str, float]:
    """Advance the run by one step; returns that step's metrics (also what gets logged).

    `guard` sees the scores before the update: a reward that fails too often stops the run
    (`RewardErrorsExceeded`) before it trains on them. Every `log_samples_every` steps,
    `keep_samples` gets the step's completions with their scores and advantages."""
    cfg = run.cfg
    step = run.step + 1
    torch.manual_seed(_step_seed(cfg.seed, step))  # anything random outside generation (e.g. dropout)
    rows = [run.rows[i] for i in batch_indices(len(run.rows), cfg.prompts_per_step, step, cfg.seed)]

    t0 = time.perf_counter()
    rollouts = generate(run, rows, cfg.group_size, seed=_step_seed(cfg.seed, step, 1))
    t1 = time.perf_counter()
    table = score(run, rollouts)
    t2 = time.perf_counter()
    if guard is not None:
        guard.observe(step, table)
    adv = advantages(run, table, cfg.group_size, [len(ids) for ids in rollouts.completion_ids])
    if keep_samples is not None and cfg.log_samples_every and step % cfg.log_samples_every == 0:
        keep_samples(step, sample_log.records(step, rollouts.samples(cfg.prompt_field), table, adv,
                                              cfg.group_size, rollouts.truncated))
    lr = float(run.scheduler.get_last_lr()[0])
    stats = update(run, rollouts, adv)
    t3 = time.perf_counter()
    run.step = step

    lengths = np.array([len(c) for c in rollouts.completion_ids], dtype=np.float64)
    metrics: dict[str, float] = {"step": step, "lr": lr, **stats}
    metrics.update(reward_metrics(table))
    metrics.update(_advantage_metrics(adv))
    metrics.update({
        "len/mean": float(lengths.mean()), "len/min": float(lengths.min()), "len/max": float(lengths.max()),
        "len/truncated": float(np.mean(rollouts.truncated)),
        "time/generate": t1 - t0, "time/score": t2 - t1, "time/update": t3 - t2, "time/step": t3 - t0,
    })
    return metrics


def evaluate(run: Run) -> dict[str, float]:
    """Per-reward means on the held-out prompts, one completion each."""
    chunk = max(1, run.cfg.prompts_per_step * run.cfg.group_size)
    tables = []
    for start in range(0, len(run.eval_rows), chunk):
        rollouts = generate(run, run.eval_rows[start : start + chunk], 1,
                            seed=_step_seed(run.cfg.seed, start, 2), greedy=run.cfg.eval_greedy)
        tables.append(score(run, rollouts))
    cells = [row for t in tables for row in t.cells]
    merged = ScoreTable(tables[0].reward_names, cells, tables[0].pass_at)
    return {k: v for k, v in reward_metrics(merged, "eval").items() if k.endswith(("/mean", "/pass_rate"))}


def save_checkpoint(run: Run) -> Path:
    extra = {"spec": run.spec.path, "config": run.cfg.model_dump(mode="json"),
             "advantage": run.adv.model_dump(mode="json")}
    return checkpoint.save(run.output_dir, run.step, run.model, run.tokenizer, run.optimizer, run.scheduler,
                           extra, keep=run.cfg.keep_checkpoints)


# --- the entry point -------------------------------------------------------------------------------


def _quiet_transformers() -> None:
    """No per-load and per-save progress bars: they would bury the training progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def train(spec_path: str, resume: str | None = None, overrides: dict[str, Any] | None = None) -> Path:
    """Train the policy of `spec_path` (`rewardkit train`); returns the run folder.

    `resume` is a checkpoint folder or a run folder (its newest checkpoint); `overrides` maps
    `train.<field>` / `advantage.<field>` to values, as `--set` does.
    """
    threads = torch.get_num_threads()
    if resume is not None:
        overrides = _resumed_overrides(resume, overrides)
    try:
        return _train(spec_path, resume, overrides)
    finally:
        torch.set_num_threads(threads)


def _resumed_overrides(resume: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The run's own `--set` overrides (kept in its config.json) under the ones given now, so that
    `--resume` alone continues the run as it was started."""
    config = checkpoint.find(resume).parent.parent / "config.json"
    saved = json.loads(config.read_text()).get("overrides", {}) if config.exists() else {}
    return {**saved, **{key.removeprefix("train."): value for key, value in (overrides or {}).items()}}


def _train(spec_path: str, resume: str | None, overrides: dict[str, Any] | None) -> Path:
    _quiet_transformers()
    run = setup(spec_path, resume, overrides)
    cfg = run.cfg
    if resume is None:
        _clear_earlier_run(run.output_dir)
    settings = {"spec": str(Path(spec_path).resolve()), "train": cfg.model_dump(mode="json"),
                "advantage": run.adv.model_dump(mode="json"), "backend": run.backend, "device": str(run.device),
                "overrides": {key.removeprefix("train."): value for key, value in (overrides or {}).items()}}
    log = runlog.MetricsLog(run.output_dir, run.step, cfg.tensorboard, cfg.wandb_project, settings)
    (run.output_dir / "config.json").write_text(json.dumps(settings, indent=2, default=str))
    names = run.spec.reward_names
    guard = ErrorGuard(names, cfg.error_window, cfg.max_error_share, _console)

    def keep_samples(step: int, rows: list[dict[str, Any]]) -> None:
        sample_log.write(run.output_dir, step, rows)
        columns, data = sample_log.table_rows(rows, names)
        log.samples(step, columns, data, sample_log.markdown(columns, data))

    watch = SignalWatch(names, _console)
    hacks = HackSignals(names, gated_on(run.spec), _console)
    saved_at = -1
    try:
        with runlog.graceful_interrupt(run), runlog.progress(cfg.progress, cfg.steps, run.step) as report:
            while run.step < cfg.steps and not run.stop_requested:
                metrics = train_step(run, guard, keep_samples)
                watch.observe(run.step, metrics)
                hacks.observe(run.step, metrics)  # adds signal/... numbers to the logged metrics
                if cfg.eval_every and run.eval_rows and (run.step % cfg.eval_every == 0 or run.step == cfg.steps):
                    t = time.perf_counter()
                    scores = evaluate(run)
                    metrics.update(scores)
                    metrics["time/eval"] = time.perf_counter() - t
                    _console(_eval_line(run.step, scores, names))
                log.write(metrics)
                report(run.step, runlog.summary(metrics, names))
                if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0:
                    save_checkpoint(run)
                    saved_at = run.step
        path = save_checkpoint(run) if saved_at != run.step else checkpoint.find(run.output_dir)
        if run.stop_requested:
            print(f"stopped at step {run.step}; resume with: rewardkit train {spec_path} --resume {path}",
                  file=sys.stderr)
            raise runlog.TrainingInterrupted(path)
        if cfg.progress:
            print(runlog.final_report(log.path, names, path / checkpoint.MODEL_DIR), file=sys.stderr)
    finally:
        log.close()
        run.spec.close()
    return run.output_dir
