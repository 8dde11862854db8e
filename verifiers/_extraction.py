"""One vocabulary for where an answer is taken from, shared by `exact_match`, `math_equivalence`
and `code_tests` (each supports the values that make sense for it):

    extract: full         the whole completion
             last_line    its last non-empty line
             tag          the inside of the last <tag>...</tag>; the tag's name is `tag` (default answer)
             regex        the first group of `pattern` (else the whole match)
             boxed        the last \\boxed{...}
             last_number  the last number
             fenced       the last fenced code block of the language, else the whole text
             auto         the verifier's own best guess (math: boxed, else tag, else full)

Older names are still read for a version, with a warning: `extract: all` (exact_match) is
`full`, `answer_tag:` (math_equivalence) is `tag:`.
"""

from __future__ import annotations

import warnings
from typing import Any

REMOVED_IN = "0.3"


def renamed(data: Any, verifier: str, *, keys: dict[str, str] | None = None,
            values: dict[str, dict[str, str]] | None = None) -> Any:
    """`data` (a verifier's raw args) with old keys and old values of a key renamed, warning once
    for each, so that a spec written for the old names loads and says what to write instead."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for old, new in (keys or {}).items():
        if old in data:
            if new in data:
                raise ValueError(f"give {new!r} only: {old!r} is its old name")
            warnings.warn(f"{verifier}: `{old}:` is now `{new}:` (the old name is read until rewardkit "
                          f"{REMOVED_IN})", FutureWarning, stacklevel=2)
            data[new] = data.pop(old)
    for key, mapping in (values or {}).items():
        value = data.get(key)
        if isinstance(value, str) and value in mapping:
            warnings.warn(f"{verifier}: `{key}: {value}` is now `{key}: {mapping[value]}` (the old value is "
                          f"read until rewardkit {REMOVED_IN})", FutureWarning, stacklevel=2)
            data[key] = mapping[value]
    return data
