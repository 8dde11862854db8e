"""Time rewardkit's advantages (numpy, torch CPU, CUDA when present) next to TRL's own code.

TRL's column runs the advantage block of the installed `GRPOTrainer._generate_and_score_completions`
(taken out with `ast`, as tests/test_advantages_trl.py does) on the same float32 tensor.
Usage: .venv/bin/python bench/bench_advantages.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_advantages_trl import TRL_SETTINGS, _trl_advantages

from rewardkit.advantages import compute_advantages, method_names

SHAPES = [(16, 8, 3), (128, 16, 3), (1024, 16, 4)]


def per_call_ms(fn: Callable[..., Any], *args: Any, sync: bool = False, **kwargs: Any) -> float:
    """Mean wall time of one `fn(*args, **kwargs)`, over about half a second of calls."""
    fn(*args, **kwargs)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.5:
        fn(*args, **kwargs)
        calls += 1
    if sync:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1e3


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, numpy {np.__version__}, 1 CPU thread, cuda={cuda}")
    header = "| method | shape [G,N,K] | numpy f64 ms | torch cpu f32 ms | TRL block cpu f32 ms |"
    print(header + (" torch cuda f32 ms |" if cuda else ""))
    print("|---" * (6 if cuda else 5) + "|")
    for g, n, k in SHAPES:
        values = rng.integers(0, 3, size=(g, n, k)).astype(np.float64)
        values[rng.random(values.shape) < 0.1] = np.nan
        t32 = torch.from_numpy(values).float()
        weights = [1.0] * k
        for method in method_names():
            row = [
                per_call_ms(compute_advantages, values, weights, method=method),
                per_call_ms(compute_advantages, t32, weights, method=method),
                per_call_ms(_trl_advantages, t32, weights, *TRL_SETTINGS[method]),
            ]
            if cuda:
                row.append(per_call_ms(compute_advantages, t32.cuda(), weights, method=method, sync=True))
            cells = " | ".join(f"{v:.3f}" for v in row)
            print(f"| {method} | {g}x{n}x{k} | {cells} |")


if __name__ == "__main__":
    main()
