"""Rollout throughput, train-step time and memory of 0.5B and 1.5B models on one GPU (not for CI).

For each size it builds a model with Qwen2's dimensions from a Llama config (random bf16 weights;
0.5B: 24 layers, hidden 896, 14 heads / 2 KV heads; 1.5B: 28 layers, hidden 1536, 12 / 2; both
vocab 151,936, tied embeddings) and a word-level tokenizer made locally (no download), then, in
two subprocesses per size (so one's GPU memory is freed before the next starts):

- rollout: tokens/s of transformers `generate` and of rewardkit's `sampler="static"` loop
  (`trainers/static_decode.py`: static KV cache, decode step compiled into CUDA graphs; its
  first call, which compiles, is timed apart), every completion running to `--max-tokens`
  (EOS ignored), next to the memory-bandwidth bound: each decode step reads every weight once
  and every row's KV cache, so tokens/s <= rows * bandwidth / (weight bytes + KV bytes at the
  mean context length);
- train: rewardkit's step (generate / score / update, `--train-sampler` rollouts) for full
  fine-tuning, full with chunked log-probs + gradient checkpointing, and LoRA r16 with the same;
  peak GPU memory of each; then the largest batch of completions (`--group` per prompt, prompts
  doubling) whose update fits in one forward-backward pass at full length.

A time budget (`--budget`, default 400 s, plus `--grace` 40 s for a worker already running) skips
what would start after it, so the script returns within 7.5 minutes (vLLM, absent from the lent machines, is not measured). `--smoke` runs
every path on the CPU with a tiny model of the same shape family (a check that the script works,
no measurement).

Usage: `python bench/gpu_rollout.py [--sizes 0.5b,1.5b] [--prompts 16] [--group 8]
[--prompt-tokens 128] [--max-tokens 256] [--steps 1] [--budget 400] [--smoke]`
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
NO_EOS = {-1}  # an end token no sampler can draw: every row runs to max_new_tokens

# Qwen2 dimensions (Qwen2 adds q/k/v biases; a Llama config keeps the tokenizer simple)
SIZES: dict[str, dict[str, Any]] = {
    "0.5b": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
             "num_key_value_heads": 2, "vocab_size": 151_936},
    "1.5b": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
             "num_key_value_heads": 2, "vocab_size": 151_936},
    "smoke": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 2_000},
}
# Peak memory bandwidth by card (TB/s, vendor figures); `--bandwidth` overrides.
BANDWIDTH_TBS = {"H200": 4.8, "H100 NVL": 3.9, "H100 PCIe": 2.0, "H100": 3.35, "A100-SXM4-80GB": 2.04,
                 "A100": 1.56, "L40S": 0.864, "L4": 0.3}


# --- model and tokenizer, built locally -----------------------------------------------------------


def build_model(out: Path, size: str, device: str) -> None:
    """Write a model of `size` (random bf16 weights) and a matching word-level tokenizer to `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig, PreTrainedTokenizerFast

    dims = SIZES[size]
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for i in range(dims["vocab_size"] - len(SPECIALS)):
        vocab[f"t{i}"] = len(vocab)
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<bos>",
                                        eos_token="<eos>", unk_token="<unk>", model_max_length=4096)
    config = LlamaConfig(**dims, max_position_embeddings=4096, rope_theta=1_000_000.0, tie_word_embeddings=True,
                         rms_norm_eps=1e-6, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    (out / "bench_info.json").write_text(json.dumps({"parameters": n_params, "size": size}), encoding="utf-8")


def prompt_ids(n: int, length: int, vocab: int, seed: int = 0) -> list[list[int]]:
    """`n` prompts of `length` random ordinary tokens (the same ones for every engine)."""
    rng = random.Random(seed)
    return [[rng.randrange(len(SPECIALS), vocab) for _ in range(length)] for _ in range(n)]


def bandwidth_bound(args: argparse.Namespace, params: int, config: dict[str, Any], tbs: float) -> float:
    """Upper bound on decode tokens/s: per step, all weights (bf16) plus every row's KV cache at
    the mean context length are read once from memory."""
    rows = args.prompts * args.group
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    mean_context = args.prompt_tokens + args.max_tokens / 2
    kv_bytes = rows * config["num_hidden_layers"] * 2 * config["num_key_value_heads"] * head_dim * mean_context * 2
    return rows * tbs * 1e12 / (params * 2 + kv_bytes)


# --- workers: one per (size, kind), in its own process ----------------------------------------------


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gb(device: str) -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")


def run_rollout(args: argparse.Namespace) -> dict[str, Any]:
    """transformers `generate` then the static loop, same prompts, same batch, timed after warm-up."""
    import torch
    from transformers import AutoModelForCausalLM

    from rewardkit.trainers.rollout import SamplingSettings
    from rewardkit.trainers.static_decode import StaticDecoder

    device = args.device
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.bfloat16).to(device).eval()
    vocab = model.config.vocab_size
    prompts = prompt_ids(args.prompts, args.prompt_tokens, vocab)
    out: dict[str, Any] = {}

    ids = torch.tensor([p for p in prompts for _ in range(args.group)], device=device)

    def hf(max_new: int) -> Any:
        with torch.no_grad():
            return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                  temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new,
                                  min_new_tokens=max_new, pad_token_id=model.generation_config.pad_token_id)

    hf(16)  # warm-up at the full batch size
    _sync(device)
    t0 = time.perf_counter()
    sample = hf(args.max_tokens)
    _sync(device)
    out["generate"] = {"seconds": time.perf_counter() - t0,
                       "tokens": int((sample.shape[1] - ids.shape[1]) * sample.shape[0])}

    sampling = SamplingSettings(max_new_tokens=args.max_tokens, temperature=1.0)
    for compile_step in (None, False):  # compiled on CUDA; eager only if compiling fails
        decoder = StaticDecoder(model, compile_step=compile_step)
        timings = []
        try:
            for seed in range(3):  # the first call compiles (on CUDA); the best of the other two counts
                _sync(device)
                t0 = time.perf_counter()
                rows = decoder.generate(prompts, args.group, sampling, seed, NO_EOS,
                                        model.generation_config.pad_token_id)
                _sync(device)
                timings.append(time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - report and fall back: the generate row above still counts
            out["static_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            print(f"static loop (compile_step={compile_step}) failed: {out['static_error']}", file=sys.stderr)
            continue
        out["static"] = {"seconds": min(timings[1:]), "first_s": timings[0], "tokens": sum(len(r) for r in rows),
                         "compiled": compile_step is None and device.startswith("cuda")}
        break
    out["peak_gb"] = _peak_gb(device)
    return out


def _train_modes() -> dict[str, dict[str, Any]]:
    memory = {"logprob_chunk_tokens": 1024, "gradient_checkpointing": True}
    return {"full": {}, "full, chunked log-probs + checkpointing": memory,
            "LoRA r16, chunked log-probs + checkpointing": {**memory, "lora": {"r": 16, "alpha": 32}}}


def run_train(args: argparse.Namespace) -> dict[str, Any]:
    """For each mode: step times, peak memory, then the largest batch whose update fits."""
    import numpy as np
    import torch

    from rewardkit.trainers import gdpo

    spec = _write_train_spec(args)
    results: dict[str, Any] = {}
    for mode, overrides in _train_modes().items():
        if device_is_cuda(args):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        run: Any = None
        try:
            run = gdpo.setup(str(spec), overrides=overrides)
            steps = []
            for i in range(1 + args.steps):  # the first step warms up kernels and allocator
                m = gdpo.train_step(run)
                if i:
                    steps.append(m)
            mean = {k: sum(s[k] for s in steps) / len(steps)
                    for k in ("time/generate", "time/score", "time/update", "time/step", "len/mean")}
            trainable = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
            results[mode] = {**mean, "peak_gb": _peak_gb(args.device), "trainable": trainable,
                             "fits": _largest_fit(run, args, np)}
        except Exception as exc:  # noqa: BLE001 - one mode failing (out of memory, say) leaves the others
            results[mode] = {"error": f"{type(exc).__name__}: {str(exc)[:240]}"}
        print("PART " + json.dumps({mode: results[mode]}), flush=True)  # what a timeout leaves
        del run
        gc.collect()
    return results


def device_is_cuda(args: argparse.Namespace) -> bool:
    return str(args.device).startswith("cuda")


def _largest_fit(run: Any, args: argparse.Namespace, np: Any) -> dict[str, Any]:
    """Double the prompts (x `--group` completions of `--max-tokens` tokens) through one update pass
    until it runs out of memory; the last one that fitted, and its peak memory."""
    import torch

    from rewardkit.trainers import gdpo

    run.cfg = run.cfg.model_copy(update={"grad_accum": 1})
    vocab = run.model.config.vocab_size
    best: dict[str, Any] = {"completions": 0, "peak_gb": float("nan")}
    prompts = max(1, args.prompts // 4)
    while prompts * args.group <= args.fit_max:
        rows = prompt_ids(prompts, args.prompt_tokens, vocab, seed=prompts)
        completions = prompt_ids(prompts * args.group, args.max_tokens, vocab, seed=-prompts)
        rollouts = gdpo.Rollouts([{}] * prompts, rows, completions, [""] * len(completions), args.group,
                                 [True] * len(completions))
        adv = np.random.default_rng(0).standard_normal((prompts, args.group))
        if device_is_cuda(args):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            gdpo.update(run, rollouts, adv)
        except torch.cuda.OutOfMemoryError:
            run.optimizer.zero_grad(set_to_none=True)
            break
        best = {"completions": prompts * args.group, "peak_gb": _peak_gb(args.device)}
        prompts *= 2
    else:
        best["capped"] = True  # --fit-max reached without running out
    return best


def _write_train_spec(args: argparse.Namespace) -> Path:
    """A spec over the random-token prompts: two cheap rewards (one gated), GDPO, bf16, micro-batches
    of 16 completions, KL 0 (the reference would be a second copy in full fine-tuning)."""
    work = Path(args.model_dir).resolve().parent / f"{Path(args.model_dir).name}_train_spec"
    work.mkdir(parents=True, exist_ok=True)
    vocab = json.loads((Path(args.model_dir) / "config.json").read_text())["vocab_size"]
    rows = [{"prompt": " ".join(f"t{i - len(SPECIALS)}" for i in ids), "id": str(k)}
            for k, ids in enumerate(prompt_ids(max(64, args.prompts), args.prompt_tokens, vocab))]
    (work / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = f"""\
version: 1
name: gpu-bench
rewards:
  - name: starts_t1
    verifier: format_regex
    args: {{mode: search, patterns: ['^t1']}}
  - name: short
    verifier: length_limit
    args: {{max_length: {args.max_tokens // 2}, unit: tokens, mode: soft, buffer: {args.max_tokens // 2}}}
    when: starts_t1 >= 1
advantage: {{method: gdpo}}
train:
  model: {Path(args.model_dir).resolve()}
  data: {work / "prompts.jsonl"}
  prompt_format: raw
  prompts_per_step: {args.prompts}
  group_size: {args.group}
  max_new_tokens: {args.max_tokens}
  grad_accum: {max(1, args.prompts * args.group // 16)}
  lr: 1.0e-6
  dtype: bfloat16
  device: {args.device}
  backend: transformers
  sampler: {args.train_sampler}
  steps: {1 + args.steps}
  output_dir: {work / "runs"}
  progress: false
  tensorboard: false
"""
    path = work / "spec.yaml"
    path.write_text(spec, encoding="utf-8")
    return path


def worker(args: argparse.Namespace) -> None:
    result = run_rollout(args) if args.worker == "rollout" else run_train(args)
    print("RESULT " + json.dumps(result), flush=True)


# --- driver -------------------------------------------------------------------------------------------


def _spawn(name: str, argv: list[str], timeout: float) -> tuple[dict[str, Any] | None, str]:
    """Run one worker; its `RESULT` line, or what it reported (`PART` lines) before it failed or
    ran out of time, with the reason."""
    cmd = [sys.executable, __file__, "--worker", name, *argv]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(1.0, timeout), cwd=str(ROOT))
        stdout, stderr, why = proc.stdout, proc.stderr, f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        stdout, stderr = raw.decode() if isinstance(raw, bytes) else raw, ""
        why = f"stopped after {timeout:.0f} s (time budget)"
    parts: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT "):])), ""
        if line.startswith("PART "):
            parts.update(json.loads(line[len("PART "):]))
    tail = [ln for ln in (stderr or stdout).strip().splitlines() if ln.strip()][-1:] or ["no output"]
    return (parts or None), f"{why}: ...{tail[0][-240:]}"


def _rollout_rows(label: str, result: dict[str, Any], bound: float | None, generate_name: str,
                  lines: list[str]) -> None:
    if "static_error" in result:
        print(f"{label}: static loop: {result['static_error']}", flush=True)
    base = result["generate"]["tokens"] / result["generate"]["seconds"]
    for engine, name in (("generate", generate_name), ("static", "rewardkit static loop")):
        if engine not in result:
            continue
        r = result[engine]
        if engine == "static" and not r["compiled"]:
            name += " (eager)"
        rate = r["tokens"] / r["seconds"]
        share = f"{rate / bound:.1%}" if bound else "n/a"
        first = f"{r['first_s']:.1f}" if "first_s" in r else ""
        lines.append(f"| {label} | {name} | {r['seconds']:.2f} | {r['tokens']} | {rate:,.0f} | "
                     f"{rate / base:.2f}x | {share} | {first} | {result['peak_gb']:.1f} |")
        print(lines[-1], flush=True)


def _train_rows(label: str, result: dict[str, Any], lines: list[str]) -> None:
    for mode, r in result.items():
        if "error" in r:
            lines.append(f"| {label} | {mode} | failed: {r['error']} | | | | | | |")
        else:
            fit = r["fits"]
            fits = f"{fit['completions']}{'+' if fit.get('capped') else ''}"
            lines.append(f"| {label} | {mode} | {r['trainable'] / 1e6:.1f}M | {r['time/step']:.2f} | "
                         f"{r['time/generate']:.2f} | {r['time/update']:.2f} | {r['peak_gb']:.1f} | {fits} | "
                         f"{fit['peak_gb']:.1f} |")
        print(lines[-1], flush=True)


def _card_bandwidth(name: str, override: float | None) -> float | None:
    if override:
        return override
    for card, tbs in BANDWIDTH_TBS.items():  # most specific names first
        if card in name:
            return tbs
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.5b,1.5b", help="comma-separated model sizes: 0.5b, 1.5b")
    parser.add_argument("--models", default=str(ROOT / "models"), help="where models are built (reused)")
    parser.add_argument("--prompts", type=int, default=16, help="prompts per batch")
    parser.add_argument("--group", type=int, default=8, help="completions per prompt")
    parser.add_argument("--prompt-tokens", type=int, default=128, help="tokens per prompt")
    parser.add_argument("--max-tokens", type=int, default=256, help="new tokens per completion")
    parser.add_argument("--steps", type=int, default=1, help="measured trainer steps per mode (after one warm-up)")
    parser.add_argument("--train-sampler", default="generate", choices=["generate", "static", "loop"],
                        help="rollouts inside the train-step rows")
    parser.add_argument("--fit-max", type=int, default=2048, help="largest batch of completions tried")
    parser.add_argument("--bandwidth", type=float, help="card memory bandwidth in TB/s (default: by name)")
    parser.add_argument("--budget", type=float, default=400, help="seconds after which nothing new starts")
    parser.add_argument("--grace", type=float, default=40, help="seconds a running worker may take past the budget")
    parser.add_argument("--only", default="rollout,train", help="comma-separated subset of: rollout, train")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny model: check the script, measure nothing")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    started = time.monotonic()

    try:
        import torch
    except ImportError:
        print("torch is not installed: this bench needs torch with CUDA (pip install torch).")
        return 2
    if args.smoke:
        args.device, sizes = "cpu", ["smoke"]
        args.prompts, args.group, args.prompt_tokens, args.max_tokens, args.steps = 2, 2, 8, 8, 1
        args.fit_max = 16
    elif not torch.cuda.is_available():
        print(f"CUDA is not available (torch {torch.__version__}): this bench needs an NVIDIA GPU; "
              "nothing measured (--smoke checks the script on CPU). The CPU benches are bench/train_step.py "
              "and bench/train_memory.py.")
        return 2
    else:
        sizes = args.sizes.split(",")
    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not args.smoke else "cpu"
    tbs = _card_bandwidth(card, args.bandwidth)
    import transformers

    print(f"device: {card}; torch {torch.__version__}; transformers {transformers.__version__}; "
          f"vLLM {'installed' if importlib.util.find_spec('vllm') else 'not installed'}; bandwidth "
          f"{f'{tbs} TB/s' if tbs else 'unknown (--bandwidth)'}; {args.prompts} prompts x {args.group} "
          f"completions, {args.prompt_tokens} prompt tokens, {args.max_tokens} new tokens", flush=True)

    rollout_lines = ["| model | engine | wall s | new tokens | tokens/s | vs generate | share of bound | "
                     "first call s | peak GPU GB |", "|---|---|---|---|---|---|---|---|---|"]
    train_lines = ["| model | mode | trainable | step s | generate s | update s | peak GPU GB | "
                   "largest batch in one pass | its peak GB |", "|---|---|---|---|---|---|---|---|---|"]
    only = set(args.only.split(","))
    # Rollouts of every size first (the comparison this script is for), then the train steps.
    for kind, size in [(k, z) for k in ("rollout", "train") for z in sizes]:
        if kind not in only:
            continue
        elapsed = time.monotonic() - started
        if elapsed >= args.budget:
            print(f"{size} {kind}: skipped, time budget spent", flush=True)
            continue
        model_dir = Path(args.models) / f"bench-{size}"
        if not (model_dir / "config.json").exists():
            t0 = time.perf_counter()
            build_model(model_dir, size, args.device)
            print(f"built {model_dir} in {time.perf_counter() - t0:.0f} s", flush=True)
        info = json.loads((model_dir / "bench_info.json").read_text())
        params = int(info["parameters"])
        label = f"{size} ({params / 1e6:.0f}M)"
        bound = bandwidth_bound(args, params, SIZES[size], tbs) if tbs else None
        if bound and kind == "rollout":
            print(f"{label}: bandwidth bound {bound:,.0f} tokens/s at {args.prompts * args.group} rows", flush=True)
        argv = ["--model-dir", str(model_dir), "--prompts", str(args.prompts), "--group", str(args.group),
                "--prompt-tokens", str(args.prompt_tokens), "--max-tokens", str(args.max_tokens),
                "--steps", str(args.steps), "--device", args.device, "--train-sampler", args.train_sampler,
                "--fit-max", str(args.fit_max)]
        # a worker may run past the budget by at most `--grace` seconds, then it is stopped
        result, why = _spawn(kind, argv, args.budget + args.grace - (time.monotonic() - started))
        if why:
            print(f"{label} {kind}: {why}", flush=True)
        if result is None:
            continue
        if kind == "rollout":
            _rollout_rows(label, result, bound, f"transformers {transformers.__version__} generate", rollout_lines)
        else:
            _train_rows(label, result, train_lines)
    print()
    print("\n".join(rollout_lines))
    print()
    print("\n".join(train_lines))
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
