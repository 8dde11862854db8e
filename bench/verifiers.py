"""Verifier throughput: samples/s over N realistic samples, one process and all cores, side by side
with the libraries the verifiers wrap (raw math-verify; BFCL's ast_checker when bench/toolcall_bench.py
is present).

    .venv/bin/python bench/verifiers.py [--n 10000] [--skip-raw-pinned]

Math samples come in GRPO-like groups of 8 rollouts sharing a gold answer; completions are
chain-of-thought paragraphs ending in \\boxed{...} (or "The final answer is $...$"), right in the
gold's form, right in an equivalent form, or wrong. Everything is generated from a fixed seed.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rewardkit.verifier import ScoringContext, Verifier  # noqa: E402

GROUP = 8
FILLER = [
    "First, let us restate the problem in our own words.", "We can simplify the expression step by step.",
    "Substituting $x = {a}$ gives ${a}^2 + {b} = {c}$.", "Notice that the two terms share a factor of ${b}$.",
    "Multiplying both sides by ${a}$ we obtain the equation below.", "Let me double-check the arithmetic here.",
    "So the sum is ${a} + {b} = {s}$, which matches our estimate.", "This means the ratio is $\\frac{{{a}}}{{{b}}}$.",
    "Now, consider the case where $n > {a}$ separately.", "Therefore the remaining quantity is {c}.",
    "Wait, I made an error; recomputing gives {s}.", "Hence the condition holds for every integer $k \\ge {b}$.",
]


def _gold_and_forms(rng: random.Random) -> tuple[str, list[str], list[str]]:
    """A gold answer, equivalent ways to write it, and wrong answers."""
    kind = rng.random()
    if kind < 0.4:
        n = rng.randint(-50, 5000)
        forms = [str(n), f"{n:,}" if abs(n) >= 1000 else f"{n}.0"]
        return str(n), forms, [str(n + rng.choice([-2, -1, 1, 10])), str(-n if n else 7)]
    if kind < 0.6:
        a, b = rng.randint(1, 30), rng.randint(2, 16)
        g = math.gcd(a, b)
        a, b = a // g, b // g
        if b == 1:
            b = 7
        dec = f"{a / b:.6f}".rstrip("0").rstrip(".")
        return f"\\frac{{{a}}}{{{b}}}", [f"\\frac{{{a}}}{{{b}}}", f"{a}/{b}", f"\\dfrac{{{a}}}{{{b}}}", dec], \
            [f"\\frac{{{b}}}{{{a}}}", f"\\frac{{{a + 1}}}{{{b}}}"]
    if kind < 0.7:
        k, m = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7])
        return f"{k}\\sqrt{{{m}}}", [f"{k}\\sqrt{{{m}}}", f"\\sqrt{{{k * k * m}}}"], [f"{k + 1}\\sqrt{{{m}}}", f"\\sqrt{{{m}}}"]
    if kind < 0.8:
        lo, hi = rng.randint(-9, 0), rng.randint(1, 9)
        return f"({lo},{hi}]", [f"({lo}, {hi}]", f"({lo},{hi}]"], [f"[{lo},{hi}]", f"({lo},{hi})"]
    if kind < 0.9:
        p = rng.randint(1, 99)
        return f"{p}\\%", [f"{p}\\%", str(p), f"{p / 100:g}"], [f"{p + 1}\\%", str(p * 10)]
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    return f"x^2+{2 * a}x+{a * a}", [f"(x+{a})^2", f"x^2+{2 * a}x+{a * a}"], [f"(x+{b + 10})^2", f"x^2+{a * a}"]


def _reasoning(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        out.append(rng.choice(FILLER).format(a=a, b=b, c=a * a + b, s=a + b))
    return " ".join(out)


def math_samples(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    samples: list[dict[str, Any]] = []
    while len(samples) < n:
        gold, forms, wrong = _gold_and_forms(rng)
        for _ in range(GROUP):
            answer = rng.choice(forms) if rng.random() < 0.55 else rng.choice(wrong)
            body = _reasoning(rng, rng.randint(6, 22))
            end = f"The final answer is ${answer}$." if rng.random() < 0.1 else f"So the answer is $\\boxed{{{answer}}}$."
            samples.append({"completion": f"{body}\n\n{end}", "answer": gold})
    return samples[:n]


def format_samples(math: Sequence[dict[str, Any]], seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for s in math:
        body, _, end = s["completion"].rpartition("\n\n")
        r = rng.random()
        if r < 0.6:
            text = f"<think>{body}</think>\n<answer>{end}</answer>"
        elif r < 0.75:
            text = f"<think>{body}</think><think>again</think>\n<answer>{end}</answer>"
        elif r < 0.9:
            text = f"<think>{body}</think>\n{end}"
        else:
            text = f"{body}\n<answer>{end}</answer> trailing"
        out.append({**s, "completion": text})
    return out


# -- timing ----------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


_WORKER_VERIFIER: Verifier | None = None


def _init_worker(factory: Callable[[], Verifier]) -> None:
    global _WORKER_VERIFIER
    _WORKER_VERIFIER = factory()


def _score_chunk(chunk: list[dict[str, Any]]) -> int:
    assert _WORKER_VERIFIER is not None
    return len(_WORKER_VERIFIER.score_batch(chunk, ScoringContext()))


def pooled(factory: Callable[[], Verifier], samples: list[dict[str, Any]], workers: int) -> float:
    """samples/s of an in-process verifier with the batch split over `workers` processes
    (pool started and warmed before timing; pickling the samples is counted)."""
    size = math.ceil(len(samples) / (workers * 4))
    chunks = [samples[i : i + size] for i in range(0, len(samples), size)]
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(factory,)) as ex:
        list(ex.map(_score_chunk, chunks[:workers]))
        t = timed(lambda: sum(ex.map(_score_chunk, chunks)))
    return len(samples) / t


def make_format() -> Verifier:
    from rewardkit.verifiers.format_regex import FormatRegex

    return FormatRegex(FormatRegex.Args.model_validate({
        "pattern": r"<think>.*?</think>\s*<answer>.*?</answer>",
        "patterns": [{"pattern": "<think>", "count": 1, "name": "one think block"}], "strip": True}))


_TOKENIZER_PATH = ""


def make_length_tokens() -> Verifier:
    from rewardkit.verifiers.length_limit import LengthLimit

    return LengthLimit(LengthLimit.Args(max_length=300, mode="soft", buffer=60, tokenizer=_TOKENIZER_PATH))


def make_length_words() -> Verifier:
    from rewardkit.verifiers.length_limit import LengthLimit

    return LengthLimit(LengthLimit.Args(max_length=250, unit="words"))


def train_tokenizer(texts: list[str], path: str) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.save(path)


# -- math: ours vs raw math-verify -----------------------------------------------------------------
def raw_math_verify(samples: Sequence[dict[str, Any]]) -> list[bool]:
    """What a user would write: parse the gold (in the same delimited form our verifier hands
    math-verify, so both do the same maths) and the whole completion, then verify."""
    from math_verify import parse, verify
    from rewardkit.verifiers.math_extract import gold_parse_input

    return [bool(verify(parse(gold_parse_input(s["answer"])), parse(s["completion"]))) for s in samples]


def raw_on_our_inputs(samples: Sequence[dict[str, Any]]) -> list[bool]:
    """math-verify called in-process on exactly the strings our verifier sends its workers
    (extracted answer, delimited gold): the difference to ours is the cost of our machinery."""
    from math_verify import parse, verify
    from rewardkit.verifiers.math_extract import extract_answer, gold_parse_input

    out = []
    for s in samples:
        found = extract_answer(s["completion"], "auto", "answer", 4000)
        out.append(found is not None and bool(verify(parse(gold_parse_input(s["answer"])), parse(found.parse_input))))
    return out


def ours_math(samples: list[dict[str, Any]], workers: int, dedupe: bool = True) -> tuple[float, list[float]]:
    from rewardkit.verifiers.math_equivalence import MathEquivalence

    v = MathEquivalence(MathEquivalence.Args(workers=workers, dedupe=dedupe))
    try:
        v.score_batch(samples[: 4 * workers * GROUP], ScoringContext())  # start and warm every worker
        out: list[float] = []
        t = timed(lambda: out.extend(s.value for s in v.score_batch(samples, ScoringContext())))
    finally:
        v.close()
    return t, out


def _raw_chunk(chunk: list[dict[str, Any]]) -> list[bool]:
    return raw_math_verify(chunk)


def raw_pool(samples: list[dict[str, Any]], workers: int) -> float:
    size = math.ceil(len(samples) / (workers * 8))
    chunks = [samples[i : i + size] for i in range(0, len(samples), size)]
    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(_raw_chunk, [samples[:GROUP]] * workers))
        return timed(lambda: list(ex.map(_raw_chunk, chunks)))


def bench_math(samples: list[dict[str, Any]], cores: int, pinned: bool) -> list[str]:
    rows = []
    raw_math_verify(samples[:64])  # sympy's first-use costs are not part of the steady state
    raw_verdicts: list[bool] = []
    raw_verify = timed(lambda: raw_verdicts.extend(raw_math_verify(samples)))
    raw_same = timed(lambda: raw_on_our_inputs(samples))
    t1, ours1 = ours_math(samples, 1)
    t1_nodup, _ = ours_math(samples, 1, dedupe=False)
    tn, oursn = ours_math(samples, cores)
    tn_nodup, _ = ours_math(samples, cores, dedupe=False)
    from rewardkit.verifiers.math_extract import extract_answer, gold_parse_input

    unique = len({(gold_parse_input(s["answer"]), getattr(extract_answer(s["completion"], "auto", "answer", 4000),
                                                          "parse_input", None)) for s in samples})
    raw_n = raw_pool(samples, cores)
    n = len(samples)
    agree = statistics.mean((o == 1.0) == r for o, r in zip(ours1, raw_verdicts, strict=True))
    acc = statistics.mean(o == 1.0 for o in ours1)
    rows.append(f"| raw math-verify parse+verify, main process | 1 | {n / raw_verify:,.0f} | 1.00 | - |")
    rows.append(f"| raw math-verify on our extracted inputs, main process | 1 | {n / raw_same:,.0f} | "
                f"{raw_verify / raw_same:.2f} | same maths as ours, no pool |")
    rows.append(f"| raw math-verify, ProcessPoolExecutor | {cores} | {n / raw_n:,.0f} | {raw_verify / raw_n:.2f} | - |")
    rows.append(f"| math_equivalence, 1 worker | 1 | {n / t1:,.0f} | {raw_verify / t1:.2f} | "
                f"time ratio {t1 / raw_verify:.2f} vs raw, {t1 / raw_same:.2f} vs raw on our inputs |")
    rows.append(f"| math_equivalence, 1 worker, dedupe off | 1 | {n / t1_nodup:,.0f} | {raw_verify / t1_nodup:.2f} | "
                f"time ratio {t1_nodup / raw_verify:.2f} vs raw, {t1_nodup / raw_same:.2f} vs raw on our inputs |")
    rows.append(f"| math_equivalence, {cores} workers | {cores} | {n / tn:,.0f} | {raw_verify / tn:.2f} | "
                f"{raw_verify / tn:.2f}x raw |")
    rows.append(f"| math_equivalence, {cores} workers, dedupe off | {cores} | {n / tn_nodup:,.0f} | "
                f"{raw_verify / tn_nodup:.2f} | {raw_verify / tn_nodup:.2f}x raw, {raw_same / tn_nodup:.2f}x raw on our inputs |")
    if pinned and hasattr(os, "sched_setaffinity"):
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})  # children (pool workers) inherit the mask
        try:
            raw_p = timed(lambda: raw_math_verify(samples))
            raw_same_p = timed(lambda: raw_on_our_inputs(samples))
            tp, _ = ours_math(samples, 1, dedupe=False)
        finally:
            os.sched_setaffinity(0, cpus)
        rows.append(f"| raw math-verify, pinned to 1 CPU | 1 CPU | {n / raw_p:,.0f} | {raw_verify / raw_p:.2f} | - |")
        rows.append(f"| raw math-verify on our inputs, pinned to 1 CPU | 1 CPU | {n / raw_same_p:,.0f} | "
                    f"{raw_verify / raw_same_p:.2f} | - |")
        rows.append(f"| math_equivalence 1 worker + parent, dedupe off, pinned to 1 CPU | 1 CPU | {n / tp:,.0f} | "
                    f"{raw_verify / tp:.2f} | time ratio {tp / raw_p:.2f} vs raw pinned, "
                    f"{tp / raw_same_p:.2f} vs raw on our inputs pinned |")
    rows.append(f"| (verdicts: {acc:.1%} of samples correct; agreement with raw math-verify {agree:.1%}; "
                f"{unique / n:.0%} of (gold, answer) pairs unique within the run) | | | | |")
    return rows


def bench_toolcall(n: int, cores: int) -> list[str]:
    try:
        from bench.toolcall_bench import rows as toolcall_rows  # written with the tool_call_match work
    except ImportError as exc:
        return [f"| tool_call_match vs BFCL ast_checker | - | - | - | skipped: bench/toolcall_bench.py not importable ({exc}) |"]
    out = []
    for r in toolcall_rows(n, cores):
        procs = cores if "pool" in str(r.get("method", "")) else 1
        agree = f"agreement with BFCL {r['agree']:.2%}" if "agree" in r else ""
        out.append(f"| {r.get('method')} | {procs} | {r.get('samples_per_s', 0):,.0f} | "
                   f"{r.get('vs_bfcl', float('nan')):.2f} | {agree} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="samples per verifier")
    ap.add_argument("--skip-raw-pinned", action="store_true", help="skip the pinned-to-one-CPU math rows")
    ap.add_argument("--only", choices=["format", "length", "math", "toolcall"], action="append")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    only = set(args.only or ["format", "length", "math", "toolcall"])
    maths = math_samples(args.n)
    print(f"{args.n} samples per verifier, {cores} CPUs, python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print("| verifier | processes | samples/s | speed vs baseline | note |")
    print("|---|---|---|---|---|")
    if "format" in only:
        fmt = format_samples(maths)
        v = make_format()
        t = timed(lambda: v.score_batch(fmt, ScoringContext()), repeat=3)
        print(f"| format_regex (fullmatch + count) | 1 | {len(fmt) / t:,.0f} | - | in-process |")
        print(f"| format_regex | {cores} | {pooled(make_format, fmt, cores):,.0f} | - | batch split over a process pool |")
    if "length" in only:
        global _TOKENIZER_PATH
        with tempfile.TemporaryDirectory() as d:
            _TOKENIZER_PATH = os.path.join(d, "tokenizer.json")
            train_tokenizer([s["completion"] for s in maths[:2000]], _TOKENIZER_PATH)
            v = make_length_tokens()
            t = timed(lambda: v.score_batch(maths, ScoringContext()), repeat=3)
            print(f"| length_limit tokens (BPE 4k vocab, soft) | 1 | {len(maths) / t:,.0f} | - | "
                  "tokenizers encode_batch (uses its own threads) |")
            print(f"| length_limit tokens | {cores} | {pooled(make_length_tokens, maths, cores):,.0f} | - | "
                  "batch split over a process pool |")
            w = make_length_words()
            t = timed(lambda: w.score_batch(maths, ScoringContext()), repeat=3)
            print(f"| length_limit words | 1 | {len(maths) / t:,.0f} | - | in-process |")
    if "math" in only:
        for row in bench_math(maths, cores, pinned=not args.skip_raw_pinned):
            print(row, flush=True)
    if "toolcall" in only:
        for row in bench_toolcall(args.n, cores):
            print(row, flush=True)


if __name__ == "__main__":
    main()
