"""Train-step time and peak memory: rewardkit's compact trainer vs TRL's GRPOTrainer, on CPU.

Both trainers read the same spec file (the demo's rewards: format, correct, short gated on
correct; GDPO), the same locally built tiny model, the same prompts, prompts per step, group
size and max new tokens; TRL gets its rewards through `rewardkit.integrations.trl`, so the
scoring work is identical. Settings are matched: no reference model (KL 0), one update per
batch, token-mean loss (TRL `loss_type="dapo"`), AdamW, grad-norm clip 1.0, fp32.

Each trainer runs in its own fresh subprocess, one after the other (never concurrently), so that
peak RSS is its own: `peak RSS` is the process's high-water mark (`ru_maxrss`, imports and model
included), `peak - start` the growth of that mark over the RSS just before the first step.
Phases per step: generate (sampling + decoding), score (the spec), update (everything else:
advantages, log-prob forward, loss, backward, optimizer; TRL: the rest of its step).
Random tiny models stop at random lengths, so the table also shows the mean completion length; the
learning rate is tiny (1e-9) so that neither policy drifts during the measurement and both keep
sampling the same length distribution (the work per step is the same at any learning rate).

Usage: `python bench/train_step.py [--steps 5] [--warmup 1] [--tokens 8,64] [--threads 2]`
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEC = ROOT / "specs" / "demo.yaml"


# --- worker side: one trainer, in its own process ----------------------------------------------------


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _run_ours(spec_path: str, warmup: int, steps: int) -> dict[str, Any]:
    from rewardkit.trainers import gdpo

    run = gdpo.setup(spec_path)
    start = _rss_mb()
    rows = []
    for i in range(warmup + steps):
        cpu = _cpu_s()
        m = gdpo.train_step(run)
        if i >= warmup:
            rows.append({"generate": m["time/generate"], "score": m["time/score"], "update": m["time/update"],
                         "step": m["time/step"], "cpu": _cpu_s() - cpu, "length": m["len/mean"]})
    return {"steps": rows, "start_mb": start, "peak_mb": _peak_mb()}


def _run_trl(spec_path: str, warmup: int, steps: int, out_dir: str) -> dict[str, Any]:
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from rewardkit.integrations.trl import build_trl_trainer
    from rewardkit.spec import load_spec

    phases: dict[str, float] = {"generate": 0.0, "score": 0.0}
    lengths: list[int] = []
    rows: list[dict[str, float]] = []
    marks: dict[str, float] = {}

    class Timed(GRPOTrainer):
        def _generate(self, prompts):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            out = super()._generate(prompts)
            phases["generate"] += time.perf_counter() - t0
            lengths.extend(len(ids) for ids in out[1])  # completion_ids
            return out

        def _calculate_rewards(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            out = super()._calculate_rewards(*args, **kwargs)
            phases["score"] += time.perf_counter() - t0
            return out

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            phases.update(generate=0.0, score=0.0)
            lengths.clear()
            if state.global_step == 0:  # as for ours: after model, data and optimizer, before step 1
                marks["start_mb"] = _rss_mb()
            marks["t0"] = time.perf_counter()
            marks["cpu"] = _cpu_s()

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            total = time.perf_counter() - marks["t0"]
            if state.global_step > warmup:
                rows.append({"generate": phases["generate"], "score": phases["score"],
                             "update": total - phases["generate"] - phases["score"], "step": total,
                             "cpu": _cpu_s() - marks["cpu"],
                             "length": sum(lengths) / max(1, len(lengths))})

    spec = load_spec(spec_path)
    trainer = build_trl_trainer(spec, trainer_cls=Timed, output_dir=out_dir, report_to="none",
                                logging_steps=10**6, save_strategy="no", disable_tqdm=True,
                                max_steps=warmup + steps)
    trainer.add_callback(StepClock())
    trainer.train()
    return {"steps": rows, "start_mb": marks.get("start_mb", float("nan")), "peak_mb": _peak_mb()}


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.worker == "ours":
        result = _run_ours(args.spec, args.warmup, args.steps)
    else:
        result = _run_trl(args.spec, args.warmup, args.steps, args.out)
    print("RESULT " + json.dumps(result))


# --- driver side: build the inputs, run both, print the table ----------------------------------------


def _write_spec(work: Path, tokens: int, prompts: int, group: int, steps: int) -> Path:
    demo = yaml.safe_load(DEMO_SPEC.read_text(encoding="utf-8"))
    demo["train"] = {
        "model": str(work / "model"), "data": str(work / "demo_train.jsonl"),
        "prompts_per_step": prompts, "group_size": group, "max_new_tokens": tokens,
        "temperature": 1.0, "optimizer": "adamw", "lr": 1.0e-9, "lr_schedule": "constant",
        "clip_low": 0.2, "clip_high": 0.28, "loss_aggregation": "token_mean", "max_grad_norm": 1.0,
        "kl_coef": 0.0, "updates_per_batch": 1, "grad_accum": 1, "steps": steps, "seed": 0,
        "device": "cpu", "dtype": "float32", "backend": "transformers",
        "output_dir": str(work / "runs"), "progress": False, "tensorboard": False,
    }
    path = work / f"bench_t{tokens}.yaml"
    path.write_text(yaml.safe_dump(demo, sort_keys=False), encoding="utf-8")
    return path


def _spawn(which: str, spec: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", which, "--spec", str(spec), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(args.threads), "--out", str(work / f"trl_{which}")]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(work))
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT "):]))
    raise RuntimeError(f"{which} worker failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


def _median(rows: list[dict[str, float]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="measured steps per trainer")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps first")
    parser.add_argument("--tokens", default="8,64", help="max new tokens, comma-separated configurations")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--group", type=int, default=8, help="completions per prompt")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in each trainer")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each trainer (TRL, ours, ...)")
    parser.add_argument("--worker", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch
    import transformers
    import trl

    from rewardkit.trainers.demo_data import write_demo_data
    from rewardkit.trainers.tiny_model import build_tiny_model

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}; "
          f"{os.cpu_count()} CPUs, {args.threads} torch threads per trainer; "
          f"{args.prompts} prompts x {args.group} completions per step; "
          f"{args.rounds} alternating rounds of {args.warmup} warm-up + {args.steps} measured steps; "
          f"medians per step; load average before: {os.getloadavg()[0]:.1f}")
    header = ("| max tokens | trainer | step s | generate s | score s | update s | CPU s/step | mean len | "
              "peak RSS MB | peak - start MB | step vs TRL |")
    lines = [header, "|" + "---|" * 11]
    with tempfile.TemporaryDirectory(prefix="rk_bench_") as tmp:
        work = Path(tmp)
        build_tiny_model(work / "model", seed=0)
        write_demo_data(work)
        for tokens in [int(t) for t in args.tokens.split(",")]:
            spec = _write_spec(work, tokens, args.prompts, args.group, args.warmup + args.steps)
            runs: dict[str, list[dict[str, Any]]] = {"trl": [], "ours": []}
            for _ in range(args.rounds):  # alternate, so that load from elsewhere hits both alike
                for which in ("trl", "ours"):
                    runs[which].append(_spawn(which, spec, args, work))
            if os.environ.get("RK_BENCH_RAW"):
                print(json.dumps(runs))
            trl_step = _median([s for r in runs["trl"] for s in r["steps"]], "step")
            for which, label in (("ours", "rewardkit"), ("trl", "TRL")):
                rows = [s for r in runs[which] for s in r["steps"]]
                peak = max(r["peak_mb"] for r in runs[which])
                growth = max(r["peak_mb"] - r["start_mb"] for r in runs[which])
                step = _median(rows, "step")
                lines.append(
                    f"| {tokens} | {label} | {step:.3f} | {_median(rows, 'generate'):.3f} | "
                    f"{_median(rows, 'score'):.3f} | {_median(rows, 'update'):.3f} | "
                    f"{_median(rows, 'cpu'):.3f} | {_median(rows, 'length'):.1f} | {peak:.0f} | {growth:.0f} | {step / trl_step:.2f}x |")
            print("\n".join(lines[-2:]), flush=True)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
