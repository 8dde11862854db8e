"""Rollout throughput and train-step time of a ~0.5B-parameter model on one GPU (not for CI).

Builds a model with Qwen2-0.5B's dimensions from a Llama config (random weights, bf16; 24 layers,
hidden 896, 14 heads / 2 KV heads, vocab 151,936: about 494M parameters) and a word-level tokenizer made
locally with `tokenizers` (no download), then measures, for the same prompts:

- rollout tokens/s with vLLM (`LLM.generate`, `SamplingParams(n=group, ignore_eos=True)`),
- rollout tokens/s with `transformers` `generate` (sampling, `min_new_tokens = max_new_tokens`),
- rewardkit's trainer step (generate / score / update) in bf16 on CUDA, with the transformers
  engine and, when vLLM is installed, with the vLLM engine.

Every completion runs to `--max-tokens` in the rollout rows (EOS ignored), so tokens/s compare
like for like. Each measurement runs in its own subprocess, so that one engine's GPU memory is
freed before the next starts and one failure does not stop the others. Whatever cannot run
(no CUDA, no vLLM, no rewardkit training deps) is reported as skipped with the reason.

Usage: `python bench/gpu_rollout.py [--prompts 16] [--group 8] [--prompt-tokens 128]
[--max-tokens 256] [--steps 3] [--model-dir models/gpu-0.5b]`
"""

from __future__ import annotations

import argparse
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
VOCAB_SIZE = 151_936
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]


# --- model and tokenizer, built locally -----------------------------------------------------------


def build_model(out: Path) -> None:
    """Write a Qwen2-0.5B-sized model (random bf16 weights) and a matching tokenizer to `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig, PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for i in range(VOCAB_SIZE - len(SPECIALS)):
        vocab[f"t{i}"] = len(vocab)
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<bos>",
                                        eos_token="<eos>", unk_token="<unk>", model_max_length=4096)
    # Qwen2-0.5B's dimensions in a Llama config (Qwen2 differs only by biases on q/k/v): with
    # model_type qwen2, transformers 5.x's AutoTokenizer would load Qwen2Tokenizer, whose
    # byte-level BPE rules find none of this tokenizer's words.
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096, rope_theta=1_000_000.0,
        tie_word_embeddings=True, rms_norm_eps=1e-6,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    (out / "bench_info.json").write_text(json.dumps({"parameters": n_params}), encoding="utf-8")


def prompt_ids(n: int, length: int, seed: int = 0) -> list[list[int]]:
    """`n` prompts of `length` random ordinary tokens (the same ones for every engine)."""
    rng = random.Random(seed)
    return [[rng.randrange(len(SPECIALS), VOCAB_SIZE) for _ in range(length)] for _ in range(n)]


# --- workers: one measurement each, in its own process ---------------------------------------------


def run_vllm(args: argparse.Namespace) -> dict[str, Any]:
    from vllm import LLM, SamplingParams

    llm = LLM(model=args.model_dir, dtype="bfloat16", seed=0, gpu_memory_utilization=args.vllm_memory,
              max_model_len=args.prompt_tokens + args.max_tokens + 16)
    prompts = [{"prompt_token_ids": ids} for ids in prompt_ids(args.prompts, args.prompt_tokens)]
    params = SamplingParams(n=args.group, max_tokens=args.max_tokens, ignore_eos=True, temperature=1.0, seed=0)
    llm.generate(prompts, SamplingParams(n=args.group, max_tokens=32, ignore_eos=True), use_tqdm=False)  # warm-up
    timings = []
    for _ in range(2):  # the faster of two, like the transformers row
        t0 = time.perf_counter()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        timings.append(time.perf_counter() - t0)
    seconds = min(timings)
    tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    import vllm

    return {"seconds": seconds, "tokens": tokens, "version": vllm.__version__, "all_s": timings}


def run_transformers(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.bfloat16).to("cuda").eval()
    prompts = prompt_ids(args.prompts, args.prompt_tokens)
    ids = torch.tensor([p for p in prompts for _ in range(args.group)], device="cuda")
    mask = torch.ones_like(ids)

    def sample(max_new: int, batch: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.generate(input_ids=batch, attention_mask=attn, do_sample=True, temperature=1.0,
                                  top_k=0, top_p=1.0, max_new_tokens=max_new, min_new_tokens=max_new,
                                  pad_token_id=model.generation_config.pad_token_id)

    sample(32, ids, mask)  # warm-up at the full batch size
    timings = []
    for _ in range(2):  # the faster of two, as the trainer rows time steps after a warm-up step
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = sample(args.max_tokens, ids, mask)
        torch.cuda.synchronize()
        timings.append(time.perf_counter() - t0)
    seconds = min(timings)
    tokens = int((out.shape[1] - ids.shape[1]) * out.shape[0])
    return {"seconds": seconds, "tokens": tokens, "version": transformers.__version__, "all_s": timings,
            "peak_gb": torch.cuda.max_memory_allocated() / 2**30}


def run_train(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    import torch

    from rewardkit.trainers import gdpo

    spec = _write_train_spec(args, backend)
    run = gdpo.setup(str(spec))
    steps = []
    for i in range(1 + args.steps):  # the first step warms up kernels and allocator
        m = gdpo.train_step(run)
        if i:
            steps.append(m)
    mean = {k: sum(s[k] for s in steps) / len(steps)
            for k in ("time/generate", "time/score", "time/update", "time/step", "len/mean")}
    return {**mean, "backend": run.backend, "peak_gb": torch.cuda.max_memory_allocated() / 2**30}


def _write_train_spec(args: argparse.Namespace, backend: str) -> Path:
    """A spec over the random-token prompts: two cheap rewards (one gated), GDPO, bf16 on CUDA,
    micro-batches of 16 completions (the fp32 log-softmax over a 152k vocabulary is the big tensor)."""
    work = Path(args.model_dir).resolve().parent / "gpu_bench_spec"
    work.mkdir(parents=True, exist_ok=True)
    rows = [{"prompt": " ".join(f"t{i - len(SPECIALS)}" for i in ids), "id": str(k)}
            for k, ids in enumerate(prompt_ids(max(64, args.prompts), args.prompt_tokens))]
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
  device: cuda
  backend: {backend}
  vllm_gpu_memory_utilization: {args.vllm_memory}
  steps: {1 + args.steps}
  output_dir: {work / "runs"}
  progress: false
  tensorboard: false
"""
    path = work / f"spec_{backend}.yaml"
    path.write_text(spec, encoding="utf-8")
    return path


def worker(args: argparse.Namespace) -> None:
    if args.worker == "vllm":
        result = run_vllm(args)
    elif args.worker == "transformers":
        result = run_transformers(args)
    else:
        result = run_train(args, args.worker.removeprefix("train-"))
    print("RESULT " + json.dumps(result), flush=True)


# --- driver -------------------------------------------------------------------------------------------


def _spawn(name: str, argv: list[str], timeout: float) -> tuple[dict[str, Any] | None, str]:
    cmd = [sys.executable, __file__, "--worker", name, *argv]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT "):])), ""
    tail = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()][-1:] or ["no output"]
    return None, f"failed (exit {proc.returncode}): ...{tail[0][-240:]}"


def _missing_train_deps() -> str:
    for module in ("pydantic", "yaml", "regex", "rewardkit.trainers.gdpo"):
        try:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install -e '.[train]')"
        except ImportError as exc:  # a parent package is missing
            return f"{module} cannot be imported: {exc}"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(ROOT / "models" / "gpu-0.5b"),
                        help="where the model is built (reused when it exists)")
    parser.add_argument("--prompts", type=int, default=16, help="prompts per batch")
    parser.add_argument("--group", type=int, default=8, help="completions per prompt")
    parser.add_argument("--prompt-tokens", type=int, default=128, help="tokens per prompt")
    parser.add_argument("--max-tokens", type=int, default=256, help="new tokens per completion")
    parser.add_argument("--steps", type=int, default=3, help="measured trainer steps (after one warm-up)")
    parser.add_argument("--vllm-memory", type=float, default=0.4, help="vLLM gpu_memory_utilization")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per measurement")
    parser.add_argument("--only", default="vllm,transformers,train",
                        help="comma-separated subset of: vllm, transformers, train")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0

    try:
        import torch
    except ImportError:
        print("torch is not installed: this bench needs torch with CUDA (pip install torch).")
        return 2
    if not torch.cuda.is_available():
        print(f"CUDA is not available (torch {torch.__version__}): this bench needs an NVIDIA GPU; "
              "nothing measured. The CPU comparison is bench/train_step.py.")
        return 2
    has_vllm = importlib.util.find_spec("vllm") is not None
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; "
          f"vLLM {'installed' if has_vllm else 'NOT installed'}")

    model_dir = Path(args.model_dir)
    if not (model_dir / "config.json").exists():
        t0 = time.perf_counter()
        build_model(model_dir)
        print(f"built {model_dir} in {time.perf_counter() - t0:.0f} s")
    info = json.loads((model_dir / "bench_info.json").read_text()) if (model_dir / "bench_info.json").exists() else {}
    print(f"model: Qwen2-0.5B dimensions (Llama config), random bf16 weights, {info.get('parameters', 0) / 1e6:.0f}M parameters; "
          f"{args.prompts} prompts x {args.group} completions, {args.prompt_tokens} prompt tokens, "
          f"{args.max_tokens} new tokens")

    argv = ["--model-dir", str(model_dir), "--prompts", str(args.prompts), "--group", str(args.group),
            "--prompt-tokens", str(args.prompt_tokens), "--max-tokens", str(args.max_tokens),
            "--steps", str(args.steps), "--vllm-memory", str(args.vllm_memory)]
    only = set(args.only.split(","))
    lines = ["| what | engine | wall s | new tokens | tokens/s | generate s | score s | update s | peak GPU GB |",
             "|---|---|---|---|---|---|---|---|---|"]

    def show(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    for engine in ("vllm", "transformers"):
        if engine not in only:
            continue
        if engine == "vllm" and not has_vllm:
            show("| rollout | vLLM | skipped: vllm is not installed (pip install vllm) | | | | | | |")
            continue
        result, why = _spawn(engine, argv, args.timeout)
        if result is None:
            show(f"| rollout | {engine} | {why} | | | | | | |")
            continue
        rate = result["tokens"] / result["seconds"]
        peak = f"{result['peak_gb']:.1f}" if "peak_gb" in result else "n/a (preallocates)"
        show(f"| rollout | {engine} {result['version']} | {result['seconds']:.2f} | {result['tokens']} | "
             f"{rate:,.0f} | | | | {peak} |")

    if "train" in only:
        missing = _missing_train_deps()
        for backend in ("transformers", "vllm"):
            label = f"rewardkit step ({backend} rollouts)"
            if missing:
                show(f"| train step | {backend} | skipped: {missing} | | | | | | |")
                continue
            if backend == "vllm" and not has_vllm:
                show(f"| train step | {backend} | skipped: vllm is not installed | | | | | | |")
                continue
            result, why = _spawn(f"train-{backend}", argv, args.timeout)
            if result is None:
                show(f"| train step | {label} | {why} | | | | | | |")
                continue
            tokens = result["len/mean"] * args.prompts * args.group
            show(f"| train step | {label} | {result['time/step']:.2f} | {tokens:.0f} | "
                 f"{tokens / result['time/generate']:,.0f} (generate) | {result['time/generate']:.2f} | "
                 f"{result['time/score']:.2f} | {result['time/update']:.2f} | {result['peak_gb']:.1f} |")

    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
