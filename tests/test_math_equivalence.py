"""math_equivalence: 200+ gold/answer pairs, extraction, divergences from raw math-verify (each
explained), a per-pair time limit that holds in threads, a hard kill for stuck workers, the pool."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from rewardkit.verifier import ScoringContext
from rewardkit.verifiers._math.extract import boxed, extract_answer, last_boxed, last_number, last_tag
from rewardkit.verifiers.math_equivalence import MathEquivalence

math_verify = pytest.importorskip("math_verify")

PAIRS = [json.loads(line) for line in (Path(__file__).parent / "data" / "math_pairs.jsonl").open()]
CTX = ScoringContext()


@pytest.fixture(scope="module")
def mq() -> Iterator[MathEquivalence]:
    v = MathEquivalence(MathEquivalence.Args(timeout_s=3.0))
    yield v
    v.close()


@pytest.fixture(scope="module")
def by_mode(mq: MathEquivalence) -> Iterator[dict[str, MathEquivalence]]:
    """One verifier per extraction mode, created on first use (each starts a worker process)."""
    made: dict[str, MathEquivalence] = {"auto": mq}
    yield made
    for mode, v in made.items():
        if mode != "auto":
            v.close()


def sample(completion: str, gold: object) -> dict[str, object]:
    return {"completion": completion, "answer": gold}


def raw_verdict(gold: object, completion: str) -> bool:
    """Calling math-verify directly, as its README shows."""
    return bool(math_verify.verify(math_verify.parse(str(gold)), math_verify.parse(completion)))


# -- the pair corpus ------------------------------------------------------------------------------
def test_corpus_size_and_coverage() -> None:
    assert len(PAIRS) >= 200
    cats = Counter(p["category"] for p in PAIRS)
    for needed in ("fraction-decimal", "frac-slash", "dfrac", "set", "interval", "percent", "units",
                   "radical", "scientific", "thousands", "near-miss"):
        assert cats[needed] >= 4, needed
    assert sum(not p["expect"] for p in PAIRS) >= 60  # near misses that must fail


def test_every_pair_gets_the_expected_verdict(mq: MathEquivalence) -> None:
    scores = mq.score_batch([sample(p["completion"], p["gold"]) for p in PAIRS], CTX)
    wrong = [(p["gold"], p["completion"][-40:], p["expect"], s.reason)
             for p, s in zip(PAIRS, scores, strict=True) if (s.value == 1.0) != p["expect"]]
    assert not wrong, wrong
    assert all(s.error is None for s in scores)


def divergence_reason(pair: dict[str, object]) -> str | None:
    """Why our verdict may differ from raw math-verify on this pair (None: it must not differ)."""
    gold, completion = str(pair["gold"]), str(pair["completion"])
    if not re.search(r"(?<!\\)\$|\\\(|\\\[|\\boxed", gold):
        if not math_verify.verify(math_verify.parse(boxed(gold)), math_verify.parse(gold)):
            return ("bare-LaTeX gold: outside a math environment raw parse(gold) finds nothing or a wrong "
                    "number (e.g. '1.5\\times 10^{3}' -> 10, '\\sqrt{2}' -> []); we wrap gold in \\boxed{}")
    if "<answer>" in completion:
        return "answer tag: raw math-verify needs whitespace before a number, so '<answer>7</answer>' gives nothing"
    if completion.count("\\boxed") > 1:
        return "several boxes: we read the last \\boxed{} (the corrected answer), raw math-verify the first"
    if re.search(r"\\boxed\{-?[\d.]+e", completion):
        return "e-notation: raw math-verify reads '1.5e3' as 1.5*e*3 (Euler's number); we rewrite it as 1.5\\times 10^{3}"
    if "%" in gold or "%" in completion:
        return "decimal percentage: math-verify equates 9% with 9 only for integers; we also accept 37.5% = 37.5"
    return None


def test_divergences_from_raw_math_verify_are_all_explained(mq: MathEquivalence) -> None:
    scores = mq.score_batch([sample(p["completion"], p["gold"]) for p in PAIRS], CTX)
    diverging = [(p, s) for p, s in zip(PAIRS, scores, strict=True)
                 if raw_verdict(p["gold"], p["completion"]) != (s.value == 1.0)]
    unexplained = [(p["gold"], p["completion"][-40:]) for p, _ in diverging if divergence_reason(p) is None]
    assert not unexplained, unexplained
    # Every divergence is raw math-verify missing a correct answer: we never accept what the pair says is wrong.
    assert all(p["expect"] and s.value == 1.0 for p, s in diverging)
    assert len(diverging) >= 10  # the corpus exercises each reason above


@pytest.mark.parametrize(("gold", "completion", "raw", "ours", "why"), [
    ("\\sqrt{2}", "so \\boxed{\\sqrt 2}", False, True, "bare LaTeX gold is not parsed by raw math-verify"),
    ("1.5\\times 10^{3}", "\\boxed{1500}", False, True, "raw parse reads bare gold '1.5\\times 10^{3}' as 10"),
    ("7", "<think>t</think><answer>7</answer>", False, True, "raw needs a space before the number"),
    ("\\frac{1}{2}", "First \\boxed{3}, then corrected: \\boxed{\\frac{1}{2}}", False, True, "last box wins"),
    ("1500", "\\boxed{1.5e3}", False, True, "e-notation is not Euler's number"),
    ("37.5\\%", "\\boxed{37.5}", True, True, "raw drops % from bare gold; we accept a dropped % on decimals"),
    ("37.5", "\\boxed{37.5\\%}", False, True, "we accept an added % on decimals like math-verify does on integers"),
])
def test_documented_divergences(mq: MathEquivalence, gold: str, completion: str, raw: bool, ours: bool,
                                why: str) -> None:
    assert raw_verdict(gold, completion) is raw, why
    assert (mq.score_batch([sample(completion, gold)], CTX)[0].value == 1.0) is ours, why


# -- extraction ------------------------------------------------------------------------------------
def test_extraction_helpers() -> None:
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{1}{\\sqrt{2}}} done") == "\\frac{1}{\\sqrt{2}}"
    assert last_boxed("\\boxed{\\{1,2\\}}") == "\\{1,2\\}"  # escaped braces do not close the box
    assert last_boxed("\\boxed{3} and truncated \\boxed{4") == "3"
    assert last_boxed("\\fbox{5}") == "5" and last_boxed("\\boxed 7$") == "7" and last_boxed("none") is None
    assert last_tag("<answer>1</answer> <answer> 2 </answer>", "answer") == " 2 "
    assert last_tag("<answer>unclosed", "answer") is None
    assert last_number("x2 is 3, then 1,234.5 items") == "1,234.5"
    assert last_number("ratio 3/4.") == "3/4" and last_number("none") is None
    assert extract_answer("a 6.02e23", "last_number", "answer", 100).parse_input == "\\boxed{6.02\\times 10^{23}}"


@pytest.mark.parametrize(("mode", "completion", "gold", "value", "reason"), [
    ("boxed", "the answer is 4", 4, 0.0, "no complete \\boxed{...} in the completion"),
    ("tag", "\\boxed{4}", 4, 0.0, "no <answer>...</answer> in the completion"),
    ("last_number", "so 3 apples, then 4", 4, 1.0, "correct: last number answer '4' equals gold '4'"),
    ("last_number", "no digits", 4, 0.0, "no number in the completion"),
    ("full", "We get $x = \\frac{3}{4}$ at the end.", "0.75", 1.0, "correct: text answer"),
    ("auto", "<answer>The answer is 12 apples</answer>", 12, 1.0, "correct: <answer> answer '12' equals gold '12'"),
    ("auto", "\\boxed{5}", 4, 0.0, "wrong: \\boxed{} answer '5' does not equal gold '4'"),
    ("auto", "", 4, 0.0, "the completion is empty"),
])
def test_extraction_modes(by_mode: dict[str, MathEquivalence], mode: str, completion: str, gold: object,
                          value: float, reason: str) -> None:
    if mode not in by_mode:
        by_mode[mode] = MathEquivalence(MathEquivalence.Args.model_validate({"extract": mode}))
    s = by_mode[mode].score_batch([sample(completion, gold)], CTX)[0]
    assert s.value == value and reason in s.reason, s.reason


# -- gold handling and errors -----------------------------------------------------------------------
def test_gold_forms_and_bad_data(mq: MathEquivalence) -> None:
    got = mq.score_batch([
        sample("\\boxed{0.25}", 0.25),                 # JSON number
        sample("\\boxed{\\frac{1}{4}}", "$0.25$"),      # LaTeX with delimiters
        sample("\\boxed{2}", ["-2", "2"]),             # list of accepted answers
        {"completion": "\\boxed{2}"},                  # field missing
        sample("\\boxed{2}", True),                    # not a number or string
        sample("\\boxed{2}", "  "),                    # empty
    ], CTX)
    assert [s.value for s in got[:3]] == [1.0, 1.0, 1.0]
    assert got[3].error is not None and "no field 'answer'" in got[3].error
    assert got[4].error is not None and "boolean" in got[4].error
    assert got[5].error is not None and "empty" in got[5].error
    assert all("\n" not in s.reason for s in got)


def test_args_documented_and_validated() -> None:
    for name, field in MathEquivalence.Args.model_fields.items():
        assert field.description, name
    assert MathEquivalence.Args.__dict__.get("__doc__") and MathEquivalence.__dict__.get("__doc__")
    with pytest.raises(ValidationError):
        MathEquivalence.Args.model_validate({"extract": "boxes"})
    with pytest.raises(ValidationError):
        MathEquivalence.Args.model_validate({"tag": "a b"})
    assert MathEquivalence(MathEquivalence.Args()).required_fields() == ["answer"]


# -- time limits, threads, the pool -----------------------------------------------------------------
def nested_frac(depth: int) -> str:
    s = "1"
    for _ in range(depth):
        s = "\\frac{1}{" + s + "}"
    return s


PATHOLOGICAL = ["\\boxed{" + nested_frac(1000) + "}", "\\boxed{2^{2^{2^{2^{2^{10}}}}}}", "\\boxed{(10^{8})!}"]


def test_raw_math_verify_cannot_time_out_in_a_thread() -> None:
    """Why we need our own limit: math-verify's signal-based timeout refuses to run off the main thread."""
    errors: list[BaseException] = []

    def call() -> None:
        try:
            math_verify.parse("\\boxed{1}")
        except ValueError as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    t.join()
    assert errors and "threaded environment" in str(errors[0])


def test_time_limit_holds_in_a_worker_thread() -> None:
    v = MathEquivalence(MathEquivalence.Args(timeout_s=1.0))
    try:
        v.score_batch([sample("\\boxed{1}", 1)], CTX)  # start the worker outside the timed part
        out: list[list[object]] = []
        batch = [sample(c, 1) for c in PATHOLOGICAL] + [sample("\\boxed{\\frac{2}{2}}", 1)]
        t = threading.Thread(target=lambda: out.append(v.score_batch(batch, CTX)))
        start = time.monotonic()
        t.start()
        t.join(30)
        elapsed = time.monotonic() - start
        assert not t.is_alive()
        scores = out[0]
        assert [s.value for s in scores] == [0.0, 0.0, 0.0, 1.0]  # type: ignore[attr-defined]
        assert all("timed out after 1 s" in s.reason for s in scores[:3])  # type: ignore[attr-defined]
        assert elapsed < 3 * 1.0 + 4.0, elapsed  # three limits, plus slack for a loaded machine
    finally:
        v.close()


def test_stuck_worker_is_killed_and_replaced() -> None:
    """Work stuck where no signal reaches it (simulated by freezing the worker with SIGSTOP)
    is stopped by the parent's hard deadline; the tasks queued behind it still get judged."""
    v = MathEquivalence(MathEquivalence.Args(timeout_s=0.5, workers=1))
    try:
        assert v.score_batch([sample("\\boxed{1}", 1)], CTX)[0].value == 1.0
        pool = v._pool
        assert pool is not None and pool.size() == 1
        os.kill(pool._workers[0].proc.pid, signal.SIGSTOP)
        start = time.monotonic()
        scores = v.score_batch([sample("\\boxed{1}", 1), sample("\\boxed{2}", 2), sample("\\boxed{3}", 4)], CTX)
        elapsed = time.monotonic() - start
        assert scores[0].value == 0.0 and "killed after" in scores[0].reason
        assert [s.value for s in scores[1:]] == [1.0, 0.0]
        assert pool.kills == 1 and pool.size() == 1
        assert elapsed < v.hard_deadline_s() + 30  # deadline, plus a fresh worker's start-up
    finally:
        v.close()


def test_pool_size_follows_batch_size_and_close_stops_workers() -> None:
    v = MathEquivalence(MathEquivalence.Args(workers=2, parallel_min_batch=8))
    try:
        assert v.score_batch([sample("\\boxed{1}", 1)] * 3, CTX)[0].value == 1.0
        pool = v._pool
        assert pool is not None and pool.size() == 1  # small batch: one worker
        batch = [sample(f"\\boxed{{{i}}}", i if i % 3 else i + 1) for i in range(40)]
        scores = v.score_batch(batch, CTX)
        assert [s.value for s in scores] == [0.0 if i % 3 == 0 else 1.0 for i in range(40)]
        assert pool.size() == 2  # large batch: the whole pool
        procs = [w.proc for w in pool._workers]
    finally:
        v.close()
    assert all(p.poll() is not None for p in procs)


def test_worker_that_died_between_calls_is_replaced() -> None:
    v = MathEquivalence(MathEquivalence.Args(workers=1))
    try:
        assert v.score_batch([sample("\\boxed{1}", 1)], CTX)[0].value == 1.0
        pool = v._pool
        assert pool is not None
        dead = pool._workers[0].proc
        os.kill(dead.pid, signal.SIGKILL)
        dead.wait()
        scores = v.score_batch([sample("\\boxed{2}", 2), sample("\\boxed{3}", 2)], CTX)
        assert [s.value for s in scores] == [1.0, 0.0] and all(s.error is None for s in scores)
        assert pool.size() == 1 and pool._workers[0].proc is not dead
    finally:
        v.close()


def test_pool_survives_a_worker_that_speaks_garbage() -> None:
    """A worker whose stdout is not the JSON protocol (here `python -m this`, which prints a poem and
    exits) is dropped, retried a bounded number of times, then its tasks fail with the reason."""
    from rewardkit.verifiers._worker_pool import WorkerPool

    pool = WorkerPool("this", 1, deadline_s=lambda task: 5.0,
                      on_kill=lambda task, why: {"i": task["i"], "failed": why})
    try:
        start = time.monotonic()
        results = pool.run([{"i": 0}, {"i": 1}], [[0], [1]], 1)
        assert time.monotonic() - start < 30
    finally:
        pool.close()
    assert [r["i"] for r in results] == [0, 1]
    assert all("worker failed to start" in r["failed"] and "not a protocol message" in r["failed"]
               for r in results), results
    assert pool.size() == 0


# -- digit commas: one rule for gold and answer (issue 13) ---------------------------------------
# groups of exactly three digits are thousands separators; any other comma separates items
COMMA_CASES = [
    ("1,2", "\\boxed{1,2}", 1.0), ("1,2", "\\boxed{12}", 0.0),  # gold `1,2` used to be read as 12
    ("12", "\\boxed{1,2}", 0.0), ("1,2,3", "\\boxed{123}", 0.0), ("1,2,3", "\\boxed{3,2,1}", 1.0),
    ("1,23", "\\boxed{123}", 0.0), ("123", "\\boxed{1,23}", 0.0),
    ("1,234", "\\boxed{1234}", 1.0), ("1234", "\\boxed{1,234}", 1.0), ("1,234", "\\boxed{1,234}", 1.0),
    ("12,345,678", "\\boxed{12345678}", 1.0), ("1,234%", "\\boxed{1234\\%}", 1.0),
    (1234, "\\boxed{1,234}", 1.0), ("1234", "<answer>1,234</answer>", 1.0), ("1,2", "<answer>12</answer>", 0.0),
]


@pytest.mark.parametrize(("gold", "completion", "expected"), COMMA_CASES)
def test_digit_commas_follow_one_rule_for_gold_and_answer(mq: MathEquivalence, gold: object, completion: str,
                                                          expected: float) -> None:
    (score,) = mq.score_batch([sample(completion, gold)], CTX)
    assert score.value == expected, score.reason
