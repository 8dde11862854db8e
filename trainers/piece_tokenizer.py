"""A tokenizer over a fixed list of text pieces that decodes by plain concatenation.

The demo's word tokenizer joins tokens with spaces, which is fine for `<a> 7 </a>` but breaks JSON
(`" city "` is another key), Python (a space before a line is an indent) and `\\boxed{8}`. The
paper-task policies (`rewardkit.trainers.paper_tasks`) need text that round-trips exactly, so here
each token is a piece of text (a word, a JSON fragment such as `", "arguments": {"`, a line of
code, a space or a newline), text is split into the longest pieces that match, and decoding glues
the pieces back together. Text outside the pieces becomes `<unk>`. A few dozen to a few hundred
pieces keep a completion to 10-30 tokens, which is what makes RL on two CPU cores affordable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .tiny_model import ROLES, SPECIALS, wrap_tokenizer


def piece_vocab(pieces: Iterable[str]) -> list[str]:
    """Special and role tokens first (the ids the tiny model's template expects), then the
    pieces in first-seen order, without duplicates."""
    vocab = list(SPECIALS) + list(ROLES)
    seen = set(vocab)
    for piece in pieces:
        if not piece:
            raise ValueError("a piece must not be empty")
        if piece not in seen:
            seen.add(piece)
            vocab.append(piece)
    return vocab


def build_piece_tokenizer(pieces: Iterable[str]) -> Any:  # -> transformers.PreTrainedTokenizerFast
    """A fast tokenizer whose tokens are `pieces` (plus the tiny model's special and role tokens)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = piece_vocab(pieces)
    core = Tokenizer(models.WordLevel({tok: i for i, tok in enumerate(vocab)}, unk_token="<unk>"))
    # Longest pieces first: a regex alternation takes the first alternative that matches.
    alternation = "|".join(re.escape(p) for p in sorted(vocab, key=len, reverse=True))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(alternation), behavior="isolated")
    core.decoder = decoders.Fuse()
    return wrap_tokenizer(core, model_max_length=1024, clean_up_tokenization_spaces=False)
