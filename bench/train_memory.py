"""Memory settings on CPU: LoRA vs full fine-tuning, gradient checkpointing, chunked log-probs.

Two tables from one command, every configuration in its own fresh subprocess (so that peak RSS,
the `ru_maxrss` high-water mark, is its own), configurations alternating over `--rounds`:

1. Train step on the tiny demo model and a 21M-parameter one of its family (the demo spec, KL to
   the reference on, so full fine-tuning loads a second copy as the reference): full fine-tuning,
   LoRA (r 16, all linear layers; the reference is the policy with adapters off), full with
   gradient checkpointing, full with chunked log-probs. Medians of step and update seconds,
   peak RSS and its growth over the RSS before the first step.
2. Completion log-probs at a 150k vocabulary: one forward + backward of `batching.token_logprobs`
   (what the update runs) on a 2-layer model with hidden size 256 and vocabulary 151,936, over
   `--rows` completions of `--completion` tokens, plain (`[tokens x vocab]` logits) vs chunked.
   Peak - start is the growth of the high-water mark over the RSS after model and batch are built.

Usage: `python bench/train_memory.py [--steps 5] [--rounds 2] [--threads 1] [--sizes tiny,small] [--rows 8]
[--completion 128]`
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

ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEC = ROOT / "specs" / "demo.yaml"
VOCAB = 151_936

TRAIN_CONFIGS: dict[str, dict[str, Any]] = {
    "full": {},
    "LoRA r16": {"lora": {"r": 16, "alpha": 32}},
    "full + gradient checkpointing": {"gradient_checkpointing": True},
    "full + chunked log-probs (64)": {"logprob_chunk_tokens": 64},
}
LOGPROB_CHUNKS = [0, 512, 128]
# The demo's tiny model, and a wider and deeper one of the same family where weights, gradients
# and Adam moments (not activations) dominate memory, as in a real model.
MODEL_SIZES: dict[str, dict[str, int]] = {
    "tiny": {},
    "small": {"hidden_size": 512, "layers": 8, "heads": 8},
}


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss / 2**20)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# --- workers -----------------------------------------------------------------------------------------


def _train_worker(args: argparse.Namespace) -> dict[str, Any]:
    from rewardkit.trainers import gdpo

    overrides = {"model": args.model, "data": args.data, "eval_data": str(Path(args.data).with_name("demo_eval.jsonl")),
                 "progress": False, "tensorboard": False,
                 "output_dir": args.out, "eval_every": 0, "cpu_threads": args.threads, "steps": 1000,
                 **TRAIN_CONFIGS[args.config]}
    run = gdpo.setup(str(DEMO_SPEC), overrides=overrides)
    trainable = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    start = _rss_mb()
    rows = []
    for i in range(args.warmup + args.steps):
        m = gdpo.train_step(run)
        if i >= args.warmup:
            rows.append({"step": m["time/step"], "update": m["time/update"], "length": m["len/mean"]})
    return {"steps": rows, "start_mb": start, "peak_mb": _peak_mb(), "trainable": trainable}


def _logprob_worker(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from rewardkit.trainers.batching import build_batch, token_logprobs

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    model = AutoModelForCausalLM.from_config(config).train()
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(4, VOCAB, (16,), generator=g).tolist() for _ in range(args.rows)]
    completions = [torch.randint(4, VOCAB, (args.completion,), generator=g).tolist() for _ in range(args.rows)]
    batch = build_batch(prompts, completions, list(range(args.rows)), 0, torch.device("cpu"))
    start = _rss_mb()
    t0 = time.perf_counter()
    logp, _ = token_logprobs(model, batch, 1.0, args.chunk)
    (logp * batch.mask).sum().backward()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "start_mb": start, "peak_mb": _peak_mb(), "tokens": batch.tokens,
            "checksum": float(logp.sum())}


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    result = _train_worker(args) if args.worker == "train" else _logprob_worker(args)
    print("RESULT " + json.dumps(result), flush=True)


# --- driver ------------------------------------------------------------------------------------------


def _spawn(argv: list[str]) -> dict[str, Any]:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT "):]))
    raise RuntimeError(f"worker {argv} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="measured train steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured train steps first")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of every configuration")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--rows", type=int, default=8, help="completions in the log-prob pass")
    parser.add_argument("--completion", type=int, default=128, help="tokens per completion in the log-prob pass")
    parser.add_argument("--sizes", default="tiny,small", help="train-step models: tiny (0.3M), small (21M)")
    parser.add_argument("--only", default="train,logprobs", help="comma-separated subset of: train, logprobs")
    parser.add_argument("--worker", choices=["train", "logprobs"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch
    import transformers

    only = set(args.only.split(","))
    print(f"torch {torch.__version__}, transformers {transformers.__version__}; {os.cpu_count()} CPUs, "
          f"{args.threads} torch thread(s) per worker; {args.rounds} alternating rounds; "
          f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    common = ["--threads", str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if "train" in only:
        from rewardkit.trainers.demo_data import write_demo_data
        from rewardkit.trainers.tiny_model import build_tiny_model

        print("\n| model | demo spec (8 prompts x 8, 6 new tokens, KL on) | trainable parameters | step s | "
              "update s | mean len | peak RSS MB | peak - start MB |")
        print("|---|---|---|---|---|---|---|---|")
        with tempfile.TemporaryDirectory(prefix="rk_mem_") as tmp:
            work = Path(tmp)
            write_demo_data(work)
            for size in args.sizes.split(","):
                build_tiny_model(work / size, seed=0, **MODEL_SIZES[size])
                runs: dict[str, list[dict[str, Any]]] = {name: [] for name in TRAIN_CONFIGS}
                for _ in range(args.rounds):
                    for name in TRAIN_CONFIGS:
                        runs[name].append(_spawn(["--worker", "train", "--config", name, "--model", str(work / size),
                                                  "--data", str(work / "demo_train.jsonl"),
                                                  "--out", str(work / "runs"), *common]))
                for name, results in runs.items():
                    rows = [s for r in results for s in r["steps"]]
                    print(f"| {size} | {name} | {results[0]['trainable']:,} | "
                          f"{statistics.median(r['step'] for r in rows):.3f} | "
                          f"{statistics.median(r['update'] for r in rows):.3f} | "
                          f"{statistics.median(r['length'] for r in rows):.1f} | "
                          f"{max(r['peak_mb'] for r in results):.0f} | "
                          f"{max(r['peak_mb'] - r['start_mb'] for r in results):.0f} |", flush=True)
    if "logprobs" in only:
        results_by_chunk: dict[int, list[dict[str, Any]]] = {c: [] for c in LOGPROB_CHUNKS}
        for _ in range(args.rounds):
            for chunk in LOGPROB_CHUNKS:
                results_by_chunk[chunk].append(_spawn(["--worker", "logprobs", "--chunk", str(chunk), "--rows",
                                                       str(args.rows), "--completion", str(args.completion),
                                                       *common]))
        tokens = results_by_chunk[0][0]["tokens"]
        plain_growth = max(r["peak_mb"] - r["start_mb"] for r in results_by_chunk[0])
        print(f"\n| log-probs, vocab {VOCAB:,}, {tokens} completion tokens, forward + backward | seconds | "
              "peak RSS MB | peak - start MB | vs plain | sum of log-probs |")
        print("|---|---|---|---|---|---|")
        for chunk, results in results_by_chunk.items():
            growth = max(r["peak_mb"] - r["start_mb"] for r in results)
            label = "plain (all logits)" if chunk == 0 else f"chunked, {chunk} tokens"
            print(f"| {label} | {statistics.median(r['seconds'] for r in results):.2f} | "
                  f"{max(r['peak_mb'] for r in results):.0f} | {growth:.0f} | {growth / plain_growth:.2f}x | "
                  f"{results[0]['checksum']:.3f} |", flush=True)
    print(f"\nload average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
