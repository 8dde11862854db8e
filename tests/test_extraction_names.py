"""One vocabulary for answer extraction across exact_match, math_equivalence and code_tests; the
old names (`extract: all`, `answer_tag:`) still load for a version, with a warning."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from rewardkit.spec import load_spec
from rewardkit.verifier import ScoringContext
from rewardkit.verifiers import _extraction
from rewardkit.verifiers.code_tests import CodeTestsArgs
from rewardkit.verifiers.exact_match import ExactMatch, ExactMatchArgs
from rewardkit.verifiers.math_equivalence import MathEquivalence, MathEquivalenceArgs


def _choices(model: type, field: str) -> set[str]:
    return set(typing.get_args(model.model_fields[field].annotation))


def test_every_extract_value_is_one_of_the_shared_vocabulary() -> None:
    documented = set(re.findall(r"^\s+(?:extract: )?(\w+)\s{2,}", _extraction.__doc__ or "", flags=re.M))
    assert documented == {"full", "last_line", "tag", "regex", "boxed", "last_number", "fenced", "auto"}
    for model in (ExactMatchArgs, MathEquivalenceArgs, CodeTestsArgs):
        assert _choices(model, "extract") <= documented, model
    assert "tag" in ExactMatchArgs.model_fields and "tag" in MathEquivalenceArgs.model_fields
    assert "full" in _choices(ExactMatchArgs, "extract") & _choices(MathEquivalenceArgs, "extract") \
        & _choices(CodeTestsArgs, "extract")


def test_exact_match_extract_all_is_read_as_full_with_a_warning() -> None:
    with pytest.warns(FutureWarning, match=r"exact_match: `extract: all` is now `extract: full`"):
        old = ExactMatchArgs(extract="all")  # type: ignore[arg-type]
    assert old == ExactMatchArgs(extract="full")
    (score,) = ExactMatch(old).score_batch([{"completion": " Paris ", "answer": "Paris"}], ScoringContext())
    assert score.value == 1.0


def test_math_answer_tag_is_read_as_tag_with_a_warning() -> None:
    with pytest.warns(FutureWarning, match=r"math_equivalence: `answer_tag:` is now `tag:`"):
        old = MathEquivalenceArgs(extract="tag", answer_tag="final")  # type: ignore[call-arg]
    assert old == MathEquivalenceArgs(extract="tag", tag="final")
    verifier = MathEquivalence(old)
    try:
        (score,) = verifier.score_batch([{"completion": "<final>42</final>", "answer": "42"}], ScoringContext())
    finally:
        verifier.close()
    assert score.value == 1.0
    with pytest.raises(ValidationError, match="give 'tag' only: 'answer_tag' is its old name"):
        MathEquivalenceArgs(tag="a", answer_tag="b")  # type: ignore[call-arg]


def test_code_tests_takes_the_fenced_block_or_the_full_text() -> None:
    from rewardkit.verifiers._code.runs import build_plan

    text = "Here:\n```python\nprint(1)\n```\n"
    sample = {"completion": text, "tests": {"inputs": [""], "outputs": ["1"]}}
    assert build_plan(sample, CodeTestsArgs()).program.strip() == "print(1)"
    full = build_plan(sample, CodeTestsArgs(extract="full"))
    assert full.program == text and full.compile_error is not None  # the prose is part of the program


def test_a_spec_with_the_old_names_still_loads(tmp_path: Path) -> None:
    spec = tmp_path / "old.yaml"
    spec.write_text("version: 1\nname: old\nrewards:\n"
                    "  - {name: a, verifier: exact_match, args: {extract: all}}\n"
                    "  - {name: b, verifier: math_equivalence, args: {extract: tag, answer_tag: final}}\n")
    with pytest.warns(FutureWarning):
        with load_spec(spec) as loaded:
            assert loaded.rewards[1].verifier.args.tag == "final"  # type: ignore[attr-defined]
