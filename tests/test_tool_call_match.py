"""tool_call_match: parsing every call format, BFCL-style matching rules, the three modes,
actionable reasons, hostile completions and the process pool."""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rewardkit.registry import resolve
from rewardkit.verifier import Score, ScoringContext
from rewardkit.verifiers._tool_calls.assignment import first_unmatchable, max_weight_assignment
from rewardkit.verifiers._tool_calls.parsing import (
    ParseError,
    parse_completion,
    parse_python_calls,
    parse_reference,
)
from rewardkit.verifiers.tool_call_match import ToolCallMatch, ToolCallMatchArgs

WEATHER = [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}]
WEATHER_FN = [
    {
        "name": "get_weather",
        "parameters": {
            "type": "dict",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string"},
                "days": {"type": "integer"},
            },
            "required": ["city"],
        },
    }
]


def score(completion: Any, answer: Any = WEATHER, functions: Any = None, **args: Any) -> Score:
    if functions is not None:
        args.setdefault("functions", "functions")
    v = ToolCallMatch(ToolCallMatchArgs(**args))
    sample = {"completion": completion, "answer": answer}
    if functions is not None:
        sample["functions"] = functions
    (result,) = v.score_batch([sample], ScoringContext())
    return result


def hermes(*calls: dict[str, Any]) -> str:
    return "".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>\n" for c in calls)


# --------------------------------------------------------------------------- parsing


def test_registered_under_its_name() -> None:
    assert resolve("tool_call_match") is ToolCallMatch


def test_hermes_one_and_many_blocks() -> None:
    calls = parse_completion(
        "<think>two cities</think>\n"
        + hermes({"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {"b": "x"}})
    )
    assert [(c.name, c.arguments) for c in calls] == [("f", {"a": 1}), ("g", {"b": "x"})]


def test_hermes_block_with_list_json_lines_parameters_alias_and_unclosed_tail() -> None:
    listed = parse_completion(
        '<tool_call>[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}]</tool_call>'
    )
    assert [c.name for c in listed] == ["f", "g"]
    lines = parse_completion(
        '<tool_call>\n{"name": "f", "parameters": {"a": 1}}\n{"name": "g", "parameters": {}}\n</tool_call>'
    )
    assert [(c.name, c.arguments) for c in lines] == [("f", {"a": 1}), ("g", {})]
    unclosed = parse_completion('<tool_call>{"name": "f", "arguments": {"a": 2}}')
    assert unclosed[0].arguments == {"a": 2}


def test_openai_tool_calls_with_string_or_object_arguments() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
            {"type": "function", "function": {"name": "g", "arguments": {"b": [1, 2]}}},
        ],
    }
    for completion in ([{"role": "user", "content": "hi"}, message], message):
        calls = parse_completion(completion)
        assert [(c.name, c.arguments) for c in calls] == [("f", {"a": 1}), ("g", {"b": [1, 2]})]
    assert (
        score(
            [
                message
                | {
                    "tool_calls": [
                        {
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": json.dumps(WEATHER[0]["arguments"]),
                            },
                        }
                    ]
                }
            ]
        ).value
        == 1.0
    )


def test_bare_json_object_list_and_code_fence() -> None:
    assert score(json.dumps(WEATHER[0])).value == 1.0
    assert score(json.dumps(WEATHER)).value == 1.0
    assert score("Calling it now:\n```json\n" + json.dumps(WEATHER) + "\n```").value == 1.0
    assert (
        score(json.dumps({"get_weather": {"city": "Paris", "unit": "celsius"}})).value == 1.0
    )  # BFCL's form


def test_python_call_syntax_literals() -> None:
    calls = parse_python_calls(
        '[math.hypot(x=3, y=-4.5), g(items=[1, (2, 3)], opts={"k": None, "on": True})]'
    )
    assert [(c.name, c.arguments) for c in calls] == [
        ("math.hypot", {"x": 3, "y": -4.5}),
        ("g", {"items": [1, [2, 3]], "opts": {"k": None, "on": True}}),
    ]
    assert score('get_weather(city="Paris", unit="celsius")').value == 1.0
    assert score('<think>metric</think>\n[get_weather(city="Paris", unit="celsius")]').value == 1.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("f(1, 2)", "positional arguments are not supported"),
        ("f(a=x)", "x is a variable name"),
        ("f(a=1 + 1)", "not a literal value"),
        ("f(a=g(b=1))", "not a literal value"),
        ("f(**kw)", "'**' unpacking"),
        ("f(a=lambda: 1)", "not a literal value"),
        ("f(a=-x)", "only a number may carry a sign"),
        ("f(a=b'x')", "bytes literals are not supported"),
        ("f(a={1, 2})", "not a literal value"),
        ("f()()", "not a plain or dotted name"),
    ],
)
def test_python_syntax_rejects_anything_but_literals(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)):
        parse_python_calls(text)


def test_python_syntax_is_never_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = score(
        f"f(a=__import__('os').system('touch {marker}'))", answer=[{"name": "f", "arguments": {"a": 0}}]
    )
    assert result.value == 0.0 and "not a literal" in result.reason
    assert not marker.exists()


def test_plain_text_is_no_call_and_broken_json_is_a_reason() -> None:
    assert score("I think it is sunny.").reason.startswith("no tool call found")
    broken = score('<tool_call>{"name": "get_weather", "arguments": {"city": }</tool_call>')
    assert broken.value == 0.0 and "not valid JSON" in broken.reason and "block 1" in broken.reason


# --------------------------------------------------------------------------- references


def test_reference_formats_agree() -> None:
    plain = parse_reference(WEATHER)
    bfcl = parse_reference([{"get_weather": {"city": ["Paris"], "unit": ["celsius"]}}])
    record = parse_reference(
        {"id": "x", "ground_truth": [{"get_weather": {"city": ["Paris"], "unit": ["celsius"]}}]}
    )
    as_text = parse_reference(json.dumps(WEATHER))
    as_tags = parse_reference(hermes(WEATHER[0]))
    as_python = parse_reference('get_weather(city="Paris", unit="celsius")')
    assert plain == bfcl == record == as_text == as_tags == as_python


def test_bad_reference_is_an_error_not_a_zero() -> None:
    result = score(hermes(WEATHER[0]), answer=42)
    assert result.error and "bad data" in result.error
    missing = ToolCallMatch(ToolCallMatchArgs()).score_batch([{"completion": "x"}], ScoringContext())[0]
    assert missing.error and "'answer'" in missing.error


# --------------------------------------------------------------------------- matching rules


def test_actionable_reason_for_a_wrong_string() -> None:
    result = score(
        hermes({"name": "get_weather", "arguments": {"city": "Paris", "unit": "Celsius"}}),
        string_match="exact",
    )
    assert result.value == 0.0
    assert result.reason == "get_weather: argument 'unit': expected 'celsius', got 'Celsius'"


def test_string_normalization_modes() -> None:
    answer = [{"name": "f", "arguments": {"place": "New York, NY"}}]
    variant = hermes({"name": "f", "arguments": {"place": "new york ny"}})
    assert score(variant, answer).value == 1.0  # BFCL drops spaces and ,./-_*^ and ignores case
    assert score(variant, answer, string_match="casefold").value == 0.0
    assert (
        score(
            hermes({"name": "f", "arguments": {"place": " NEW YORK, NY "}}), answer, string_match="casefold"
        ).value
        == 1.0
    )
    assert score(variant, answer, string_match="exact").value == 0.0


def test_types_int_for_float_but_not_float_for_int_and_no_bool_for_int() -> None:
    fn = [
        {
            "name": "f",
            "parameters": {
                "type": "dict",
                "properties": {"x": {"type": "float"}, "n": {"type": "integer"}},
                "required": ["x", "n"],
            },
        }
    ]
    answer = [{"f": {"x": [2.0], "n": [3]}}]
    assert score(hermes({"name": "f", "arguments": {"x": 2, "n": 3}}), answer, fn).value == 1.0
    wrong = score(hermes({"name": "f", "arguments": {"x": 2.0, "n": 3.0}}), answer, fn)
    assert wrong.value == 0.0 and "argument 'n': expected integer, got float 3.0" in wrong.reason
    boolean = score(hermes({"name": "f", "arguments": {"x": 2.0, "n": True}}), answer, fn)
    assert boolean.value == 0.0 and "expected integer, got boolean True" in boolean.reason
    # without a schema the reference's own type is expected
    assert score(hermes({"name": "f", "arguments": {"x": 2, "n": 3}}), answer).value == 1.0
    assert score(hermes({"name": "f", "arguments": {"x": 2.0, "n": "3"}}), answer).value == 0.0


def test_required_unknown_and_optional_parameters() -> None:
    answer = [{"get_weather": {"city": ["Paris"], "unit": ["celsius", ""]}}]
    assert (
        score(hermes({"name": "get_weather", "arguments": {"city": "Paris"}}), answer, WEATHER_FN).value
        == 1.0
    )
    missing = score(hermes({"name": "get_weather", "arguments": {"unit": "celsius"}}), answer, WEATHER_FN)
    assert missing.reason == "get_weather: missing required argument 'city'"
    extra = score(
        hermes({"name": "get_weather", "arguments": {"city": "Paris", "mood": "sunny"}}), answer, WEATHER_FN
    )
    assert extra.reason == "get_weather: unexpected argument 'mood'"
    # in the schema but not in the reference: BFCL counts it as unexpected too
    days = score(
        hermes({"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}), answer, WEATHER_FN
    )
    assert days.reason == "get_weather: unexpected argument 'days'"
    needed = score(hermes({"name": "get_weather", "arguments": {"city": "Paris"}}), WEATHER)
    assert needed.reason == "get_weather: missing argument 'unit' (expected 'celsius')"


def test_alternatives_and_nested_values() -> None:
    answer = [
        {
            "book": {
                "dates": [["2024-01-01", "2024-01-02"]],
                "who": [{"name": ["Ann", "Anne"], "age": [30, ""]}],
                "rooms": [[{"kind": ["double"]}, {"kind": ["single"]}]],
            }
        }
    ]
    good = {
        "dates": ["2024 01 01", "2024-01-02"],
        "who": {"name": "anne"},
        "rooms": [{"kind": "double"}, {"kind": "single"}],
    }
    assert score(hermes({"name": "book", "arguments": good}), answer).value == 1.0
    swapped = good | {"rooms": [{"kind": "single"}, {"kind": "double"}]}
    assert score(hermes({"name": "book", "arguments": swapped}), answer).value == 0.0  # list order matters
    key = score(hermes({"name": "book", "arguments": good | {"who": {"name": "Bob"}}}), answer)
    assert key.reason == "book: argument 'who': key 'name': expected one of 'Ann', 'Anne', got 'Bob'"
    extra_key = score(
        hermes({"name": "book", "arguments": good | {"who": {"name": "Ann", "pet": "cat"}}}), answer
    )
    assert "unexpected key 'pet'" in extra_key.reason


def test_parallel_calls_in_any_order_unless_ordered() -> None:
    answer = [{"name": "f", "arguments": {"x": 1}}, {"name": "g", "arguments": {"y": 2}}]
    reordered = hermes({"name": "g", "arguments": {"y": 2}}, {"name": "f", "arguments": {"x": 1}})
    assert score(reordered, answer).value == 1.0
    assert score(reordered, answer, ordered=True).value == 0.0
    assert score(hermes({"name": "f", "arguments": {"x": 1}}), answer).reason.startswith("expected 2 call(s)")


def test_assignment_finds_the_pairing_first_fit_misses() -> None:
    # The first reference also accepts the second call (b is optional there); pairing
    # first-fit in reference order takes it, leaving the second reference unmatched.
    answer = [{"g": {"a": [1], "b": ["", 2]}}, {"g": {"a": [1], "b": [2]}}]
    calls = hermes({"name": "g", "arguments": {"a": 1, "b": 2}}, {"name": "g", "arguments": {"a": 1}})
    assert score(calls, answer).value == 1.0
    wrong = score(hermes({"name": "g", "arguments": {"a": 1}}, {"name": "g", "arguments": {"a": 1}}), answer)
    assert wrong.value == 0.0 and "missing argument 'b' (expected 2)" in wrong.reason


def test_dots_as_underscores_and_no_call_expected() -> None:
    answer = [{"name": "math.factorial", "arguments": {"n": 5}}]
    flat = hermes({"name": "math_factorial", "arguments": {"n": 5}})
    assert score(flat, answer).value == 0.0
    assert score(flat, answer, dots_as_underscores=True).value == 1.0
    assert score("No tool fits this request.", answer=[]).value == 1.0
    assert score(flat, answer=[]).reason == "expected no tool call, got 1 (math_factorial)"


# --------------------------------------------------------------------------- modes


def test_partial_credit_is_the_share_of_calls_and_arguments() -> None:
    answer = [{"name": "f", "arguments": {"a": 1, "b": 2}}, {"name": "g", "arguments": {"c": 3}}]
    half_f = hermes({"name": "f", "arguments": {"a": 1, "b": 9}}, {"name": "g", "arguments": {"c": 3}})
    assert score(half_f, answer, mode="partial").value == pytest.approx((0.5 + 1) / 2)
    one_call = hermes({"name": "g", "arguments": {"c": 3}})
    result = score(one_call, answer, mode="partial")
    assert (
        result.value == pytest.approx(0.5)
        and result.reason == "1/2 calls right, 1 made; no matching call to f"
    )
    extra = hermes({"name": "g", "arguments": {"c": 3, "d": 4}})
    assert score(extra, [answer[1]], mode="partial").value == pytest.approx(
        0.5
    )  # 1 right of 1 + 1 unexpected
    assert (
        score(
            hermes(*[{"name": c["name"], "arguments": c["arguments"]} for c in answer]),
            answer,
            mode="partial",
        ).value
        == 1.0
    )


def test_component_mode_is_toolrl_correctness_in_minus3_to_3() -> None:
    answer = [{"name": "f", "arguments": {"a": 1, "b": 2}}]
    # S_max = 1 (names) + 1 (keys) + 2 (values) = 4
    assert score(hermes({"name": "f", "arguments": {"a": 1, "b": 2}}), answer, mode="component").value == 3.0
    one_wrong = score(hermes({"name": "f", "arguments": {"a": 1, "b": 3}}), answer, mode="component")
    assert one_wrong.value == pytest.approx(-3 + 6 * 3 / 4)
    assert "values 1/2" in one_wrong.reason and "argument 'b': expected 2, got 3" in one_wrong.reason
    # keys {a} vs {a, b}: Jaccard 1/2; values 1
    assert score(
        hermes({"name": "f", "arguments": {"a": 1}}), answer, mode="component"
    ).value == pytest.approx(-3 + 6 * 2.5 / 4)
    assert score(hermes({"name": "h", "arguments": {"a": 1, "b": 2}}), answer, mode="component").value == -3.0
    assert score("no calls here", answer, mode="component").value == -3.0
    assert score("<tool_call>{oops</tool_call>", answer, mode="component").value == -3.0
    # names: Jaccard of {f} and {f, f} = 1/2
    doubled = hermes(
        {"name": "f", "arguments": {"a": 1, "b": 2}}, {"name": "f", "arguments": {"a": 1, "b": 2}}
    )
    assert score(doubled, answer, mode="component").value == pytest.approx(-3 + 6 * 3.5 / 4)


def test_component_weights_and_range_are_configurable() -> None:
    answer = [{"name": "f", "arguments": {"a": 1, "b": 2}}]
    args = {
        "mode": "component",
        "score_range": [0, 1],
        "weights": {"name": 2, "param_names": 0, "param_values": 1},
    }
    # S_max = 2 + 0 + 2 = 4; names 2, values 1
    assert score(hermes({"name": "f", "arguments": {"a": 1, "b": 3}}), answer, **args).value == pytest.approx(
        0.75
    )
    assert score(hermes({"name": "f", "arguments": {"a": 1}}), answer, score_range=[-1, 1]).value == -1.0


def test_args_are_validated() -> None:
    with pytest.raises(ValidationError):
        ToolCallMatchArgs(mode="fuzzy")
    with pytest.raises(ValidationError):
        ToolCallMatchArgs(score_range=[1, -1])
    with pytest.raises(ValidationError):
        ToolCallMatchArgs(refrence="answer")
    assert ToolCallMatch(ToolCallMatchArgs(functions="tools")).required_fields() == ["answer", "tools"]
    assert ToolCallMatch.Args.__dict__.get("__doc__") and ToolCallMatch.__dict__.get("__doc__")
    assert all(f.description for f in ToolCallMatchArgs.model_fields.values())


def test_openai_tools_schema_as_json_text() -> None:
    tools = json.dumps(
        [
            {
                "type": "function",
                "function": {
                    "name": "set_alarm",
                    "parameters": {
                        "type": "object",
                        "properties": {"hour": {"type": "number"}, "label": {"type": "string"}},
                        "required": ["hour"],
                    },
                },
            }
        ]
    )
    answer = [{"name": "set_alarm", "arguments": {"hour": 7.0}}]
    assert score(hermes({"name": "set_alarm", "arguments": {"hour": 7}}), answer, tools).value == 1.0
    wrong = score(hermes({"name": "set_alarm", "arguments": {"hour": "7"}}), answer, tools)
    assert wrong.reason == "set_alarm: argument 'hour': expected number, got string '7'"
    unknown = score(hermes({"name": "set_alarm", "arguments": {"hour": 7, "snooze": 5}}), answer, tools)
    assert unknown.reason == "set_alarm: unexpected argument 'snooze'"


def test_hostile_reference_data_is_an_error() -> None:
    for bad in ("[" * 10_000 + "]" * 10_000, '[{"f": {"a": ' + "[" * 50 + "]" * 50 + "}}]", "{", 3.5, [1, 2]):
        result = score(hermes(WEATHER[0]), answer=bad)
        assert result.error and result.error.startswith("bad data"), (
            bad if len(str(bad)) < 50 else "deep",
            result,
        )
    assert score(hermes(WEATHER[0]), functions="not json").error.startswith("bad data")


# --------------------------------------------------------------------------- hostile completions

HOSTILE: dict[str, Any] = {
    "empty": "",
    "None": None,
    "not text": 12345,
    "1 MB of text": "a" * 1_000_000,
    "1 MB inside a tool_call tag": "<tool_call>" + "a" * 1_000_000 + "</tool_call>",
    "lone surrogates": '<tool_call>\ud800{"name": "get_weather"}\udfff</tool_call>',
    "lone surrogate in a JSON string": '<tool_call>{"name": "get_weather", "arguments": {"city": "\\ud800", "unit": "celsius"}}</tool_call>',
    "lone surrogate in Python syntax": 'get_weather(city="\ud800", unit="celsius")',
    "invalid UTF-8 bytes": b'<tool_call>{"name": "get_weather\xff"}</tool_call>',
    "JSON nested 10,000 deep": "[" * 10_000 + "]" * 10_000,
    "JSON nested 10,000 deep in a tag": "<tool_call>"
    + '{"a":' * 10_000
    + "1"
    + "}" * 10_000
    + "</tool_call>",
    "JSON argument nested 900 deep": '<tool_call>{"name": "get_weather", "arguments": {"city": '
    + "[" * 900
    + "]" * 900
    + ', "unit": "celsius"}}</tool_call>',
    "Python nested 10,000 deep": "f(a=" + "[" * 10_000 + "]" * 10_000 + ")",
    "1e999999 in JSON": '<tool_call>{"name": "get_weather", "arguments": {"city": 1e999999, "unit": "celsius"}}</tool_call>',
    "1e999999 in Python": "get_weather(city=1e999999, unit='celsius')",
    "NaN": '<tool_call>{"name": "get_weather", "arguments": {"city": NaN, "unit": "celsius"}}</tool_call>',
    "a 5,000-digit integer": '<tool_call>{"name": "get_weather", "arguments": {"city": '
    + "9" * 5000
    + "}}</tool_call>",
    "5,000 calls": '<tool_call>{"name": "f"}</tool_call>' * 5_000,
    "messages without an assistant": [{"role": "user", "content": "hi"}],
    "tool_calls not a list": [{"role": "assistant", "tool_calls": "f()"}],
    "arguments not an object": [
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}
    ],
}


@pytest.mark.parametrize("mode", ["exact", "partial", "component"])
def test_hostile_completions_get_a_score_and_reason_in_bounded_time(mode: str) -> None:
    v = ToolCallMatch(ToolCallMatchArgs(mode=mode, functions="functions"))
    samples = [{"completion": c, "answer": WEATHER, "functions": WEATHER_FN} for c in HOSTILE.values()]
    start = time.monotonic()
    scores = v.score_batch(samples, ScoringContext())
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"hostile batch took {elapsed:.1f} s"
    low, high = (-3.0, 3.0) if mode == "component" else (0.0, 1.0)
    for name, s in zip(HOSTILE, scores, strict=True):
        assert s.error is None, (name, s.error)
        assert low <= s.value < high, (name, s)  # never full marks; partly right can earn credit
        assert s.reason and "\n" not in s.reason and len(s.reason) <= 400, (name, s.reason)
        s.reason.encode("utf-8")  # printable: no lone surrogates leak into reasons


def test_each_hostile_completion_alone_is_fast() -> None:
    v = ToolCallMatch(ToolCallMatchArgs(functions="functions"))
    for name, completion in HOSTILE.items():
        start = time.monotonic()
        v.score_batch(
            [{"completion": completion, "answer": WEATHER, "functions": WEATHER_FN}], ScoringContext()
        )
        assert time.monotonic() - start < 2.0, name


def test_hostile_reasons_say_what_happened() -> None:
    reasons = {name: score(c, functions=WEATHER_FN).reason for name, c in HOSTILE.items()}
    assert "over max_chars" in reasons["1 MB of text"]
    assert "nested too deeply" in reasons["JSON nested 10,000 deep in a tag"]
    assert "5000 tool calls, more than max_calls=64" in reasons["5,000 calls"]
    assert "argument 'city': expected string, got float inf" in reasons["1e999999 in JSON"]
    assert "argument 'city': expected string, got float inf" in reasons["1e999999 in Python"]
    assert "not valid JSON" in reasons["a 5,000-digit integer"]
    assert "'tool_calls' must be a list" in reasons["tool_calls not a list"]


# --------------------------------------------------------------------------- assignment algorithms


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=n, max_size=n)
    )
)
def test_perfect_matching_agrees_with_brute_force(valid: list[list[bool]]) -> None:
    n = len(valid)
    exists = any(all(valid[i][perm[i]] for i in range(n)) for perm in itertools.permutations(range(n)))
    assert (first_unmatchable(n, lambda i, j: valid[i][j]) is None) == exists


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(st.integers(1, 5), st.integers(1, 5)).flatmap(
        lambda shape: st.lists(
            st.lists(st.integers(0, 9).map(float), min_size=shape[1], max_size=shape[1]),
            min_size=shape[0],
            max_size=shape[0],
        )
    )
)
def test_max_weight_assignment_agrees_with_brute_force(weights: list[list[float]]) -> None:
    rows, cols = len(weights), len(weights[0])
    k = min(rows, cols)
    best = max(
        sum(weights[r][c] for r, c in zip(rs, cs, strict=True))
        for rs in itertools.combinations(range(rows), k)
        for cs in itertools.permutations(range(cols), k)
    )
    pairs = max_weight_assignment(weights)
    assert len(pairs) == k
    assert len({r for r, _ in pairs}) == k and len({c for _, c in pairs}) == k
    assert sum(weights[r][c] for r, c in pairs) == best


# --------------------------------------------------------------------------- pool


def test_process_pool_gives_the_same_scores() -> None:
    completions = [
        hermes(WEATHER[0]),
        hermes({"name": "get_weather", "arguments": {"city": "Rome", "unit": "celsius"}}),
        "no call",
        '<tool_call>{"name": </tool_call>',
    ] * 8
    samples = [{"completion": c, "answer": WEATHER} for c in completions]
    v = ToolCallMatch(ToolCallMatchArgs(mode="partial", pool_min_batch=8))
    try:
        pooled = v.score_batch(samples, ScoringContext(workers=2))
        assert v._pool is not None  # the batch really went through the pool
    finally:
        v.close()
    default = ToolCallMatch(ToolCallMatchArgs(mode="partial"))
    single = default.score_batch(samples, ScoringContext(workers=2))
    assert default._pool is None  # off unless asked: a sample costs about what its trip to a worker does
    assert pooled == single


TIMER_FN = [{"name": "set_timer", "parameters": {"type": "dict", "required": ["minutes"], "properties": {
    "minutes": {"type": "integer"}, "label": {"type": "string"}, "loud": {"type": "boolean"}}}}]
TIMER = [{"name": "set_timer", "arguments": {"minutes": 5}}]


@pytest.mark.parametrize("mode", ["exact", "partial"])
def test_name_arguments_reference_with_functions_accepts_optional_schema_parameters(mode: str) -> None:
    """As documented: with `functions:`, unknown parameters follow the schema. An {name, arguments}
    reference is one right call, so an optional parameter it leaves out may be passed too."""
    labelled = score(hermes({"name": "set_timer", "arguments": {"minutes": 5, "label": "tea"}}), TIMER, TIMER_FN,
                     mode=mode)
    assert (labelled.value, labelled.reason) == (1.0, "all 1 call(s) correct") or labelled.value == 1.0
    wrong_type = score(hermes({"name": "set_timer", "arguments": {"minutes": 5, "label": 3}}), TIMER, TIMER_FN,
                       mode=mode)
    assert wrong_type.value < 1.0 and "argument 'label': expected string, got integer 3" in wrong_type.reason
    unknown = score(hermes({"name": "set_timer", "arguments": {"minutes": 5, "color": "red"}}), TIMER, TIMER_FN,
                    mode=mode)
    assert unknown.value < 1.0 and "unexpected argument 'color'" in unknown.reason
    wrong_value = score(hermes({"name": "set_timer", "arguments": {"minutes": 6, "label": "tea"}}), TIMER,
                        TIMER_FN, mode=mode)
    assert wrong_value.value < 1.0


def test_bfcl_reference_with_functions_keeps_bfcl_rules_for_unlisted_parameters() -> None:
    bfcl = [{"set_timer": {"minutes": [5]}}]
    labelled = score(hermes({"name": "set_timer", "arguments": {"minutes": 5, "label": "tea"}}), bfcl, TIMER_FN)
    assert (labelled.value, labelled.reason) == (0.0, "set_timer: unexpected argument 'label'")
