"""Write specs/samples/tokenizer.json: a byte-level tokenizer (one token per UTF-8 byte, no merges)
that `rewardkit check --tokenizer` can count tokens with, so the bundled math spec (whose length
reward counts tokens) checks out of the box without downloading a real model's tokenizer.

A byte count is an upper bound on what any byte-level BPE counts; for the real number, pass the
policy's own tokenizer.json. Usage: `python scripts/sample_tokenizer.py [OUT]`.
"""

from __future__ import annotations

import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers


def byte_tokenizer() -> Tokenizer:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokenizer = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


if __name__ == "__main__":
    byte_tokenizer().save(sys.argv[1] if len(sys.argv) > 1 else "specs/samples/tokenizer.json")
