"""GDPO vs GRPO (and GRPO without std) on the GDPO paper's three tasks, at CPU scale.

Tasks (specs/paper_*.yaml, data from `rewardkit.trainers.paper_tasks`): tool calling (format +
component correctness in [-3, 3]), math with a plain length reward and with the length reward
gated on correctness, and code (test pass rate in the bwrap sandbox + gated length + bug_detector).

Per task, one tiny policy is built and warm-started on imperfect demonstrations
(`rewardkit.trainers.sft`; --warm-start-per-seed gives each seed its own init and warm start);
every method and seed then trains from that same model, and within a seed every method has the
same data order and sampling seeds, changing only `advantage.method`. After training, the final policy
is measured with the paper's metrics on ungated rewards: *final* = 4 sampled completions (T=1) on
32 training prompts, *held-out* = one greedy completion per held-out prompt.

Every run is saved as JSON under --runs (default experiments/paper_tasks_runs/, git-ignored) and
skipped when present, so an interrupted suite continues where it stopped; --report-only rebuilds
paper_tasks.md and paper_tasks.png from whatever runs exist.

Usage:
  python experiments/paper_tasks.py --seeds 0 1 2 3 4 5 6 7 --jobs 2      # the full suite
  python experiments/paper_tasks.py --quick                               # a smoke run (CI)
  python experiments/paper_tasks.py --tasks math --device cuda --hidden-size 512 --layers 4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
METHODS = ["gdpo", "grpo", "grpo_no_std"]
FINAL = 20  # training curves: the "last steps" window
FIRST = 5  # and the first steps: the warm-started policy, sampled
EARLY = 20  # "how fast": mean training reward over the first steps
SMOOTH = 10


@dataclass(frozen=True)
class Metric:
    key: str  # in the run JSON
    label: str
    higher_is_better: bool = True


@dataclass(frozen=True)
class TaskSetup:
    spec: str
    data: str  # rewardkit.trainers.paper_tasks task name
    metrics: list[Metric] = field(default_factory=list)


TASKS = {
    "tool_calling": TaskSetup("paper_tool_calling.yaml", "tool_calling", [
        Metric("accuracy", "accuracy (call fully right)"), Metric("correct_mean", "correctness [-3, 3]"),
        Metric("format_rate", "format rate")]),
    "math": TaskSetup("paper_math.yaml", "math", [
        Metric("accuracy", "accuracy"), Metric("length_violation", "length violations", False)]),
    "math_gated": TaskSetup("paper_math_gated.yaml", "math", [
        Metric("accuracy", "accuracy"), Metric("length_violation", "length violations", False)]),
    "code": TaskSetup("paper_code.yaml", "code", [
        Metric("pass_rate", "test pass rate"), Metric("all_pass", "all tests pass"),
        Metric("length_violation", "length violations", False), Metric("bug_ratio", "bug ratio", False)]),
}


@dataclass(frozen=True)
class Settings:
    steps: int
    sft_steps: int
    final_prompts: int = 32
    final_samples: int = 4
    eval_limit: int | None = None
    device: str = "cpu"
    size: dict[str, int] = field(default_factory=dict)
    warm_start_per_seed: bool = False  # default: one warm start per task, shared by every seed


# --- one (task, seed): warm start once, then every method -----------------------------------------


def spec_path(task: str) -> Path:
    return ROOT / "specs" / TASKS[task].spec


def _quiet() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def warm_started_model(data_task: str, seed: int, s: Settings, work: Path, data_dir: Path) -> Path:
    import torch

    from rewardkit.trainers.data import load_rows
    from rewardkit.trainers.paper_tasks import build_task_model
    from rewardkit.trainers.sft import WarmStartSettings, warm_start

    seed = seed if s.warm_start_per_seed else 0
    out = work / "models" / f"{data_task}-{seed}"
    if (out / "config.json").exists():
        return out
    _quiet()
    torch.set_num_threads(1)
    init = build_task_model(data_task, work / "models" / f"{data_task}-{seed}-init", seed=seed, **s.size)
    rows = load_rows(data_dir / f"paper_{data_task}_sft.jsonl")
    return warm_start(init, rows, out, WarmStartSettings(steps=s.sft_steps, seed=seed, cpu_threads=1),
                      device=s.device)


def metrics_spec(task: str) -> str:
    """The task's spec with every gate removed: the paper's metrics are on ungated rewards
    (a length violation is a violation whether or not the answer was right)."""
    data = yaml.safe_load(spec_path(task).read_text())
    for r in data["rewards"]:
        r.pop("when", None)
    return yaml.safe_dump(data, sort_keys=False)


def measure(task: str, model: Path, rows: list[dict[str, Any]], n: int, greedy: bool, seed: int,
            s: Settings, tmp: Path) -> dict[str, float]:
    """The paper's metrics of `model` on `rows` (n completions each)."""
    from rewardkit.trainers import gdpo

    path = tmp / f"metrics-{task}.yaml"
    path.write_text(metrics_spec(task))
    run = gdpo.setup(str(path), overrides={"model": str(model), "data": str(tmp / "rows.jsonl"),
                                           "eval_data": None, "device": s.device})
    try:
        rollouts = gdpo.generate(run, rows, n, seed=seed, greedy=greedy)
        table = gdpo.score(run, rollouts)
    finally:
        run.spec.close()
    col = {name: np.nan_to_num(table.column(name), nan=0.0) for name in table.reward_names}
    lengths = np.array([len(c) for c in rollouts.completion_ids], dtype=float)
    out = {"mean_tokens": float(lengths.mean())}
    if task == "tool_calling":
        out.update(accuracy=float(np.mean(col["correct"] >= 3 - 1e-9)), correct_mean=float(col["correct"].mean()),
                   format_rate=float(np.mean(col["format"] >= 1)))
    elif task.startswith("math"):
        out.update(accuracy=float(np.mean(col["correct"] >= 1)), length_violation=float(np.mean(col["short"] < 1)))
    else:
        out.update(pass_rate=float(col["pass_rate"].mean()), all_pass=float(np.mean(col["pass_rate"] >= 1)),
                   length_violation=float(np.mean(col["short"] < 1)), bug_ratio=float(np.mean(col["no_bug"] < 1)))
    return out


def run_unit(tasks: list[str], seed: int, methods: list[str], s: Settings, runs_dir: Path, data_dir: Path,
             work: Path) -> list[str]:
    """One seed of tasks that share data (math and math_gated share their warm start): warm
    start once, then every (task, method) not yet saved; returns log lines."""
    import torch

    from rewardkit.trainers import gdpo
    from rewardkit.trainers.data import load_rows

    _quiet()
    torch.set_num_threads(1)
    todo = [(t, m) for t in tasks for m in methods if not (runs_dir / t / f"{seed}-{m}.json").exists()]
    if not todo:
        return []
    data = TASKS[tasks[0]].data
    model = warm_started_model(data, seed, s, work, data_dir)
    sft_s = json.loads((model / "warmstart.json").read_text())["seconds"]
    train_rows = load_rows(data_dir / f"paper_{data}_train.jsonl")
    eval_rows = load_rows(data_dir / f"paper_{data}_eval.jsonl")[: s.eval_limit]
    order = np.random.default_rng([seed, 5]).permutation(len(train_rows))
    final_rows = [train_rows[i] for i in order[: s.final_prompts]]
    lines = []
    with tempfile.TemporaryDirectory(prefix=f"paper-{data}-{seed}-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "rows.jsonl").write_text(json.dumps(train_rows[0]) + "\n")
        start = {t: measure(t, model, eval_rows, 1, True, seed, s, tmp) for t in tasks}
        for task, m in todo:
            t = time.perf_counter()
            out = gdpo.train(str(spec_path(task)), overrides={
                "model": str(model), "data": str(data_dir / f"paper_{data}_train.jsonl"), "eval_data": None,
                "seed": seed, "steps": s.steps, "advantage.method": m, "output_dir": str(tmp / f"{task}-{m}"),
                "eval_every": 0, "checkpoint_every": 0, "keep_checkpoints": 1, "tensorboard": False,
                "progress": False, "device": s.device})
            train_s = time.perf_counter() - t
            rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
            final_model = sorted((out / "checkpoints").glob("step-*"))[-1] / "model"
            result = {
                "task": task, "seed": seed, "method": m, "steps": s.steps, "sft_steps": s.sft_steps,
                "train_seconds": round(train_s, 1), "sft_seconds": round(sft_s, 1),
                "curves": {k: [r.get(k) for r in rows] for k in sorted(rows[0])
                           if k.startswith(("reward/", "adv/", "len/", "time/step"))},
                "start_heldout": start[task],
                "final": measure(task, final_model, final_rows, s.final_samples, False, seed + 1000, s, tmp),
                "heldout": measure(task, final_model, eval_rows, 1, True, seed, s, tmp),
            }
            dest = runs_dir / task / f"{seed}-{m}.json"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(json.dumps(result, separators=(",", ":")))
            lines.append(f"{task} seed {seed} {m}: held-out {_short(result['heldout'])}  "
                         f"(train {train_s:.0f} s, total {time.perf_counter() - t:.0f} s)")
            print(lines[-1], flush=True)
    return lines


def _short(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.2f}" for k, v in metrics.items() if k != "mean_tokens")


# --- the report ------------------------------------------------------------------------------------


def load_runs(runs_dir: Path) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """task -> method -> seed -> run JSON."""
    out: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for path in sorted(runs_dir.glob("*/*.json")):
        r = json.loads(path.read_text())
        out.setdefault(r["task"], {}).setdefault(r["method"], {})[r["seed"]] = r
    return out


def complete_seeds(runs: dict[str, dict[str, dict[int, dict[str, Any]]]], tasks: list[str],
                   methods: list[str]) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """Per task, only the seeds that every method has finished: means over seeds then compare
    the methods on the same seeds (a suite stopped early leaves some seeds half done)."""
    out = {}
    for task in tasks:
        by_method = {m: runs.get(task, {}).get(m, {}) for m in methods}
        seeds = set.intersection(*(set(v) for v in by_method.values())) if by_method else set()
        if seeds:
            out[task] = {m: {s: v[s] for s in sorted(seeds)} for m, v in by_method.items()}
    return out


def fmt(values: list[float], digits: int = 2) -> str:
    arr = np.asarray(values, dtype=float)
    if not len(arr):
        return "-"
    return f"{arr.mean():.{digits}f} ± {arr.std():.{digits}f}" if len(arr) > 1 else f"{arr[0]:.{digits}f}"


def bootstrap_ci(diff: np.ndarray, n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of paired differences, resampling seeds."""
    if len(diff) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_rows(by_method: dict[str, dict[int, dict[str, Any]]], metric: Metric, where: str,
                other: str) -> tuple[str, int] | None:
    if "gdpo" not in by_method or other not in by_method:
        return None
    seeds = sorted(set(by_method["gdpo"]) & set(by_method[other]))
    if not seeds:
        return None
    diff = np.array([by_method["gdpo"][s][where][metric.key] - by_method[other][s][where][metric.key] for s in seeds])
    lo, hi = bootstrap_ci(diff)
    ahead = int(np.sum(diff > 1e-12)) if metric.higher_is_better else int(np.sum(diff < -1e-12))
    ties = int(np.sum(np.abs(diff) <= 1e-12))
    ci = f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else "-"
    return f"{diff.mean():+.3f} | {ci} | {ahead}/{len(seeds)}" + (f" ({ties} tied)" if ties else ""), len(seeds)


def report(runs: dict[str, dict[str, dict[int, dict[str, Any]]]]) -> str:
    lines: list[str] = []
    for task, setup in TASKS.items():
        if task not in runs:
            continue
        by_method = runs[task]
        methods = [m for m in METHODS if m in by_method]
        any_run = next(iter(next(iter(by_method.values())).values()))
        seeds = sorted({s for m in methods for s in by_method[m]})
        lines += [f"### {task} (`specs/{setup.spec}`)", "",
                  f"seeds {seeds}, {any_run['steps']} RL steps after {any_run['sft_steps']} warm-start steps.", "",
                  "| metric | method | warm start (held-out) | final (train prompts, sampled) | held-out (greedy) |",
                  "|---|---|---|---|---|"]
        for metric in setup.metrics:
            for m in methods:
                rs = list(by_method[m].values())
                cells = [fmt([r[where][metric.key] for r in rs]) for where in ("start_heldout", "final", "heldout")]
                lines.append(f"| {metric.label} | {m.upper()} | " + " | ".join(cells) + " |")
        lines += ["", "Paired by seed, GDPO minus the other method (bootstrap 95% interval over seeds; "
                  "*ahead* counts seeds where GDPO is better: higher, or lower for violations and bugs):", "",
                  "| metric | measured on | vs | GDPO − other | 95% CI | seeds GDPO ahead |",
                  "|---|---|---|---|---|---|"]
        for metric in setup.metrics:
            for where, label in (("final", "final"), ("heldout", "held-out")):
                for other in ("grpo", "grpo_no_std"):
                    row = paired_rows(by_method, metric, where, other)
                    if row:
                        lines.append(f"| {metric.label} | {label} | {other.upper()} | {row[0]} |")
        lines += ["", f"| method | distinct advantage values per step (of 64) | groups with no signal | "
                  f"training reward means: first {FIRST} steps → last {FINAL} steps |", "|---|---|---|---|"]
        for m in methods:
            rs = list(by_method[m].values())
            distinct = fmt([float(np.nanmean(_curve(r, "adv/distinct"))) for r in rs], 1)
            flat = fmt([float(np.nanmean(_curve(r, "adv/zero_groups"))) for r in rs])
            names = _reward_names(rs[0])
            means = ", ".join(
                f"{n} {fmt([float(np.nanmean(_curve(r, f'reward/{n}/mean')[:FIRST])) for r in rs])} → "
                f"{fmt([float(np.nanmean(_curve(r, f'reward/{n}/mean')[-FINAL:])) for r in rs])}" for n in names)
            lines.append(f"| {m.upper()} | {distinct} | {flat} | {means} |")
        lines += ["", f"How fast: training reward means over the first {EARLY} steps (higher is faster learning), "
                  "paired GDPO − GRPO:", "", "| reward | " + " | ".join(m.upper() for m in methods)
                  + " | GDPO − GRPO [95% CI], seeds GDPO ahead |", "|---|" + "---|" * (len(methods) + 1)]
        for n in _reward_names(any_run):
            early = {m: {sd: float(np.nanmean(_curve(r, f"reward/{n}/mean")[:EARLY])) for sd, r in by_method[m].items()}
                     for m in methods}
            cells = [f"{np.mean(list(early[m].values())):.3f}" for m in methods]
            paired = "-"
            if "gdpo" in early and "grpo" in early:
                common = sorted(set(early["gdpo"]) & set(early["grpo"]))
                diff = np.array([early["gdpo"][sd] - early["grpo"][sd] for sd in common])
                lo, hi = bootstrap_ci(diff)
                ci = f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else "-"
                paired = f"{diff.mean():+.3f} {ci}, {int(np.sum(diff > 0))}/{len(diff)}"
            lines.append(f"| {n} | " + " | ".join(cells) + f" | {paired} |")
        secs = [r["train_seconds"] for m in methods for r in by_method[m].values()]
        lines += ["", f"RL run time: {np.mean(secs):.0f} s per run on average ({len(secs)} runs).", ""]
    return "\n".join(lines)


def summary(runs: dict[str, dict[str, dict[int, dict[str, Any]]]]) -> str:
    """The README's compact table: held-out (greedy) means per method and GDPO − GRPO."""
    lines = ["| task (seeds) | metric, held-out greedy | warm start | GDPO | GRPO | GRPO w/o std | "
             "GDPO − GRPO [95% CI], seeds ahead |", "|---|---|---|---|---|---|---|"]
    for task, setup in TASKS.items():
        if task not in runs or not all(m in runs[task] for m in METHODS):
            continue
        by_method = runs[task]
        seeds = sorted(by_method["gdpo"])
        for metric in setup.metrics:
            if metric.key == "all_pass":
                continue
            means = [f"{np.mean([r['heldout'][metric.key] for r in by_method[m].values()]):.2f}" for m in METHODS]
            start = np.mean([r["start_heldout"][metric.key] for r in by_method["gdpo"].values()])
            row = paired_rows(by_method, metric, "heldout", "grpo")
            diff, ci, ahead = row[0].split(" | ") if row else ("-", "-", "-")
            lines.append(f"| {task} ({len(seeds)}) | {metric.label} | {start:.2f} | " + " | ".join(means)
                         + f" | {diff} {ci}, {ahead} |")
    return "\n".join(lines)


def _reward_names(run: dict[str, Any]) -> list[str]:
    return [k.split("/")[1] for k in run["curves"] if k.startswith("reward/") and k.endswith("/mean")]


def _curve(run: dict[str, Any], key: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in run["curves"].get(key, [])], dtype=float)


def _smooth(x: np.ndarray, k: int = SMOOTH) -> np.ndarray:
    c = np.cumsum(np.insert(np.nan_to_num(x), 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(0, idx - k)
    return (c[idx] - c[lo]) / (idx - lo)


def plot(runs: dict[str, dict[str, dict[int, dict[str, Any]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if t in runs]
    cols = 5  # up to 3 rewards, distinct advantages, zero-signal groups
    fig, axes = plt.subplots(len(tasks), cols, figsize=(3.3 * cols, 2.6 * len(tasks)), squeeze=False)
    colors = {"gdpo": "tab:blue", "grpo": "tab:orange", "grpo_no_std": "tab:green"}
    for i, task in enumerate(tasks):
        names = _reward_names(next(iter(next(iter(runs[task].values())).values())))
        keys = [(f"reward/{n}/mean", n) for n in names]
        keys += [("adv/distinct", "distinct advantages"), ("adv/zero_groups", "groups with no signal")]
        keys += [(None, "")] * (cols - len(keys))
        for j, (key, title) in enumerate(keys):
            ax = axes[i][j]
            if key is None:
                ax.axis("off")
                continue
            for m in METHODS:
                if m not in runs[task]:
                    continue
                curves = np.stack([_smooth(_curve(r, key)) for r in runs[task][m].values()])
                x = np.arange(1, curves.shape[1] + 1)
                ax.plot(x, curves.mean(0), color=colors[m], label=f"{m.upper()} ({len(curves)} seeds)", lw=1.2)
                ax.fill_between(x, curves.min(0), curves.max(0), color=colors[m], alpha=0.15, linewidth=0)
            ax.set_title(f"{task}: {title}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
        axes[i][0].legend(fontsize=6, loc="lower right")
    fig.suptitle(f"training curves ({SMOOTH}-step average; line: mean over seeds, band: min..max)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


BEGIN, END = "<!-- tables: written by experiments/paper_tasks.py -->", "<!-- end of tables -->"


def write_tables(path: Path, tables: str) -> None:
    """Replace the tables between the markers of `path` (the hand-written reading around them
    stays), or write a file of tables alone when there is none."""
    block = f"{BEGIN}\n{tables}\n{END}"
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = f"# GDPO vs GRPO on the paper's three tasks, at CPU scale\n\n{block}\n"
    path.write_text(text)


# --- entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5, 6, 7])
    parser.add_argument("--steps", type=int, default=None, help="RL steps per run (default: the spec's)")
    parser.add_argument("--sft-steps", type=int, default=600, help="warm-start steps")
    parser.add_argument("--warm-start-per-seed", action="store_true",
                        help="a random init and warm start per seed (default: one per task, shared by all seeds)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: seed 0, 3 RL steps, 10 warm-start steps")
    parser.add_argument("--jobs", type=int, default=1, help="(task, seed) units run in parallel, one core each")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--hidden-size", type=int, help="a larger config-built policy (default 128)")
    parser.add_argument("--layers", type=int, help="(default 2)")
    parser.add_argument("--heads", type=int, help="(default 2)")
    parser.add_argument("--runs", type=Path, default=HERE / "paper_tasks_runs", help="per-run JSON folder")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for paper_tasks.md and .png")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report from --runs")
    parser.add_argument("--work", type=Path, help="keep data and warm-started models here (default: a temporary "
                        "folder, removed at the end); a second invocation on other seeds can share it")
    args = parser.parse_args(argv)

    size = {k: v for k, v in (("hidden_size", args.hidden_size), ("layers", args.layers), ("heads", args.heads)) if v}
    steps = args.steps or (3 if args.quick else yaml.safe_load(spec_path(args.tasks[0]).read_text())["train"]["steps"])
    s = Settings(steps=steps, sft_steps=10 if args.quick else args.sft_steps, device=args.device, size=size,
                 warm_start_per_seed=args.warm_start_per_seed,
                 final_prompts=8 if args.quick else 32, final_samples=2 if args.quick else 4,
                 eval_limit=8 if args.quick else None)
    seeds = [0] if args.quick else args.seeds
    started = time.perf_counter()
    if not args.report_only:
        from rewardkit.trainers.paper_tasks import write_task_data

        work = args.work or Path(tempfile.mkdtemp(prefix="paper_tasks-"))
        data_dir = work / "data"
        needed = sorted({TASKS[t].data for t in args.tasks})
        if not all((data_dir / f"paper_{d}_sft.jsonl").exists() for d in needed):
            write_task_data(data_dir, needed)
        groups: dict[str, list[str]] = {}
        for t in args.tasks:
            groups.setdefault(TASKS[t].data, []).append(t)
        units = [(ts, seed) for seed in seeds for ts in groups.values()]  # seed-major: partial suites stay paired
        # warm starts first (one per task, or per task and seed), so that no two units build one
        starts = sorted({(TASKS[ts[0]].data, seed if s.warm_start_per_seed else 0) for ts, seed in units
                         if any(not (args.runs / t / f"{seed}-{m}.json").exists() for t in ts for m in args.methods)})
        try:
            if args.jobs > 1:
                with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
                    for f in [pool.submit(warm_started_model, d, seed, s, work, data_dir) for d, seed in starts]:
                        f.result()
                    futures = [pool.submit(run_unit, ts, seed, args.methods, s, args.runs, data_dir, work)
                               for ts, seed in units]
                    for f in futures:
                        f.result()
            else:
                for d, seed in starts:
                    warm_started_model(d, seed, s, work, data_dir)
                for ts, seed in units:
                    run_unit(ts, seed, args.methods, s, args.runs, data_dir, work)
        finally:
            if args.work is None:
                shutil.rmtree(work, ignore_errors=True)
    runs = complete_seeds(load_runs(args.runs), args.tasks, args.methods)
    if not runs:
        print("no runs to report", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    command = "python experiments/paper_tasks.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = (f"<!-- made by `{command.strip()}` ({elapsed / 60:.1f} min); load {os.getloadavg()[0]:.1f} -->\n\n"
          + report(runs))
    args.out.mkdir(parents=True, exist_ok=True)
    write_tables(args.out / "paper_tasks.md", md + "\nSummary (the README's table):\n\n" + summary(runs) + "\n")
    plot(runs, args.out / "paper_tasks.png")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
