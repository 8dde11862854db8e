"""tool_call_match vs BFCL's `ast_checker`, on the same BFCL pairs.

The pairs are those of `tests/test_tool_call_bfcl.py`: BFCL's own ground-truth answers and
systematic perturbations of them (wrong name, missing/extra/wrong-typed/wrong-valued arguments,
reordered calls, ...), over the simple, multiple, parallel and parallel-multiple categories
(Python and live); `n_samples` of them are drawn with a fixed seed (BFCL judges about 44% of
them right). Each row times one way of judging the same pairs:

- `bfcl ast_checker (decoded calls)`: BFCL's checker alone, handed the calls already decoded;
- `bfcl decode + ast_checker (python text)`: BFCL's pipeline on Python-syntax text, its
  prompting format (`default_decode_ast_prompting`, then the checker);
- `ours match only (decoded calls)`: our matcher on the same decoded calls;
- `ours tool_call_match (python text)` / `(hermes text)` / `(openai messages)`: the verifier
  end to end (parse + match + reason), single process;
- `ours tool_call_match (hermes text), pool N`: `score_batch` with `ctx.workers = N` and the pool
  switched on (`pool_min_batch: 1000`; it is off by default), started and warmed before timing.

Each rate is the best of `repeat` rounds in which the methods take turns (see `_interleaved`).

Run: `.venv/bin/python bench/toolcall_bench.py [n_samples] [workers]`
"""

from __future__ import annotations

import copy
import gc
import importlib.util
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardkit.verifier import ScoringContext
from rewardkit.verifiers._tool_calls.bfcl import NORMALIZERS, compile_call
from rewardkit.verifiers._tool_calls.judge import Judge
from rewardkit.verifiers._tool_calls.parsing import ToolCall, parse_functions, parse_reference
from rewardkit.verifiers.tool_call_match import ToolCallMatch, ToolCallMatchArgs

ROOT = Path(__file__).resolve().parents[1]


def _pairs_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "tool_call_bfcl_pairs", ROOT / "tests" / "test_tool_call_bfcl.py"
    )
    if spec is None or spec.loader is None:
        raise ImportError("tests/test_tool_call_bfcl.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _interleaved(
    methods: list[tuple[str, Callable[[], Any]]], n: int, repeat: int
) -> tuple[list[float], list[float], list[Any]]:
    """Best wall-clock and CPU-time rates of each method over `repeat` rounds, taking turns.

    Taking turns spreads outside load over all methods alike; keeping the best run (as `timeit`
    does) drops the runs that such load slowed down. CPU time (`time.process_time`) counts only
    this process's own work, so on a shared machine it is the steadier measure; it does not see
    the work of pool processes, whose rows are therefore compared by wall-clock time.
    """
    wall = [0.0] * len(methods)
    cpu = [0.0] * len(methods)
    verdicts: list[Any] = [None] * len(methods)
    for _ in range(repeat):
        for k, (_, fn) in enumerate(methods):
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            verdicts[k] = fn()
            wall[k] = max(wall[k], n / (time.perf_counter() - start))
            cpu[k] = max(cpu[k], n / max(time.process_time() - start_cpu, 1e-9))
    return wall, cpu, verdicts


def rows(n_samples: int = 10000, workers: int = 2, repeat: int = 5) -> list[dict[str, Any]]:
    """Samples per second of each way of judging the same `n_samples` BFCL pairs.

    Each row: `method`, `samples`, `samples_per_s` (wall clock), `samples_per_cpu_s` (CPU time
    of this process; None for pool rows), `vs_bfcl` (CPU-time rate over BFCL's checker on decoded
    calls; wall-clock for pool rows), `agree` (share of verdicts equal to BFCL's).
    """
    pairs_mod = _pairs_module()
    truth, perturbed = pairs_mod.pair_sets()
    if not truth:
        return [{"method": "skipped: bfcl-eval is not installed", "samples": 0, "samples_per_s": 0.0}]
    every = truth + perturbed  # BFCL judges about 44% of these right: a mid-training mix
    pairs = random.Random(0).sample(every, min(n_samples, len(every)))
    pairs += [every[i % len(every)] for i in range(n_samples - len(pairs))]
    # the rollouts of one prompt arrive together in a training batch: keep each entry's pairs adjacent
    order: dict[int, int] = {}
    for p in every:
        order.setdefault(id(p.entry), len(order))
    pairs.sort(key=lambda p: order[id(p.entry)])
    checker, language = pairs_mod.load_bfcl_checker()
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting

    decoded = [copy.deepcopy(p.calls) for p in pairs]
    python_text = [pairs_mod.render(p.calls, "python") for p in pairs]

    def bfcl_checker() -> list[bool | None]:
        out: list[bool | None] = []
        for p, calls in zip(pairs, decoded, strict=True):
            try:
                out.append(
                    checker(
                        p.entry.functions,
                        calls,
                        p.entry.ground_truth,
                        language.PYTHON,
                        p.entry.category,
                        pairs_mod.ORACLE_MODEL,
                    )["valid"]
                )
            except Exception:  # noqa: BLE001 - BFCL's checker raises on some malformed calls
                out.append(None)
        return out

    def bfcl_pipeline() -> list[bool | None]:
        out: list[bool | None] = []
        for p, text in zip(pairs, python_text, strict=True):
            try:
                calls = default_decode_ast_prompting(text)
                out.append(
                    checker(
                        p.entry.functions,
                        calls,
                        p.entry.ground_truth,
                        language.PYTHON,
                        p.entry.category,
                        pairs_mod.ORACLE_MODEL,
                    )["valid"]
                )
            except Exception:  # noqa: BLE001
                out.append(None)
        return out

    args = ToolCallMatchArgs(reference="answer", functions="functions", mode="exact")
    norm = NORMALIZERS[args.string_match]
    plans: dict[int, Any] = {}
    for p in pairs:
        if id(p.entry) not in plans:
            schemas = parse_functions(p.entry.functions)
            refs = parse_reference(p.entry.ground_truth)
            plans[id(p.entry)] = [compile_call(r, schemas.get(r.name), norm) for r in refs]
    preparsed = [[ToolCall(n, a) for call in p.calls for n, a in call.items()] for p in pairs]

    def ours_match_only() -> list[bool]:
        return [
            Judge(plans[id(p.entry)], calls, norm, args).exact()[0]
            for p, calls in zip(pairs, preparsed, strict=True)
        ]

    def ours(fmt: str, ctx: ScoringContext) -> Callable[[], list[bool]]:
        samples = [pairs_mod.sample_of(p) for p in pairs]
        for sample, p in zip(samples, pairs, strict=True):
            sample["completion"] = pairs_mod.render(p.calls, fmt)
        pooled = (ctx.workers or 1) > 1
        verifier = ToolCallMatch(args.model_copy(update={"pool_min_batch": 1000}) if pooled else args)
        if pooled:
            verifier.score_batch(samples[:1000], ctx)  # start and warm the pool

        def run() -> list[bool]:
            return [s.value == 1.0 for s in verifier.score_batch(samples, ctx)]

        run.verifier = verifier  # type: ignore[attr-defined]
        return run

    methods: list[tuple[str, Callable[[], Any]]] = [
        ("bfcl ast_checker (decoded calls)", bfcl_checker),
        ("bfcl decode + ast_checker (python text)", bfcl_pipeline),
        ("ours match only (decoded calls)", ours_match_only),
    ]
    for fmt, label in (("python", "python text"), ("hermes", "hermes text"), ("openai", "openai messages")):
        methods.append((f"ours tool_call_match ({label})", ours(fmt, ScoringContext())))
    pooled = None
    if workers > 1:
        pooled = ours("hermes", ScoringContext(workers=workers))
        methods.append((f"ours tool_call_match (hermes text), pool {workers}", pooled))
    try:
        wall, cpu, verdicts = _interleaved(methods, n_samples, repeat)
    finally:
        if pooled is not None:
            pooled.verifier.close()  # type: ignore[attr-defined]
    base = verdicts[0]

    table = []
    for k, (method, _) in enumerate(methods):
        comparable = [
            (a, b) for a, b in zip(verdicts[k], base, strict=True) if a is not None and b is not None
        ]
        agree = sum(a == b for a, b in comparable) / len(comparable) if comparable else float("nan")
        in_pool = "pool" in method
        table.append(
            {
                "method": method,
                "samples": n_samples,
                "samples_per_s": round(wall[k], 1),
                "samples_per_cpu_s": None if in_pool else round(cpu[k], 1),
                "vs_bfcl": round(wall[k] / wall[0], 2) if in_pool else round(cpu[k] / cpu[0], 2),
                "agree": round(agree, 4),
            }
        )
    return table


def main() -> None:
    n_samples = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    table = rows(n_samples, workers)
    print(f"{'method':<50} {'samples':>8} {'per cpu-s':>10} {'per wall-s':>11} {'vs bfcl':>8} {'agree':>7}")
    for row in table:
        cpu = "-" if row.get("samples_per_cpu_s") is None else f"{row['samples_per_cpu_s']:.0f}"
        print(
            f"{row['method']:<50} {row['samples']:>8} {cpu:>10} {row['samples_per_s']:>11.0f} "
            f"{row.get('vs_bfcl', 0):>8.2f} {row.get('agree', float('nan')):>7.4f}"
        )
    print("vs bfcl: CPU-time rate over BFCL's checker on decoded calls (pool rows: wall-clock rates)")


if __name__ == "__main__":
    main()
