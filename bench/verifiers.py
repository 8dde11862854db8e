"""Verifier throughput: samples/s over N realistic samples, one process and all cores, side by side
with the libraries the verifiers wrap (raw math-verify; BFCL's ast_checker when bench/toolcall_bench.py
is present).

    .venv/bin/python bench/verifiers.py [--n 10000] [--skip-raw-pinned]

Each row gives samples/s (wall clock) and, where it can be counted, CPU ms per sample (this process
plus the verifier's own worker processes). On a shared machine wall time follows other people's
load; CPU time mostly does not, so the CPU ratios are the steadier measure of our overhead.

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
# Wall time on a shared 2-core box swings with other people's load; CPU time (this process plus the
# worker processes it names) does not, so every math row reports both.
def proc_cpu_s(pid: int) -> float:
    """utime + stime of a live process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(fn: Callable[[], Any], repeat: int = 1, pids: Callable[[], Sequence[int]] = tuple) -> tuple[float, float]:
    """(wall s, CPU s) of the fastest of `repeat` runs; CPU counts this process and `pids()`."""
    best = (math.inf, math.inf)
    for _ in range(repeat):
        others = list(pids())
        c0, o0, t0 = time.process_time(), sum(proc_cpu_s(p) for p in others), time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0 + sum(proc_cpu_s(p) for p in others) - o0
        best = min(best, (wall, cpu))
    return best


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    return measured(fn, repeat)[0]


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


def ours_math(samples: list[dict[str, Any]], workers: int, dedupe: bool = True) -> tuple[tuple[float, float], list[float]]:
    """((wall s, CPU s of the parent and its workers), verdicts) for one timed score_batch call."""
    from rewardkit.verifiers.math_equivalence import MathEquivalence

    v = MathEquivalence(MathEquivalence.Args(workers=workers, dedupe=dedupe))
    try:
        v.score_batch(samples[: 4 * workers * GROUP], ScoringContext())  # start and warm every worker
        out: list[float] = []
        pool = v._pool
        assert pool is not None and pool.size() == workers
        worker_pids = [w.proc.pid for w in pool._workers]
        m = measured(lambda: out.extend(s.value for s in v.score_batch(samples, ScoringContext())),
                     pids=lambda: worker_pids)
    finally:
        v.close()
    return m, out


def _raw_chunk(chunk: list[dict[str, Any]]) -> list[bool]:
    return raw_math_verify(chunk)


def raw_pool(samples: list[dict[str, Any]], workers: int) -> float:
    size = math.ceil(len(samples) / (workers * 8))
    chunks = [samples[i : i + size] for i in range(0, len(samples), size)]
    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(_raw_chunk, [samples[:GROUP]] * workers))
        return timed(lambda: list(ex.map(_raw_chunk, chunks)))


def row(name: str, procs: object, n: int, wall: float, base_wall: float | None, cpu: float | None, note: str) -> str:
    speed = f"{base_wall / wall:.2f}" if base_wall else "-"
    cpu_ms = f"{1000 * cpu / n:.2f}" if cpu is not None else "-"
    return f"| {name} | {procs} | {n / wall:,.0f} | {speed} | {cpu_ms} | {note} |"


def bench_math(samples: list[dict[str, Any]], cores: int, pinned: bool) -> list[str]:
    """Ours vs raw math-verify. Speed is relative to raw parse+verify in the main process (wall time);
    the note gives our time (wall and CPU) over raw's: the issue's "overhead ratio"."""
    from rewardkit.verifiers.math_extract import extract_answer, gold_parse_input

    n = len(samples)
    raw_math_verify(samples[:64])  # sympy's first-use costs are not part of the steady state
    raw_verdicts: list[bool] = []
    raw_w, raw_c = measured(lambda: raw_verdicts.extend(raw_math_verify(samples)))
    same_w, same_c = measured(lambda: raw_on_our_inputs(samples))
    (o1_w, o1_c), ours1 = ours_math(samples, 1)
    (o1n_w, o1n_c), _ = ours_math(samples, 1, dedupe=False)
    (on_w, on_c), _ = ours_math(samples, cores)
    (onn_w, onn_c), _ = ours_math(samples, cores, dedupe=False)
    rawpool_w = raw_pool(samples, cores)
    unique = len({(gold_parse_input(s["answer"]), getattr(extract_answer(s["completion"], "auto", "answer", 4000),
                                                          "parse_input", None)) for s in samples})

    def vs(wall: float, cpu: float) -> str:
        return (f"time ratio vs raw: wall {wall / raw_w:.2f}, CPU {cpu / raw_c:.2f}; vs raw on our inputs: "
                f"wall {wall / same_w:.2f}, CPU {cpu / same_c:.2f}")

    rows = [
        row("raw math-verify parse(gold)+parse(completion)+verify, main process", 1, n, raw_w, raw_w, raw_c,
            "baseline: what a user writes"),
        row("raw math-verify on our extracted inputs, main process", 1, n, same_w, raw_w, same_c,
            "same maths as ours, none of our machinery"),
        row("raw math-verify, ProcessPoolExecutor", cores, n, rawpool_w, raw_w, None, "no time limit, no kill"),
        row("math_equivalence, 1 worker (default: dedupe on)", 1, n, o1_w, raw_w, o1_c, vs(o1_w, o1_c)),
        row("math_equivalence, 1 worker, dedupe off", 1, n, o1n_w, raw_w, o1n_c, vs(o1n_w, o1n_c)),
        row(f"math_equivalence, {cores} workers (default: dedupe on)", cores, n, on_w, raw_w, on_c,
            f"{raw_w / on_w:.2f}x faster than raw (wall)"),
        row(f"math_equivalence, {cores} workers, dedupe off", cores, n, onn_w, raw_w, onn_c,
            f"{raw_w / onn_w:.2f}x faster than raw, {same_w / onn_w:.2f}x raw on our inputs (wall)"),
    ]
    if pinned and hasattr(os, "sched_setaffinity"):
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})  # children (pool workers) inherit the mask
        try:
            rawp_w, rawp_c = measured(lambda: raw_math_verify(samples))
            (tp_w, tp_c), _ = ours_math(samples, 1, dedupe=False)
        finally:
            os.sched_setaffinity(0, cpus)
        rows.append(row("raw math-verify, pinned to 1 CPU", "1 CPU", n, rawp_w, raw_w, rawp_c, "-"))
        rows.append(row("math_equivalence parent + 1 worker, dedupe off, pinned to 1 CPU", "1 CPU", n, tp_w, raw_w,
                        tp_c, f"time ratio vs raw pinned: wall {tp_w / rawp_w:.2f}, CPU {tp_c / rawp_c:.2f}"))
    agree = statistics.mean((o == 1.0) == r for o, r in zip(ours1, raw_verdicts, strict=True))
    acc = statistics.mean(o == 1.0 for o in ours1)
    rows.append(f"| (verdicts: {acc:.1%} of samples correct; agreement with raw math-verify {agree:.1%}; "
                f"{unique / n:.0%} of (gold, answer) pairs unique within the run) | | | | | |")
    return rows


def bench_toolcall(n: int, cores: int) -> list[str]:
    """Rows from bench/toolcall_bench.py (owned by the tool_call_match work), when it is there and runs."""
    try:
        from bench.toolcall_bench import rows as toolcall_rows
        table = toolcall_rows(n, cores)
    except Exception as exc:  # noqa: BLE001 - that bench is written separately; say why it is missing
        return [f"| tool_call_match vs BFCL ast_checker | - | - | - | - | skipped: bench/toolcall_bench.py "
                f"failed ({type(exc).__name__}: {exc}) |"]
    out = []
    for r in table:
        procs = cores if "pool" in str(r.get("method", "")) else 1
        agree = f"verdicts agree with BFCL's checker on {r['agree']:.2%}" if "agree" in r else ""
        out.append(f"| {r.get('method')} | {procs} | {r.get('samples_per_s', 0):,.0f} | "
                   f"{r.get('vs_bfcl', float('nan')):.2f} (vs BFCL ast_checker) | - | {agree} |")
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
    n = len(maths)
    print(f"{n} samples per verifier, {cores} CPUs, python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    print("| verifier | processes | samples/s | speed vs baseline | CPU ms/sample | note |")
    print("|---|---|---|---|---|---|", flush=True)
    if "format" in only:
        fmt = format_samples(maths)
        v = make_format()
        t, c = measured(lambda: v.score_batch(fmt, ScoringContext()), repeat=3)
        print(row("format_regex (fullmatch + count)", 1, n, t, None, c, "in-process"))
        print(row("format_regex", cores, n, n / pooled(make_format, fmt, cores), None, None,
                  "batch split over a ProcessPoolExecutor"), flush=True)
    if "length" in only:
        global _TOKENIZER_PATH
        with tempfile.TemporaryDirectory() as d:
            _TOKENIZER_PATH = os.path.join(d, "tokenizer.json")
            train_tokenizer([s["completion"] for s in maths[:2000]], _TOKENIZER_PATH)
            v = make_length_tokens()
            t, c = measured(lambda: v.score_batch(maths, ScoringContext()), repeat=3)
            print(row("length_limit tokens (BPE 4k vocab, soft)", 1, n, t, None, c,
                      "tokenizers encode_batch (may use its own threads)"))
            print(row("length_limit tokens", cores, n, n / pooled(make_length_tokens, maths, cores), None, None,
                      "batch split over a ProcessPoolExecutor"))
            w = make_length_words()
            t, c = measured(lambda: w.score_batch(maths, ScoringContext()), repeat=3)
            print(row("length_limit words", 1, n, t, None, c, "in-process"), flush=True)
    if "math" in only:
        for line in bench_math(maths, cores, pinned=not args.skip_raw_pinned):
            print(line, flush=True)
    if "toolcall" in only:
        for line in bench_toolcall(args.n, cores):
            print(line, flush=True)


if __name__ == "__main__":
    main()
