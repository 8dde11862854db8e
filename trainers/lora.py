"""LoRA through `peft`: train low-rank adapters on a frozen policy, and use the frozen policy as the
KL reference.

Why adapters: full fine-tuning keeps fp32 Adam moments for every weight (8 bytes per parameter on
top of the weights and their gradients); with adapters only the adapters have gradients and
moments, and the checkpoint is the adapters alone. The base weights never change, so the model
with its adapters switched off *is* the reference: no second copy is loaded for the KL term.

A checkpoint's `model/` folder then holds `adapter_config.json` + `adapter_model.safetensors`
(peft's layout); `merge_into_base` (behind `rewardkit export merged`) folds them into the base
weights and gives back a plain transformers model.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import TrainSetupError

if TYPE_CHECKING:
    from rewardkit.train_config import LoraSettings

ADAPTER_CONFIG = "adapter_config.json"


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise TrainSetupError("train.lora needs peft: pip install 'rewardkit[train]' (or pip install peft)") from None
    return peft


def attach(model: Any, settings: LoraSettings) -> Any:
    """Fresh adapters on `model` (their random init draws from the global torch RNG, seeded by setup)."""
    peft = _peft()
    config = peft.LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                             target_modules=settings.target_modules, task_type="CAUSAL_LM")
    try:
        return peft.get_peft_model(model, config)
    except ValueError as exc:  # e.g. target modules that the model does not have
        raise TrainSetupError(f"train.lora: {exc}") from None


def resume(model: Any, adapter_dir: Path) -> Any:
    """The adapters saved in a checkpoint, on `model`, trainable again."""
    return _peft().PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)


def is_adapter_folder(path: Path) -> bool:
    return (path / ADAPTER_CONFIG).is_file()


def has_adapters(model: Any) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


@contextlib.contextmanager
def adapters_off(model: Any) -> Iterator[Any]:
    """`model` as its frozen base for the duration (the KL reference); a plain model as it is."""
    if not has_adapters(model):
        yield model
        return
    with model.disable_adapter():
        yield model


def base_model_of(adapter_dir: Path) -> str:
    """Where the adapters' base model was loaded from, as peft recorded it at save time."""
    config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise TrainSetupError(f"{adapter_dir / ADAPTER_CONFIG}: no base_model_name_or_path; pass the base model")
    return str(base)


def merge_into_base(adapter_dir: Path, base: str, dtype: Any = None) -> Any:
    """The base model with the adapters of `adapter_dir` folded into its weights: a plain
    transformers model (no peft needed to load what it saves)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype or "auto")
    return _peft().PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
