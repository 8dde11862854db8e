"""GDPO vs GRPO on the CPU demo task, over several seeds: a table and per-reward curves.

Each seed builds its own randomly initialised tiny model (the same one for every method, so the
comparison is paired) and trains it with `specs/demo.yaml`, changing only `advantage.method`.
Everything else (data order, sampling seeds, optimizer, KL) is identical between methods.

Writes, next to this file unless `--out` says otherwise:
  gdpo_vs_grpo.md    final per-reward means (mean ± std over seeds), held-out eval, steps to learn
  gdpo_vs_grpo.png   per-reward training curves (mean over seeds, band = min..max)
  gdpo_vs_grpo.json  (with --raw) per-step curves and final held-out means per run, to redraw or
                     re-analyse; not committed: the runs are deterministic on CPU, rerun to get it

Usage: python experiments/gdpo_vs_grpo.py [--seeds 0 1 2 3 4] [--steps 300] [--methods gdpo grpo]
One run of 300 steps takes 20-40 s on one CPU core (the demo spec sets cpu_threads: 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from transformers.utils import logging as hf_logging

from rewardkit.trainers import gdpo
from rewardkit.trainers.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
SPEC = ROOT / "specs" / "demo.yaml"
SMOOTH = 10  # steps in the moving average of the curves
FINAL = 20  # the last steps whose training means make the "final" column
LEARNED = 0.8  # a reward counts as learned at the first step its smoothed mean reaches this


def run_one(model: Path, method: str, seed: int, steps: int, workdir: Path) -> list[dict[str, Any]]:
    """Train once; return the per-step metrics as logged."""
    out = gdpo.train(str(SPEC), overrides={
        "model": str(model), "seed": seed, "steps": steps, "advantage.method": method,
        "output_dir": str(workdir / f"{method}-{seed}"), "eval_every": steps, "checkpoint_every": 0,
        "keep_checkpoints": 1, "tensorboard": False, "progress": False,
    })
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def smooth(x: np.ndarray, k: int = SMOOTH) -> np.ndarray:
    """Trailing moving average (the first k-1 points average what exists so far)."""
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(0, idx - k)
    return (c[idx] - c[lo]) / (idx - lo)


def first_reach(curve: np.ndarray, level: float) -> float:
    hit = np.nonzero(smooth(curve) >= level)[0]
    return float(hit[0] + 1) if len(hit) else float("nan")


def fmt(values: list[float], digits: int = 2) -> str:
    arr = np.array(values, dtype=float)
    ok = arr[np.isfinite(arr)]
    if not len(ok):
        return "never"
    text = f"{ok.mean():.{digits}f} ± {ok.std():.{digits}f}" if len(ok) > 1 else f"{ok[0]:.{digits}f}"
    return text + (f" ({len(ok)}/{len(arr)} seeds)" if len(ok) < len(arr) else "")


def table(results: dict[str, dict[int, list[dict[str, Any]]]], names: list[str]) -> str:
    """One row per (reward, method); then the advantage statistics per method."""
    lines = [f"| reward | method | final (last {FINAL} steps) | eval (held-out, greedy) | steps to {LEARNED} |",
             "|---|---|---|---|---|"]
    for n in names:
        for m, by_seed in results.items():
            runs = list(by_seed.values())
            final = fmt([float(np.nanmean(curve(r, f"reward/{n}/mean")[-FINAL:])) for r in runs])
            evals = fmt([float(curve(r[-1:], f"eval/{n}/mean")[0]) for r in runs])
            reach = fmt([first_reach(curve(r, f"reward/{n}/mean"), LEARNED) for r in runs], 0)
            lines.append(f"| {n} | {m.upper()} | {final} | {evals} | {reach} |")
    if "gdpo" in results and "grpo" in results:
        seeds = sorted(set(results["gdpo"]) & set(results["grpo"]))
        lines += ["", f"Paired by seed (same initial model, data order and sampling seeds), GDPO minus GRPO, "
                  f"final means over the last {FINAL} steps:", "",
                  "| reward | GDPO − GRPO | seeds where GDPO is higher |", "|---|---|---|"]
        for n in names:
            diff = [float(np.nanmean(curve(results["gdpo"][s], f"reward/{n}/mean")[-FINAL:])
                          - np.nanmean(curve(results["grpo"][s], f"reward/{n}/mean")[-FINAL:])) for s in seeds]
            lines.append(f"| {n} | {fmt(diff)} | {sum(d > 0 for d in diff)}/{len(diff)} |")
    lines += ["", "| method | distinct advantage values per step | groups with no signal (all advantages equal) |",
              "|---|---|---|"]
    for m, by_seed in results.items():
        runs = list(by_seed.values())
        distinct = fmt([float(np.nanmean(curve(r, "adv/distinct"))) for r in runs], 1)
        flat = fmt([float(np.nanmean(curve(r, "adv/zero_groups"))) for r in runs])
        lines.append(f"| {m.upper()} | {distinct} | {flat} |")
    return "\n".join(lines)


def curve(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)


def plot(results: dict[str, dict[int, list[dict[str, Any]]]], names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), sharey=True)
    colors = {"gdpo": "tab:blue", "grpo": "tab:orange", "grpo_no_std": "tab:green"}
    for ax, n in zip(np.atleast_1d(axes), names, strict=True):
        for m, runs in results.items():
            curves = np.stack([smooth(np.nan_to_num(curve(r, f"reward/{n}/mean"))) for r in runs.values()])
            x = np.arange(1, curves.shape[1] + 1)
            ax.plot(x, curves.mean(0), color=colors.get(m), label=f"{m.upper()} (mean of {len(curves)} seeds)")
            ax.fill_between(x, curves.min(0), curves.max(0), color=colors.get(m), alpha=0.2, linewidth=0)
        ax.set_title(n)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel(f"training reward mean ({SMOOTH}-step average)")
    np.atleast_1d(axes)[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("demo task: GDPO vs GRPO (band: min..max over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--methods", nargs="+", default=["gdpo", "grpo"],
                        choices=["gdpo", "grpo", "grpo_no_std"])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the .md, .png and .json")
    parser.add_argument("--raw", action="store_true", help="also write the per-step curves as JSON")
    args = parser.parse_args(argv)

    names = ["format", "correct", "short"]
    results: dict[str, dict[int, list[dict[str, Any]]]] = {m: {} for m in args.methods}
    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gdpo_vs_grpo-") as tmp:
        work = Path(tmp)
        for seed in args.seeds:
            model = build_tiny_model(work / f"model-{seed}", seed=seed)
            for m in args.methods:
                t = time.perf_counter()
                results[m][seed] = run_one(model, m, seed, args.steps, work)
                last = results[m][seed][-FINAL:]
                means = "  ".join(f"{n}={np.nanmean([r[f'reward/{n}/mean'] or np.nan for r in last]):.2f}"
                                  for n in names)
                print(f"seed {seed} {m:>5}: {means}  ({time.perf_counter() - t:.0f} s)", flush=True)
    elapsed = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    command = "python experiments/gdpo_vs_grpo.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = (f"# GDPO vs GRPO on the demo task\n\n`{command.strip()}` — seeds {args.seeds}, {args.steps} steps, "
          f"{len(args.seeds) * len(args.methods)} runs in {elapsed / 60:.1f} min.\n\n"
          f"Values are mean ± std over seeds. *final*: training reward mean over the last {FINAL} steps; "
          f"*eval*: greedy completions on the held-out prompts after the last step; *steps to {LEARNED}*: "
          f"first step at which the {SMOOTH}-step average reaches {LEARNED}.\n\n"
          + table(results, names) + "\n")
    (args.out / "gdpo_vs_grpo.md").write_text(md)
    plot(results, names, args.out / "gdpo_vs_grpo.png")
    if args.raw:
        keys = [f"reward/{n}/mean" for n in names] + ["adv/distinct"]
        raw = {m: {str(s): {k: [None if not np.isfinite(v) else round(float(v), 3) for v in curve(rows, k)]
                            for k in keys} for s, rows in runs.items()} for m, runs in results.items()}
        for m, runs in results.items():
            for s, rows in runs.items():
                raw[m][str(s)]["final_eval"] = {n: rows[-1].get(f"eval/{n}/mean") for n in names}
        (args.out / "gdpo_vs_grpo.json").write_text(json.dumps(raw, separators=(",", ":")))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
