"""Build a tiny causal LM from scratch (no download): the demo's and the tests' policy.

A `transformers` LlamaConfig with random weights plus a word-level tokenizer made with `tokenizers`,
both written with `save_pretrained`, so the trainer loads them with the real `from_pretrained` like
any hub model. The vocabulary is deliberately small (about 30 tokens): a randomly initialised model
then emits the demo's answer tags by chance often enough for RL to find them within a few steps.

Usage: `python -m rewardkit.trainers.tiny_model OUT_DIR [--seed N]`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]
ROLES = ["<system>", "<user>", "<assistant>"]
TAGS = ["<a>", "</a>"]
DIGITS = [str(d) for d in range(10)]
WORDS = ["copy", "next", "say", "answer", "is", "the", "number", "?", ":", "."]
VOCAB = SPECIALS + ROLES + TAGS + DIGITS + WORDS

# Role tokens mark turns; the assistant turn ends with <eos>, which is also generation's stop token.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<' + message['role'] + '> ' + message['content'] + ' ' }}"
    "{% if message['role'] == 'assistant' %}{{ '<eos> ' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<assistant> ' }}{% endif %}"
)

# Splits text into tags, single digits, words and single punctuation marks; whitespace separates.
PRE_TOKENIZE = r"</?[a-z]+>|\d|[A-Za-z]+|[^\sA-Za-z\d]"


def build_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    """A word-level fast tokenizer over `VOCAB`; unknown words map to <unk>."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    core = Tokenizer(models.WordLevel({tok: i for i, tok in enumerate(VOCAB)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(PRE_TOKENIZE), behavior="isolated")]
    )
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins tokens with single spaces
    return wrap_tokenizer(core, model_max_length=512)


def wrap_tokenizer(core: Any, **settings: Any) -> Any:  # Tokenizer -> transformers.PreTrainedTokenizerFast
    """A `tokenizers` core with our special tokens, chat template and left padding (shared by every tiny
    tokenizer, so their prompts render alike)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        **settings,
    )


def build_tiny_model(
    out_dir: str | Path,
    *,
    seed: int = 0,
    hidden_size: int = 128,
    layers: int = 2,
    heads: int = 2,
    max_positions: int = 512,
    tokenizer: Any = None,
) -> Path:
    """Write a randomly initialised tiny Llama and its tokenizer to `out_dir`; return the path.

    Defaults give head_dim 64 (a size every attention kernel, vLLM's included, supports) and about
    0.4M parameters, so a training step on CPU takes tens of milliseconds. `tokenizer` replaces the
    demo's word tokenizer (the paper tasks pass a `piece_tokenizer`); the vocabulary follows it.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attention_dropout=0.0,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rewardkit.trainers.tiny_model",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="folder to write the model and tokenizer to")
    parser.add_argument("--seed", type=int, default=0, help="initialization seed")
    args = parser.parse_args(argv)
    path = build_tiny_model(args.out_dir, seed=args.seed)
    print(f"tiny model written to {path} ({len(VOCAB)} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
