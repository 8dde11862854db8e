"""Gates (parsed, never eval-ed; DAG order) and the scoring engine (batches, errors, gated cells)."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
import rk_test_verifiers as tv

from rewardkit.gates import GateSyntaxError, dependency_order, parse_gate
from rewardkit.spec import load_spec_text

FV = "rk_test_verifiers:FieldValue"


@pytest.mark.parametrize("expression, scores, expected", [
    ("a >= 1", {"a": 1.0}, True),
    ("a >= 1", {"a": 0.5}, False),
    ("a == 1 and b < 0.5", {"a": 1, "b": 0.2}, True),
    ("a == 1 and b < 0.5", {"a": 1, "b": 0.7}, False),
    ("a != 1 or b > 0", {"a": 1, "b": 0.1}, True),
    ("not (a > 0 or b > 0)", {"a": 0, "b": 0}, True),
    ("not a", {"a": 0}, True),
    ("a", {"a": 2}, True),
    ("(a <= 0.5) and not (b == 1)", {"a": 0.5, "b": 2}, True),
    ("1 < a", {"a": 3}, True),
    ("a >= 1", {"a": math.nan}, False),
    ("not a >= 1", {"a": math.nan}, True),
    ("a > 1e-3", {"a": 0.01}, True),
])
def test_gate_evaluation(expression: str, scores: dict[str, float], expected: bool) -> None:
    assert parse_gate(expression).holds(scores) is expected


def test_gate_names() -> None:
    assert parse_gate("(a > 0 and b_2 < 1) or not c").names == {"a", "b_2", "c"}


@pytest.mark.parametrize("expression, column, fragment", [
    ("a >", 4, "found end of expression"),
    ("a = 1", 3, "use =="),
    ("(a > 1", 7, "missing ')'"),
    ("a > 1 b", 7, "unexpected 'b'"),
    ("1 < a < 2", 7, "chained comparisons"),
    ("", 1, "empty gate"),
    ("a.b > 1", 2, "unexpected character '.'"),
    ("a > 1 and", 10, "found end of expression"),
])
def test_gate_syntax_errors_have_columns(expression: str, column: int, fragment: str) -> None:
    with pytest.raises(GateSyntaxError) as info:
        parse_gate(expression)
    assert info.value.column == column
    assert fragment in str(info.value)


def test_dependency_levels() -> None:
    gates = {"a": None, "b": parse_gate("a > 0"), "c": parse_gate("a > 0 and b > 0"), "d": None}
    assert dependency_order(gates) == [["a", "d"], ["b"], ["c"]]


def _spec(body: str):
    return load_spec_text("version: 1\nname: t\n" + textwrap.dedent(body), "t.yaml")


def test_closed_gate_scores_otherwise_and_does_not_run_verifier() -> None:
    tv.CALLS.clear()
    spec = _spec(f"""\
        rewards:
          - name: short
            verifier: {FV}
            args: {{field: s, label: short}}
            when: correct >= 1
            otherwise: -0.5
          - name: correct
            verifier: {FV}
            args: {{field: c, label: correct}}
        """)
    samples = [{"completion": "", "c": 1, "s": 0.3}, {"completion": "", "c": 0, "s": 0.9},
               {"completion": "", "c": 1, "s": 0.7}]
    table = spec.score(samples)
    assert spec.order == [["correct"], ["short"]]
    assert tv.CALLS == {"correct": [3], "short": [2]}  # one batch each; gated sample not sent
    np.testing.assert_allclose(table.values, [[0.3, 1], [-0.5, 0], [0.7, 1]])
    gated = table.cells[1][0]
    assert gated.gated and gated.reason == "gated: `correct >= 1` is false"
    assert not table.cells[0][0].gated


def test_error_policy_exclude_and_otherwise() -> None:
    spec = _spec(f"""\
        rewards:
          - name: excl
            verifier: {FV}
            args: {{field: v}}
          - name: other
            verifier: {FV}
            args: {{field: v}}
            on_error: otherwise
            otherwise: 0.25
        """)
    table = spec.score([{"completion": "", "v": 1}, {"completion": "", "v": "boom"}])
    assert table.values[0].tolist() == [1.0, 1.0]
    assert math.isnan(table.values[1, 0]) and table.values[1, 1] == 0.25
    assert table.cells[1][0].error == "could not judge 'boom'"
    summary = {s.name: s for s in table.summary()}
    assert summary["excl"].errors == 1 and summary["excl"].mean == 1.0


def test_crashing_verifier_marks_cells_and_batch_goes_on() -> None:
    spec = _spec(f"""\
        rewards:
          - name: broken
            verifier: rk_test_verifiers:Exploding
          - name: fine
            verifier: {FV}
            args: {{field: v}}
          - name: gated_on_broken
            verifier: {FV}
            args: {{field: v}}
            when: broken > 0
        """)
    table = spec.score([{"completion": "", "v": 1}, {"completion": "", "v": 0}])
    assert np.isnan(table.values[:, 0]).all()
    assert "RuntimeError: verifier bug" in (table.cells[0][0].error or "")
    assert table.values[:, 1].tolist() == [1.0, 0.0]
    assert all(row[2].gated for row in table.cells)  # NaN makes the comparison false


def test_one_bad_sample_only_marks_its_own_cell() -> None:
    spec = _spec("""\
        rewards:
          - name: r
            verifier: rk_test_verifiers:PerSampleRaise
        """)
    table = spec.score([{"completion": "a"}, {"completion": "b", "bad": True}, {"completion": "c"}])
    assert table.values[0, 0] == 1 and table.values[2, 0] == 1 and math.isnan(table.values[1, 0])
    assert "ValueError: cannot parse this one" in (table.cells[1][0].error or "")


def test_python_function_verifier_with_kwargs() -> None:
    spec = _spec("""\
        rewards:
          - name: brief
            verifier: python
            args: {function: "rk_test_verifiers:word_count_reward", kwargs: {limit: 2}}
        """)
    table = spec.score([{"completion": "one two"}, {"completion": "one two three"}])
    assert table.values[:, 0].tolist() == [1.0, 0.0]
    assert table.cells[1][0].reason == "3 words (limit 2)"


def test_python_function_that_does_not_exist_is_a_load_error() -> None:
    from rewardkit.errors import SpecError

    with pytest.raises(SpecError, match="rk_test_verifiers' has no function 'nope'"):
        _spec("""\
            rewards:
              - name: r
                verifier: python
                args: {function: "rk_test_verifiers:nope"}
            """)


def test_exact_match_normalization_and_extraction() -> None:
    spec = _spec("""\
        rewards:
          - name: tag
            verifier: exact_match
            args: {extract: tag, case_sensitive: false, collapse_whitespace: true}
          - name: line
            verifier: exact_match
            args: {extract: last_line, reference: gold}
        """)
    table = spec.score([
        {"completion": "work\n<answer> New   York </answer>\nNew York", "answer": "new york", "gold": "New York"},
        {"completion": "no tag here\nParis", "answer": "Paris", "gold": ["paris", "Paris"]},
    ])
    assert table.values.tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert table.cells[1][0].reason == "no answer found (tag extraction)"


def test_missing_field_is_a_per_sample_error_naming_field() -> None:
    spec = _spec("""\
        rewards:
          - name: r
            verifier: exact_match
        """)
    table = spec.score([{"completion": "x"}])
    assert "no field 'answer'" in (table.cells[0][0].error or "")
    assert "needed by verifier 'exact_match'" in (table.cells[0][0].error or "")


def test_rewards_of_one_level_run_concurrently_and_results_keep_order() -> None:
    spec = _spec(f"""\
        rewards:
          - {{name: a, verifier: {FV}, args: {{field: x}}}}
          - {{name: b, verifier: {FV}, args: {{field: y}}}}
          - {{name: c, verifier: {FV}, args: {{field: x}}, when: a > 0 and b > 0}}
        """)
    table = spec.score([{"completion": "", "x": 1, "y": 2}, {"completion": "", "x": 3, "y": 0}])
    assert table.reward_names == ["a", "b", "c"]
    assert table.values.tolist() == [[1, 2, 1], [3, 0, 0]]
