"""format_regex: shapes, counts, flags, share scoring, load-time pattern errors, time-bounded matching."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import ValidationError

from rewardkit.verifier import ScoringContext
from rewardkit.verifiers.format_regex import FormatRegex

CTX = ScoringContext()
THINK_ANSWER = r"<think>.*?</think>\s*<answer>.*?</answer>"


def make(**args: object) -> FormatRegex:
    return FormatRegex(FormatRegex.Args.model_validate(args))


def score(v: FormatRegex, text: str) -> tuple[float, str]:
    s = v.score_batch([{"completion": text}], CTX)[0]
    assert s.error is None, s.error
    return s.value, s.reason


def test_think_answer_shape_fullmatch() -> None:
    v = make(pattern=THINK_ANSWER)
    assert score(v, "<think>2+2</think>\n<answer>4</answer>")[0] == 1.0
    value, reason = score(v, "<think>2+2</think><answer>4</answer> and more")
    assert reason.startswith("0/1 passed: pattern '<think>.*?</think>")
    assert value == 0.0 and "unexpected text ' and more'" in reason
    value, reason = score(v, "<think>2+2</think> <answ")
    assert value == 0.0 and "ends before the pattern is complete" in reason
    value, reason = score(v, "Sure! <think>x</think><answer>1</answer>")
    assert value == 0.0 and "stops fitting at char 0" in reason


def test_strip_allows_trailing_newline() -> None:
    text = "<think>a</think><answer>1</answer>\n"
    assert score(make(pattern=THINK_ANSWER), text)[0] == 0.0
    assert score(make(pattern=THINK_ANSWER, strip=True), text)[0] == 1.0


def test_exactly_one_think_block() -> None:
    v = make(patterns=[{"pattern": r"<think>.*?</think>", "count": 1, "name": "think block"}])
    assert score(v, "<think>a</think> answer")[0] == 1.0
    value, reason = score(v, "<think>a</think><think>b</think>")
    assert value == 0.0 and reason == "0/1 passed: 'think block' occurs at least 2 times, expected exactly 1"
    value, reason = score(v, "no thinking")
    assert value == 0.0 and "occurs 0 times" in reason


def test_min_max_count_and_absent() -> None:
    v = make(mode="search", patterns=[
        {"pattern": r"\bstep\b", "min_count": 2, "max_count": 3, "flags": ["IGNORECASE"]},
        {"pattern": r"</answer>\s*\S", "absent": True, "name": "text after answer"},
    ])
    assert score(v, "Step one, step two. <answer>1</answer>")[0] == 1.0
    assert "at least 2" in score(v, "step one <answer>1</answer>")[1]
    assert "at most 3" in score(v, "step step step step <answer>1</answer>")[1]
    value, reason = score(v, "step step <answer>1</answer> PS")
    assert value == 0.0 and "'text after answer' occurs in the completion but must not" in reason


def test_share_scoring() -> None:
    v = make(mode="search", score="share", patterns=["<think>", "</think>", "<answer>", "</answer>"])
    value, reason = score(v, "<think>x</think> 4")
    assert value == 0.5 and "2/4 passed" in reason
    assert score(v, "")[0] == 0.0


def test_flags_change_meaning() -> None:
    text = "<ANSWER>4</ANSWER>"
    assert score(make(pattern="<answer>.*</answer>"), text)[0] == 0.0
    assert score(make(pattern="<answer>.*</answer>", flags=["IGNORECASE"]), text)[0] == 1.0
    multiline = "<answer>\n4\n</answer>"
    assert score(make(pattern="<answer>.*</answer>", flags=[]), multiline)[0] == 0.0
    assert score(make(pattern="<answer>.*</answer>"), multiline)[0] == 1.0  # DOTALL by default


def test_invalid_pattern_is_load_error_with_position() -> None:
    with pytest.raises(ValidationError) as info:
        FormatRegex.Args.model_validate({"patterns": ["ok", "(<think>.*"]})
    msg = str(info.value)
    assert "invalid regular expression '(<think>.*'" in msg and "at position" in msg
    with pytest.raises(ValidationError, match=r"position 3"):
        FormatRegex.Args.model_validate({"pattern": "abc[", "flags": []})
    with pytest.raises(ValidationError, match="need mode 'search'"):
        FormatRegex.Args.model_validate({"patterns": [{"pattern": "a", "mode": "fullmatch", "count": 1}]})
    with pytest.raises(ValidationError, match="needs `pattern`"):
        FormatRegex.Args.model_validate({})
    with pytest.raises(ValidationError, match="Extra inputs"):
        FormatRegex.Args.model_validate({"pattern": "a", "patern": "b"})


def test_every_arg_is_documented() -> None:
    """`rewardkit verifiers` and the JSON schema show these descriptions and docstrings."""
    from rewardkit.verifiers.format_regex import PatternRule

    for model in (FormatRegex.Args, PatternRule):
        assert model.__dict__.get("__doc__"), model
        for name, field in model.model_fields.items():
            assert field.description, (model.__name__, name)
    assert FormatRegex.__dict__.get("__doc__")


def test_catastrophic_backtracking_is_time_bounded() -> None:
    """The `regex` package's timeout counts CPU time: 0.5 s of matching, which is 0.5 s of wall time
    on an idle core and more only when other processes take the core away."""
    v = make(pattern=r"(a+)+$", mode="search")
    start, cpu = time.monotonic(), time.thread_time()
    value, reason = score(v, "a" * 5000 + "!")
    cpu, elapsed = time.thread_time() - cpu, time.monotonic() - start
    assert cpu < 1.0, cpu
    assert elapsed < 5.0, elapsed  # generous: CI boxes are shared
    assert value == 0.0 and "timed out after 0.5 s" in reason and "backtracking" in reason


def test_timeout_can_be_an_error() -> None:
    v = make(pattern=r"^(a|a)*$", timeout_s=0.2, on_timeout="error")
    s = v.score_batch([{"completion": "a" * 5000 + "!"}], CTX)[0]
    assert s.error is not None and "timed out" in s.error


def test_time_bound_holds_in_a_worker_thread() -> None:
    v = make(pattern=r"(a|aa)+$", mode="search", timeout_s=0.3)
    out: list[tuple[float, str, float]] = []

    def work() -> None:
        cpu = time.thread_time()
        value, reason = score(v, "a" * 5000 + "!")
        out.append((value, reason, time.thread_time() - cpu))

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    assert not t.is_alive()
    value, reason, cpu = out[0]
    assert value == 0.0 and "timed out" in reason and cpu < 1.0


def test_chat_message_completion() -> None:
    v = make(pattern=r"<answer>\d+</answer>")
    sample = {"completion": [{"role": "assistant", "content": "<answer>12</answer>"}]}
    assert v.score_batch([sample], CTX)[0].value == 1.0


def test_invalid_pattern_in_a_spec_names_file_line_and_position() -> None:
    from rewardkit.errors import SpecError
    from rewardkit.spec import load_spec_text

    text = ("version: 1\nname: t\nrewards:\n  - name: fmt\n    verifier: format_regex\n"
            "    args:\n      patterns: ['<think>', '(<answer>.*']\n")
    with pytest.raises(SpecError) as info:
        load_spec_text(text, file="fmt.yaml")
    msg = str(info.value)
    assert "fmt.yaml:7:" in msg and "invalid regular expression '(<answer>.*'" in msg and "at position 0" in msg
