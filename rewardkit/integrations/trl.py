"""A rewardkit spec as TRL `GRPOTrainer` reward functions, reward weights and GRPOConfig settings.

Where one machine is not enough, the same spec trains with TRL (accelerate/DeepSpeed, vLLM server).
With a `train:` section, one call builds the trainer (model, tokenizer, data, rewards, config):

    from rewardkit.spec import load_spec
    from rewardkit.integrations.trl import build_trl_trainer

    build_trl_trainer(load_spec("specs/demo.yaml"), use_vllm=True, vllm_mode="server").train()

or, assembling TRL's pieces yourself:

    from trl import GRPOConfig, GRPOTrainer
    from rewardkit import ScoringContext
    from rewardkit.integrations.trl import grpo_config_kwargs, trl_reward_functions

    config = GRPOConfig(output_dir="out", **grpo_config_kwargs(spec, train=False))
    rewards = trl_reward_functions(spec, ScoringContext(tokenizer=tokenizer))  # tokenizer: token lengths
    trainer = GRPOTrainer(model=..., reward_funcs=rewards, args=config, train_dataset=..., processing_class=tokenizer)

TRL calls its reward functions one after the other, each on the whole batch. A rewardkit gate,
though, makes reward j depend on other rewards' scores for the same sample, so the K functions
returned here share one scorer: the first call of a batch scores the whole spec once (gates, error
policy, parallel verifiers), and every function hands back its own column. A cell the spec
excludes (NaN: a verifier error under `on_error: exclude`) becomes `None`, which TRL excludes
from its normalization in the same way.

This module imports neither torch nor trl at import time; `make_grpo_config` and
`build_trl_trainer` import trl (and datasets, transformers) when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rewardkit import train_inputs
from rewardkit.advantages import ADVANTAGE_METHODS, advantage_method
from rewardkit.errors import TrainSetupError, UnsupportedByTRL
from rewardkit.verifier import ScoringContext

if TYPE_CHECKING:
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.scoring import Cell, ScoreTable
    from rewardkit.spec import Spec
    from rewardkit.train_config import TrainConfig

# TRL's GRPOTrainer adds this constant to every standard deviation (grpo_trainer.py, `+ 1e-4`).
TRL_STD_EPS = 1e-4

# Keyword arguments TRL passes to reward functions that are not data columns.
_CONTROL_KWARGS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})


class SpecScorer:
    """Scores one TRL batch with the whole spec, once, and serves its columns to K reward functions.

    The cache is keyed by the identity of the `prompts` and `completions` lists TRL passes (the same
    objects for every reward function of one batch); the scorer keeps them referenced so that their
    ids cannot be reused, and drops the batch once every column has been served.
    """

    def __init__(self, spec: Spec, ctx: ScoringContext | None = None, log_reasons: bool = True) -> None:
        self.spec = spec
        self.ctx = ctx
        self.log_reasons = log_reasons
        self.reward_names: list[str] = list(spec.reward_names)
        self.scoring_calls = 0  # how many times the spec was scored (tests check: once per batch)
        self._batch: tuple[Sequence[Any], Sequence[Any]] | None = None
        self._table: ScoreTable | None = None
        self._served: set[int] = set()

    def column(self, index: int, prompts: Sequence[Any], completions: Sequence[Any],
               completion_ids: Sequence[Any] | None, kwargs: dict[str, Any]) -> list[float | None]:
        """Reward `index` for every completion of this batch, scoring the spec if the batch is new."""
        cached = self._batch
        if cached is None or cached[0] is not prompts or cached[1] is not completions or index in self._served:
            self._table = self._score(prompts, completions, completion_ids, kwargs)
            self._batch = (prompts, completions)
            self._served = set()
        self._served.add(index)
        table = self._table
        assert table is not None
        values = [_none_if_nan(v) for v in table.values[:, index].tolist()]
        if len(self._served) == len(self.reward_names):
            self._batch, self._table, self._served = None, None, set()
        return values

    def _score(self, prompts: Sequence[Any], completions: Sequence[Any],
               completion_ids: Sequence[Any] | None, kwargs: dict[str, Any]) -> ScoreTable:
        samples = build_samples(prompts, completions, completion_ids, kwargs)
        table = self.spec.score(samples, self._context())
        self.scoring_calls += 1
        _log_table(table, self.reward_names, kwargs, self.log_reasons)
        return table

    def _context(self) -> ScoringContext | None:
        # A fresh cache per batch: verifiers share runs within a batch, not across batches.
        if self.ctx is None:
            return None
        return ScoringContext(tokenizer=self.ctx.tokenizer, sandbox=self.ctx.sandbox, workers=self.ctx.workers)


class RewardColumn:
    """One TRL reward function: reward `index` of the spec, named after it in TRL's logs."""

    def __init__(self, scorer: SpecScorer, index: int) -> None:
        self.scorer = scorer
        self.index = index
        self.__name__ = scorer.reward_names[index]  # TRL logs `rewards/<__name__>/mean`

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 completion_ids: Sequence[Any] | None = None, **kwargs: Any) -> list[float | None]:
        return self.scorer.column(self.index, prompts, completions, completion_ids, kwargs)

    def __repr__(self) -> str:
        return f"RewardColumn({self.__name__!r})"


def trl_reward_functions(spec: Spec, ctx: ScoringContext | None = None,
                         log_reasons: bool = True) -> list[RewardColumn]:
    """TRL `reward_funcs` for `spec`: one callable per reward, in spec order, sharing one scorer.

    `ctx` carries the policy tokenizer (for token-length verifiers), a sandbox and worker count;
    without it the spec uses its own defaults. With `log_reasons`, each reward's reason (and error)
    per completion goes to TRL's completions table through its `log_extra` hook, and the share of
    gated and errored cells to its metrics through `log_metric`.

    Example: TRL calls each function with the batch's prompts, completions and data columns; a
    gated reward sees the other rewards' scores for the same completion.

    >>> from rewardkit import load_spec_text
    >>> spec = load_spec_text('''
    ... version: 1
    ... name: demo
    ... rewards:
    ...   - {name: correct, verifier: exact_match, args: {reference: answer}}
    ...   - {name: brief, verifier: length_limit, args: {unit: words, max_length: 3}, when: correct >= 1}
    ... ''')
    >>> correct, brief = trl_reward_functions(spec)
    >>> batch = {"prompts": ["2+2?", "2+2?"], "completions": ["4", "five"], "answer": ["4", "4"]}
    >>> correct(**batch), brief(**batch), reward_weights(spec)
    ([1.0, 0.0], [1.0, 0.0], [1.0, 1.0])
    >>> spec.close()
    """
    scorer = SpecScorer(spec, ctx, log_reasons=log_reasons)
    return [RewardColumn(scorer, j) for j in range(len(scorer.reward_names))]


def reward_weights(spec: Spec) -> list[float]:
    """TRL `reward_weights`, in the same order as `trl_reward_functions(spec)`."""
    return [float(w) for w in spec.weights]


def grpo_config_kwargs(spec: Spec, strict: bool = True, train: bool = True) -> dict[str, Any]:
    """GRPOConfig settings that make TRL train like the spec: advantage method, weights, and
    (with `train`, when the spec has a `train:` section) the rollout and optimizer settings.

    GDPO is TRL's `multi_objective_aggregation="normalize_then_sum"` (per-reward group
    normalization, weighted sum, batch normalization); GRPO is `sum_then_normalize` with
    `scale_rewards="group"`; `grpo_no_std` is `scale_rewards="none"`. TRL's epsilon is fixed at
    1e-4 and its GDPO always normalizes over the batch; with `strict`, a spec asking otherwise
    raises `UnsupportedByTRL` rather than training with silently different advantages.
    """
    advantage = spec.config.advantage
    entry = advantage_method(advantage.method)
    if entry.trl is None:
        supported = [m.name for m in ADVANTAGE_METHODS.values() if m.trl is not None]
        raise UnsupportedByTRL(f"advantage method {entry.name!r} has no TRL equivalent "
                               f"(supported: {', '.join(supported)})")
    if strict:
        if entry.default_eps is not None and not math.isclose(float(advantage.eps), TRL_STD_EPS, rel_tol=1e-9):
            raise UnsupportedByTRL(f"advantage.eps is {advantage.eps}, but TRL's GRPOTrainer always adds "
                                   f"{TRL_STD_EPS} to standard deviations; set `eps: {TRL_STD_EPS}` in the spec "
                                   "or pass strict=False to accept different advantages")
        if entry.batch_norm and not advantage.batch_norm:
            raise UnsupportedByTRL("advantage.batch_norm is false, but TRL's normalize_then_sum always "
                                   "normalizes the summed advantages over the batch; set `batch_norm: true` "
                                   "or pass strict=False to accept different advantages")
    kwargs: dict[str, Any] = {}
    if train and spec.train is not None:
        kwargs.update(train_config_kwargs(spec.train, strict=strict))
    kwargs.update(entry.trl)
    kwargs["reward_weights"] = reward_weights(spec)
    return kwargs


_SCHEDULES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}
_OPTIMIZERS = {"adamw": "adamw_torch", "adam": "adamw_torch", "sgd": "sgd"}
_LOSS_TYPES = {"token_mean": "dapo", "sequence_mean": "grpo"}


def train_config_kwargs(train: TrainConfig, strict: bool = True) -> dict[str, Any]:
    """GRPOConfig fields for a spec's `train:` section (`rewardkit.train_config.TrainConfig`).

    One rewardkit step is one generation batch of `prompts_per_step * group_size` completions,
    split into `grad_accum` micro-batches per optimizer update and passed over `updates_per_batch`
    times: in TRL terms `per_device_train_batch_size = batch / grad_accum` on one process (divide
    it by the number of processes on more), `gradient_accumulation_steps = grad_accum`,
    `num_iterations = updates_per_batch`. Settings TRL has no field for (a separate `ref_model`,
    `max_prompt_tokens`, `adam` with weight decay) raise with `strict`, else are dropped. Evaluation
    settings are not mapped: pass `eval_dataset` and `eval_strategy` to TRL yourself. `lora` becomes
    the trainer's `peft_config` (`build_trl_trainer`); how the compact trainer computes
    (`sampler`, `logprob_chunk_tokens`) changes no result and has no TRL counterpart here.
    """
    batch = train.prompts_per_step * train.group_size
    if batch % train.grad_accum:
        _unsupported(strict, f"train.grad_accum ({train.grad_accum}) must divide prompts_per_step * "
                             f"group_size ({batch}) for TRL's per-device batch size")
    if train.ref_model is not None:
        _unsupported(strict, "train.ref_model: TRL's reference model is always the initial policy")
    if train.max_prompt_tokens is not None:
        _unsupported(strict, "train.max_prompt_tokens: TRL 1.x has no prompt truncation setting; "
                             "truncate the data instead")
    if train.optimizer == "adam" and train.weight_decay:
        _unsupported(strict, "train.optimizer 'adam' with weight decay: TRL offers only decoupled (adamw) decay")
    kwargs: dict[str, Any] = {
        "num_generations": train.group_size,
        "per_device_train_batch_size": max(1, batch // train.grad_accum),
        "gradient_accumulation_steps": train.grad_accum,
        "num_iterations": train.updates_per_batch,
        "max_completion_length": train.max_new_tokens,
        "temperature": train.temperature,
        "top_p": train.top_p,
        "top_k": train.top_k,
        "learning_rate": train.lr,
        "weight_decay": train.weight_decay,
        "adam_beta1": train.betas[0],
        "adam_beta2": train.betas[1],
        "optim": _OPTIMIZERS[train.optimizer],
        "lr_scheduler_type": _SCHEDULES[train.lr_schedule],
        "warmup_steps": train.warmup_steps,
        "max_grad_norm": train.max_grad_norm if train.max_grad_norm is not None else 0.0,
        "epsilon": train.clip_low,
        "epsilon_high": train.clip_high,
        "beta": train.kl_coef,
        "loss_type": _LOSS_TYPES[train.loss_aggregation],
        "max_steps": train.steps,
        "seed": train.seed,
        "bf16": train.dtype == "bfloat16",
        "fp16": train.dtype == "float16",
        "use_cpu": train.device == "cpu",
        "use_vllm": train.backend == "vllm",
        "vllm_gpu_memory_utilization": train.vllm_gpu_memory_utilization,
        "save_steps": train.checkpoint_every or train.steps,
        "save_total_limit": train.keep_checkpoints,
        "gradient_checkpointing": train.gradient_checkpointing,
    }
    if train.output_dir is not None:
        kwargs["output_dir"] = train.output_dir
    return kwargs


def _unsupported(strict: bool, message: str) -> None:
    if strict:
        raise UnsupportedByTRL(message + " (pass strict=False to drop it)")


def make_grpo_config(spec: Spec, strict: bool = True, **overrides: Any) -> GRPOConfig:
    """A `trl.GRPOConfig` with the spec's settings; `overrides` are any other GRPOConfig fields."""
    from trl import GRPOConfig

    return GRPOConfig(**{**grpo_config_kwargs(spec, strict=strict), **overrides})


def build_trl_trainer(spec: Spec, trainer_cls: type[GRPOTrainer] | None = None, strict: bool = True,
                      **overrides: Any) -> GRPOTrainer:
    """A `trl.GRPOTrainer` for a spec with a `train:` section: its model, tokenizer, data, rewards.

    The data rows are read and checked as `rewardkit train` does (a missing field names the
    reward, the field and the row); the prompt field becomes TRL's `prompt` column and every other
    field reaches the rewards. `trainer_cls` may be a GRPOTrainer subclass; `overrides` are
    GRPOConfig fields (e.g. `output_dir`, `report_to`). Launch with `accelerate launch` as usual.
    """
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOTrainer

    train = spec.train
    if train is None:
        raise TrainSetupError(f"{spec.path}: the spec has no `train:` section to build a TRL trainer from")
    spec_dir = train_inputs.spec_folder(spec)
    model = train_inputs.model_source(train.model, spec_dir)
    tokenizer_source = (train_inputs.model_source(train.tokenizer, spec_dir, "train.tokenizer")
                        if train.tokenizer else model)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    if train.chat_template is not None:
        tokenizer.chat_template = train_inputs.chat_template(train.chat_template, spec_dir)
    rows = train_inputs.data_rows(train, spec, spec_dir)
    dataset = Dataset.from_list([_trl_row(row, train.prompt_field, train.prompt_format) for row in rows])
    config = make_grpo_config(spec, strict=strict, **{"output_dir": f"runs/{spec.config.name}-trl", **overrides})
    ctx = ScoringContext(tokenizer=tokenizer, workers=train.score_workers)
    cls = trainer_cls or GRPOTrainer
    reward_funcs: list[Any] = list(trl_reward_functions(spec, ctx))
    extra: dict[str, Any] = {}
    if train.lora is not None:  # TRL then also takes the adapters-off policy as its KL reference
        from peft import LoraConfig

        extra["peft_config"] = LoraConfig(r=train.lora.r, lora_alpha=train.lora.alpha,  # type: ignore[arg-type]
                                          lora_dropout=train.lora.dropout,
                                          target_modules=train.lora.target_modules, task_type="CAUSAL_LM")
    return cls(model=model, reward_funcs=reward_funcs, args=config,
               train_dataset=dataset, processing_class=tokenizer, **extra)


def _trl_row(row: dict[str, Any], prompt_field: str, prompt_format: str) -> dict[str, Any]:
    out = {key: value for key, value in row.items() if key != prompt_field}
    prompt = row[prompt_field]
    if prompt_format == "chat" and isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    out["prompt"] = prompt
    return out


def build_samples(prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Sequence[Any] | None,
                  kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """rewardkit samples from TRL's reward-function arguments: prompt, completion and data columns.

    TRL passes every dataset column (already repeated per generation) as a list keyword argument;
    the control arguments (`trainer_state`, `log_extra`, ...) are not data and are left out.
    """
    n = len(completions)
    columns = {key: value for key, value in kwargs.items()
               if key not in _CONTROL_KWARGS and isinstance(value, Sequence) and not isinstance(value, str)
               and len(value) == n}
    samples: list[dict[str, Any]] = []
    for i in range(n):
        sample = {key: value[i] for key, value in columns.items()}
        sample["prompt"] = prompts[i]
        sample["completion"] = completions[i]
        if completion_ids is not None:
            sample["completion_ids"] = completion_ids[i]
        samples.append(sample)
    return samples


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _log_table(table: ScoreTable, names: list[str], kwargs: dict[str, Any], log_reasons: bool) -> None:
    """Per-completion reasons into TRL's completions table, gated/error shares into its metrics."""
    if not log_reasons:
        return
    log_extra: Callable[[str, list[Any]], None] | None = kwargs.get("log_extra")
    log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
    n = len(table.cells)
    for j, name in enumerate(names):
        cells = [row[j] for row in table.cells]
        if log_extra is not None:
            log_extra(f"{name}/reason", [_reason(cell) for cell in cells])
        if log_metric is not None and n:
            log_metric(f"rewardkit/{name}/gated", sum(c.gated for c in cells) / n)
            log_metric(f"rewardkit/{name}/errors", sum(c.error is not None for c in cells) / n)


def _reason(cell: Cell) -> str:
    error, reason = cell.error, cell.reason
    return f"error: {error}" if error is not None and error != reason else reason
