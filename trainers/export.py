"""`rewardkit export merged`: a training run's policy as one plain `save_pretrained` folder.

A full fine-tuning checkpoint already holds the whole model; a LoRA checkpoint holds only the
adapters, which are folded into the base weights here, so that whoever serves or evaluates the
policy needs neither peft nor this package.
"""

from __future__ import annotations

from pathlib import Path

from . import checkpoint, lora


def _model_folder(source: str | Path) -> Path:
    """A run folder (its newest checkpoint), a checkpoint folder, or a checkpoint's `model/` itself."""
    path = Path(source)
    weights = ("model.safetensors", "model.safetensors.index.json")
    if lora.is_adapter_folder(path) or any((path / f).is_file() for f in weights):
        return path
    return checkpoint.find(path) / checkpoint.MODEL_DIR


def export_merged(source: str | Path, out: str | Path, base: str | None = None) -> Path:
    """Write the policy of `source` to `out` as a transformers model (weights, config, tokenizer);
    `base` replaces the base model recorded in a LoRA checkpoint (when that folder has moved)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _model_folder(source)
    if lora.is_adapter_folder(folder):
        base_source = base or lora.base_model_of(folder)
        if not Path(base_source).exists() and base_source.startswith((".", "/", "~")):
            raise FileNotFoundError(f"{folder}: the adapters' base model {base_source!r} is gone; "
                                    "pass it with --base")
        model = lora.merge_into_base(folder, base_source)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
    out_dir = Path(out)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out_dir)
    return out_dir
