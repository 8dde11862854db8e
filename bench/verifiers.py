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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rewardkit.verifier import ScoringContext, Verifier

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


# --- timing ---------------------------------------------------------------------------------------
# Wall time on a shared 2-core box swings with other people's load. Two steadier measures go next
# to it: CPU time (this process plus the worker processes that do the work), and an estimate of the
# wall time on an idle machine: the wall time minus the time each working process spent runnable
# but waiting for a CPU (/proc/PID/schedstat), taking the slowest working process.
@dataclass
class Timing:
    wall: float  # seconds, measured
    cpu: float  # CPU seconds of this process and the working processes
    idle_est: float  # estimated wall seconds without other people's load


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a live process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_wait_s(pid: int) -> float:
    """Time the process's main thread spent runnable but not running (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def measured(fn: Callable[[], Any], repeat: int = 1, workers: Callable[[], Sequence[int]] | None = None) -> Timing:
    """The fastest of `repeat` runs. `workers()`: the processes doing the work besides this one
    (None: the work runs in this process)."""
    best = Timing(math.inf, math.inf, math.inf)
    for _ in range(repeat):
        others = list(workers()) if workers is not None else []
        critical = others or [os.getpid()]
        c0, o0 = time.process_time(), sum(_proc_cpu_s(p) for p in others)
        w0 = [_proc_wait_s(p) for p in critical]
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0 + sum(_proc_cpu_s(p) for p in others) - o0
        waits = [_proc_wait_s(p) - w for p, w in zip(critical, w0, strict=True)]
        if wall < best.wall:
            best = Timing(wall, cpu, max(wall - w for w in waits))
    return best


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    return measured(fn, repeat).wall


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


# --- math: ours vs raw math-verify ----------------------------------------------------------------
def raw_math_verify(samples: Sequence[dict[str, Any]]) -> list[bool]:
    """What a user would write: parse the gold (in the same delimited form our verifier hands
    math-verify, so both do the same maths) and the whole completion, then verify."""
    from math_verify import parse, verify

    from rewardkit.verifiers._math.extract import gold_parse_input

    return [bool(verify(parse(gold_parse_input(s["answer"])), parse(s["completion"]))) for s in samples]


def raw_on_our_inputs(samples: Sequence[dict[str, Any]]) -> list[bool]:
    """math-verify called in-process on exactly the strings our verifier sends its workers
    (extracted answer, delimited gold): the difference to ours is the cost of our machinery."""
    from math_verify import parse, verify

    from rewardkit.verifiers._math.extract import extract_answer, gold_parse_input

    out = []
    for s in samples:
        found = extract_answer(s["completion"], "auto", "answer", 4000)
        out.append(found is not None and bool(verify(parse(gold_parse_input(s["answer"])), parse(found.parse_input))))
    return out


def ours_math(samples: list[dict[str, Any]], workers: int, dedupe: bool = True) -> tuple[Timing, list[float]]:
    """The timing of one score_batch call over `samples` (pool started and warmed first), and the verdicts."""
    from rewardkit.verifiers.math_equivalence import MathEquivalence

    v = MathEquivalence(MathEquivalence.Args(workers=workers, dedupe=dedupe))
    try:
        v.score_batch(samples[: 4 * workers * GROUP], ScoringContext())  # start and warm every worker
        out: list[float] = []
        pool = v._pool
        assert pool is not None and pool.size() == workers
        pids = [w.proc.pid for w in pool._workers]
        m = measured(lambda: out.extend(s.value for s in v.score_batch(samples, ScoringContext())),
                     workers=lambda: pids)
    finally:
        v.close()
    return m, out


def _raw_chunk(chunk: list[dict[str, Any]]) -> list[bool]:
    return raw_math_verify(chunk)


def raw_pool(samples: list[dict[str, Any]], workers: int) -> Timing:
    size = math.ceil(len(samples) / (workers * 8))
    chunks = [samples[i : i + size] for i in range(0, len(samples), size)]
    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(_raw_chunk, [samples[:GROUP]] * workers))
        pids = list(getattr(ex, "_processes", {}) or {})
        return measured(lambda: list(ex.map(_raw_chunk, chunks)), workers=lambda: pids)


def row(name: str, procs: object, n: int, t: Timing | float, base: Timing | None, note: str) -> str:
    """One table line; `t` is a Timing, or a bare wall time where nothing else was measured."""
    if isinstance(t, Timing):
        idle = f"{n / t.idle_est:,.0f}"
        cpu = f"{1000 * t.cpu / n:.2f}"
        wall = t.wall
    else:
        idle = cpu = "-"
        wall = t
    speed = f"{base.wall / wall:.2f}" if base else "-"
    if base and isinstance(t, Timing):
        speed += f" ({base.idle_est / t.idle_est:.2f})"
    return f"| {name} | {procs} | {n / wall:,.0f} | {idle} | {speed} | {cpu} | {note} |"


def bench_math(samples: list[dict[str, Any]], cores: int, pinned: bool) -> list[str]:
    """Ours vs raw math-verify. Speed is relative to raw parse+verify in the main process; the note
    gives our time over raw's (the issue's "overhead ratio") by wall, idle-estimate and CPU time."""
    from rewardkit.verifiers._math.extract import extract_answer, gold_parse_input

    n = len(samples)
    raw_math_verify(samples[:64])  # sympy's first-use costs are not part of the steady state
    raw_verdicts: list[bool] = []
    raw = measured(lambda: raw_verdicts.extend(raw_math_verify(samples)))
    same = measured(lambda: raw_on_our_inputs(samples))
    o1, ours1 = ours_math(samples, 1)
    o1n, _ = ours_math(samples, 1, dedupe=False)
    on, _ = ours_math(samples, cores)
    onn, _ = ours_math(samples, cores, dedupe=False)
    rawpool = raw_pool(samples, cores)
    unique = len({(gold_parse_input(s["answer"]), getattr(extract_answer(s["completion"], "auto", "answer", 4000),
                                                          "parse_input", None)) for s in samples})

    def ratios(t: Timing, base: Timing) -> str:
        return f"wall {t.wall / base.wall:.2f}, idle est. {t.idle_est / base.idle_est:.2f}, CPU {t.cpu / base.cpu:.2f}"

    def vs(t: Timing) -> str:
        return f"time ratio vs raw: {ratios(t, raw)}; vs raw on our inputs: {ratios(t, same)}"

    def faster(t: Timing) -> str:
        return (f"{raw.wall / t.wall:.2f}x raw's speed (idle est. {raw.idle_est / t.idle_est:.2f}x); "
                f"vs raw on our inputs {same.wall / t.wall:.2f}x (idle est. {same.idle_est / t.idle_est:.2f}x)")

    rows = [
        row("raw math-verify parse(gold)+parse(completion)+verify, main process", 1, n, raw, raw,
            "baseline: what a user writes"),
        row("raw math-verify on our extracted inputs, main process", 1, n, same, raw,
            "same maths as ours, none of our machinery"),
        row("raw math-verify, ProcessPoolExecutor", cores, n, rawpool, raw, "no time limit, no kill; " + faster(rawpool)),
        row("math_equivalence, 1 worker (default: dedupe on)", 1, n, o1, raw, vs(o1)),
        row("math_equivalence, 1 worker, dedupe off", 1, n, o1n, raw, vs(o1n)),
        row(f"math_equivalence, {cores} workers (default: dedupe on)", cores, n, on, raw, faster(on)),
        row(f"math_equivalence, {cores} workers, dedupe off", cores, n, onn, raw, faster(onn)),
    ]
    if pinned and hasattr(os, "sched_setaffinity"):
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})  # children (pool workers) inherit the mask
        try:
            rawp = measured(lambda: raw_math_verify(samples))
            tp, _ = ours_math(samples, 1, dedupe=False)
        finally:
            os.sched_setaffinity(0, cpus)
        rows.append(row("raw math-verify, pinned to 1 CPU", "1 CPU", n, rawp, raw, "-"))
        rows.append(row("math_equivalence parent + 1 worker, dedupe off, pinned to 1 CPU", "1 CPU", n, tp, raw,
                        f"time ratio vs raw pinned: {ratios(tp, rawp)}"))
    agree = statistics.mean((o == 1.0) == r for o, r in zip(ours1, raw_verdicts, strict=True))
    acc = statistics.mean(o == 1.0 for o in ours1)
    rows.append(f"| (verdicts: {acc:.1%} of samples correct; agreement with raw math-verify {agree:.1%}; "
                f"{unique / n:.0%} of (gold, answer) pairs unique within the run) | | | | | | |")
    return rows


def bench_toolcall(n: int, cores: int) -> list[str]:
    """Rows from bench/toolcall_bench.py (owned by the tool_call_match work), when it is there and runs."""
    try:
        from bench.toolcall_bench import rows as toolcall_rows
        table = toolcall_rows(n, cores)
    except Exception as exc:  # noqa: BLE001 - that bench is written separately; say why it is missing
        return [f"| tool_call_match vs BFCL ast_checker | - | - | - | - | - | skipped: bench/toolcall_bench.py "
                f"failed ({type(exc).__name__}: {exc}) |"]
    out = []
    for r in table:
        in_pool = "pool" in str(r.get("method", ""))
        per_cpu = r.get("samples_per_cpu_s")
        cpu_ms = f"{1000 / per_cpu:.3f}" if per_cpu else "-"
        basis = "wall" if in_pool or "samples_per_cpu_s" not in r else "CPU time"
        agree = f"verdicts agree with BFCL's checker on {r['agree']:.2%}" if "agree" in r else ""
        out.append(f"| {r.get('method')} | {cores if in_pool else 1} | {r.get('samples_per_s', 0):,.0f} | - | "
                   f"{r.get('vs_bfcl', float('nan')):.2f} by {basis}, vs BFCL ast_checker | {cpu_ms} | {agree} |")
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
    print("| verifier | processes | samples/s | samples/s, idle est. | speed vs baseline (idle est.) | "
          "CPU ms/sample | note |")
    print("|---|---|---|---|---|---|---|", flush=True)
    if "format" in only:
        fmt = format_samples(maths)
        v = make_format()
        t = measured(lambda: v.score_batch(fmt, ScoringContext()), repeat=3)
        print(row("format_regex (fullmatch + count)", 1, n, t, None, "in-process"))
        print(row("format_regex", cores, n, n / pooled(make_format, fmt, cores), None,
                  "batch split over a ProcessPoolExecutor (pickling costs more than matching)"), flush=True)
    if "length" in only:
        global _TOKENIZER_PATH
        with tempfile.TemporaryDirectory() as d:
            _TOKENIZER_PATH = os.path.join(d, "tokenizer.json")
            train_tokenizer([s["completion"] for s in maths[:2000]], _TOKENIZER_PATH)
            v = make_length_tokens()
            t = measured(lambda: v.score_batch(maths, ScoringContext()), repeat=3)
            print(row("length_limit tokens (BPE 4k vocab, soft)", 1, n, t, None,
                      "tokenizers encode_batch (its own threads; idle est. counts the main thread only)"))
            print(row("length_limit tokens", cores, n, n / pooled(make_length_tokens, maths, cores), None,
                      "batch split over a ProcessPoolExecutor"))
            w = make_length_words()
            t = measured(lambda: w.score_batch(maths, ScoringContext()), repeat=3)
            print(row("length_limit words", 1, n, t, None, "in-process"), flush=True)
    if "math" in only:
        for line in bench_math(maths, cores, pinned=not args.skip_raw_pinned):
            print(line, flush=True)
    if "toolcall" in only:
        for line in bench_toolcall(args.n, cores):
            print(line, flush=True)


if __name__ == "__main__":
    main()
