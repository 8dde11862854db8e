"""The `train:` section of a spec: everything `rewardkit train` needs besides the rewards.

It lives in the core (no torch import) so that `rewardkit validate` checks a training setup
without the training extra installed, and so that a typo fails at load time with file and line
instead of an hour into a run.

Relative paths (`model`, `tokenizer`, `ref_model`, `data`, `eval_data`, a `chat_template` file)
are looked up next to the spec file first, then in the current directory; a `model` found in
neither place is taken as a Hugging Face hub id. `output_dir` is relative to the current directory.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class LoraSettings(BaseModel):
    """LoRA adapters (through `peft`): only these low-rank matrices are trained, saved and resumed."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, description="Rank of each adapter's two matrices.")
    alpha: float = Field(32.0, gt=0, description="Scale: an adapter's update is multiplied by alpha / r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapters' input while training.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description="Module names that get adapters (e.g. [q_proj, v_proj]); all-linear: every linear layer "
        "but the output head.",
    )


class TrainConfig(BaseModel):
    """Settings of the compact GDPO trainer (`rewardkit.trainers.gdpo`)."""

    model_config = ConfigDict(extra="forbid")

    # --- model and tokenizer ----------------------------------------------------------------------
    model: str = Field(
        description="Policy to train: a local folder written by `save_pretrained` or a hub id; "
        "loaded with `AutoModelForCausalLM.from_pretrained`."
    )
    tokenizer: str | None = Field(None, description="Tokenizer folder or hub id; default: the model's.")
    chat_template: str | None = Field(
        None,
        description="A Jinja chat template (inline text, or a path to a file holding one) that replaces "
        "the tokenizer's own; used when prompts are chat messages or `prompt_format` is `chat`.",
    )
    prompt_format: Literal["auto", "raw", "chat"] = Field(
        "auto",
        description="auto: chat-message prompts go through the chat template, text prompts are used as "
        "they are; raw: text prompts only, never templated; chat: text prompts are wrapped as one user "
        "message and templated.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Parameter dtype; auto = float32 on CPU, bfloat16 on a GPU that supports it."
    )
    device: str = Field("auto", description="`auto` (cuda when available, else cpu), `cpu`, `cuda` or `cuda:N`.")
    backend: Literal["auto", "transformers", "vllm"] = Field(
        "auto",
        description="Rollout engine: vllm when it is installed and a GPU is present (auto), "
        "or transformers `generate` (always available).",
    )
    sampler: Literal["auto", "loop", "static", "generate"] = Field(
        "auto",
        description="How the transformers engine samples: loop (a cached decoding loop), static (a static KV "
        "cache, its decode step compiled on a GPU), generate (transformers `generate`); auto: loop on CPU, "
        "generate on a GPU (the measured choices).",
    )
    vllm_gpu_memory_utilization: float = Field(
        0.3, gt=0, le=1, description="Share of GPU memory the colocated vLLM engine may take."
    )

    lora: LoraSettings | None = Field(
        None,
        description="Train LoRA adapters instead of every weight (needs peft); the KL reference is then the "
        "same model with its adapters off, no second copy. `rewardkit export merged RUN -o DIR` writes the "
        "merged model.",
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass instead of keeping them: less memory "
        "for a slower update (on CPU, a 21M model: 180 MB lower peak, update 25% slower; bench/RESULTS.md)."
    )
    logprob_chunk_tokens: int = Field(
        0,
        ge=0,
        description="Compute the completion tokens' log-probs this many tokens at a time, without holding "
        "[tokens x vocab] logits for the whole pass (0 = all at once). Worth it for large vocabularies.",
    )

    # --- data -------------------------------------------------------------------------------------
    data: str = Field(description="Training prompts: a local .jsonl or .parquet file, a folder written by "
                      "`datasets`' save_to_disk, or anything `datasets.load_dataset` reads (a hub name, a local "
                      "dataset folder) with `data_config` and `data_split`; one row per prompt.")
    prompt_field: str = Field(
        "prompt",
        description="Row field holding the prompt: a string or a list of chat messages. Every other field "
        "is passed to the verifiers with the completion.",
    )
    data_config: str | None = Field(
        None, description="The dataset's config (e.g. GSM8K's `main`) when `data` is read by `datasets.load_dataset`.")
    data_split: str = Field("train", description="Split of `data` when it is a dataset with splits.")
    eval_split: str = Field("test", description="Split of `eval_data` when it is a dataset with splits.")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Rename data columns before anything reads them, {source: target}, e.g. "
        "{question: prompt} (the verifiers and `prompt_field` see the targets).",
    )
    prompt_template: str | None = Field(
        None,
        description="Build the prompt from the row: `{field}` is replaced by that field (other braces, as in "
        "`\\boxed{}`, stay), e.g. '{question} Put the final answer in \\boxed{}.'",
    )
    system_prompt: str | None = Field(
        None, description="A system message put before each prompt (text prompts become a user message).")
    eval_data: str | None = Field(None, description="Held-out prompts (.jsonl/.parquet) for evaluation.")
    eval_size: int = Field(
        0, ge=0, description="When `eval_data` is not given: hold out this many rows of `data` for evaluation."
    )
    eval_every: int = Field(0, ge=0, description="Evaluate every N steps (0 = never; also at the end when > 0).")
    eval_greedy: bool = Field(True, description="Evaluate with greedy decoding (else sample like training).")
    check_rows: int = Field(
        16, ge=1, description="Rows checked against the verifiers' required fields before the first step."
    )

    # --- rollouts ---------------------------------------------------------------------------------
    prompts_per_step: int = Field(8, ge=1, description="Prompts (groups) sampled per step.")
    group_size: int = Field(
        8, ge=2, description="Completions generated per prompt; advantages are normalized within a group."
    )
    max_prompt_tokens: int | None = Field(
        None, ge=1, description="Keep only the last N prompt tokens (None = no truncation)."
    )
    max_new_tokens: int = Field(64, ge=1, description="Upper bound on completion length in tokens.")
    temperature: float = Field(
        1.0, gt=0, description="Sampling temperature (log-probs are computed at this temperature too)."
    )
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling threshold (1 = off).")
    top_k: int = Field(0, ge=0, description="Top-k sampling (0 = off).")

    # --- optimization -----------------------------------------------------------------------------
    optimizer: Literal["adamw", "adam", "sgd"] = Field("adamw", description="Torch optimizer.")
    lr: float = Field(1e-6, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay (decoupled for adamw).")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam betas.")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="Decay after warmup: constant, linear to 0, or cosine to 0 at `steps`."
    )
    warmup_steps: int = Field(0, ge=0, description="Linear warmup from 0 to `lr` over this many steps.")
    updates_per_batch: int = Field(
        1, ge=1, description="Optimizer passes over each batch of rollouts (>1 makes the clip matter)."
    )
    grad_accum: int = Field(
        1, ge=1, description="Bounds memory: at most 1/grad_accum of the batch goes through one forward-backward "
        "pass (rows are also grouped into passes by length, so there may be more passes than this)."
    )
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip the gradient norm to this (None = off).")
    clip_low: float = Field(0.2, ge=0, lt=1, description="PPO ratio clip below: ratio >= 1 - clip_low.")
    clip_high: float = Field(0.2, ge=0, description="PPO ratio clip above: ratio <= 1 + clip_high (DAPO uses 0.28).")
    kl_coef: float = Field(
        0.0, ge=0, description="Weight of the k3 KL estimate to the reference model; 0 loads no reference."
    )
    ref_model: str | None = Field(None, description="Reference model for the KL term; default: `model`.")
    loss_aggregation: Literal["token_mean", "sequence_mean"] = Field(
        "token_mean",
        description="token_mean: average over all completion tokens of the batch (DAPO); "
        "sequence_mean: average per completion, then over completions (GRPO paper).",
    )

    # --- run --------------------------------------------------------------------------------------
    steps: int = Field(100, ge=1, description="Training steps (one step = one batch of rollouts).")
    seed: int = Field(0, description="Seeds data order, sampling and initialization; runs repeat exactly on CPU.")
    checkpoint_every: int = Field(0, ge=0, description="Save a checkpoint every N steps (0 = only at the end).")
    keep_checkpoints: int | None = Field(2, ge=1, description="Keep the newest N checkpoints (None = keep all).")
    output_dir: str | None = Field(None, description="Run folder (logs, checkpoints); default runs/<spec name>.")
    tensorboard: bool = Field(True, description="Also log to TensorBoard when it is installed.")
    wandb_project: str | None = Field(
        None,
        description="Also log to Weights & Biases under this project (needs `pip install wandb`; set "
        "WANDB_MODE=offline to log without a network). `--resume` continues the same W&B run.",
    )
    progress: bool = Field(True, description="Show a progress bar (rich) on a terminal.")
    log_samples_every: int = Field(
        10, ge=0,
        description="Every N steps write that step's completions, each reward's score and reason and the "
        "advantages to OUTPUT_DIR/samples/step-N.jsonl (re-checkable with `rewardkit check ... --group-by "
        "_group`), and to W&B / TensorBoard when on; 0 = never.",
    )
    max_error_share: float = Field(
        0.5, ge=0, le=1,
        description="Stop the run (exit 1) when a reward errors on more than this share of the samples it "
        "judged over the last `error_window` steps, naming the reward and its most common reasons "
        "(1 = never stop).",
    )
    error_window: int = Field(
        10, ge=1, description="Steps over which `max_error_share` is measured (step 1 counts alone)."
    )
    score_workers: int | None = Field(
        None, ge=1, description="Threads for verifiers that parallelize (None = their default)."
    )
    reward_url: str | None = Field(
        None,
        description="Score on a `rewardkit serve` server of this spec (e.g. http://scorer:8000) instead of in "
        "this process; token from $REWARDKIT_TOKEN. Start the server with --tokenizer for token lengths.",
    )
    cpu_threads: int | None = Field(
        None,
        ge=1,
        description="Torch threads for work on the CPU (None = torch's default, one per core). A tiny model "
        "gains nothing from more than 1, and on a busy machine extra threads spin and slow every step.",
    )

    @field_validator("lr", "temperature", "clip_high", "kl_coef")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("betas")
    @classmethod
    def _betas(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in value):
            raise ValueError("each beta must be in [0, 1)")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        ok = value in ("auto", "cpu", "cuda", "mps") or (value.startswith("cuda:") and value[5:].isdigit())
        if not ok:
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, not {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        batch = self.prompts_per_step * self.group_size
        if self.grad_accum > batch:
            raise ValueError(f"grad_accum ({self.grad_accum}) exceeds the completions per step ({batch})")
        if self.ref_model is not None and self.kl_coef == 0:
            raise ValueError("ref_model is set but kl_coef is 0: the reference would never be used")
        return self
