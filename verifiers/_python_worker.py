"""The worker process that runs a user's `python` verifier function
(`python -m rewardkit.verifiers._python_worker`), so a function that hangs or crashes on one
sample can be killed at its deadline without touching the caller (see `_worker_pool.py`).

Stdlib only, so a worker starts in tens of milliseconds. The function and its keyword arguments
come in the environment (REWARDKIT_PY_FUNCTION, REWARDKIT_PY_KWARGS). Protocol: `{"ready": true}`
once the function is imported, then lines holding a list of tasks `{"i", "s": sample}`, answered
one line per task, in order: `{"i", "v": value, "r": reason}` or `{"i", "e": error}`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any


def load(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    func = getattr(importlib.import_module(module_name), attr)
    if not callable(func):
        raise TypeError(f"{path} is not callable")
    return func


def run_task(func: Callable[..., Any], kwargs: dict[str, Any], path: str, task: dict[str, Any]) -> dict[str, Any]:
    try:
        result = func(task["s"], **kwargs)
        if hasattr(result, "value") and hasattr(result, "reason"):  # a rewardkit.Score
            error = getattr(result, "error", None)
            if error is not None:
                return {"i": task["i"], "e": str(error)}
            return {"i": task["i"], "v": float(result.value), "r": str(result.reason)}
        if isinstance(result, tuple) and len(result) == 2:
            return {"i": task["i"], "v": float(result[0]), "r": str(result[1])}
        return {"i": task["i"], "v": float(result), "r": f"{path} returned {result!r}"[:300]}
    except Exception as exc:  # noqa: BLE001 - one sample's failure is that sample's error
        return {"i": task["i"], "e": f"{type(exc).__name__}: {exc}"}


def main() -> None:
    # The protocol owns the original stdout; whatever the function prints goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="surrogatepass")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    path = os.environ.get("REWARDKIT_PY_FUNCTION", "")
    try:
        func = load(path)
        kwargs = json.loads(os.environ.get("REWARDKIT_PY_KWARGS", "{}"))
    except BaseException as exc:  # noqa: BLE001 - tell the parent why we cannot start
        proto.write(json.dumps({"ready": False, "e": f"{type(exc).__name__}: {exc}"}) + "\n")
        return
    proto.write('{"ready": true}\n')
    for line in sys.stdin:
        for task in json.loads(line):
            proto.write(json.dumps(run_task(func, kwargs, path, task)) + "\n")


if __name__ == "__main__":
    main()
