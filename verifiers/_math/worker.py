"""The math-verify judge, and the worker process that runs it (`python -m rewardkit.verifiers._math.worker`).

math-verify's own timeout uses `signal.alarm`, which only works in the main thread and has
one-second resolution. Each worker is a separate process whose main thread does nothing but
judge, so here a per-pair `setitimer` alarm (sub-second) always works, whatever thread the
trainer scores from. The alarm raises a BaseException so that math-verify's `except Exception`
blocks cannot swallow it. Code stuck inside C (where Python signal handlers cannot run) is
caught by the parent, which kills the worker at a hard deadline (see `_worker_pool.py`).

Protocol: one JSON line per message. The worker prints `{"ready": true}` once imports are done,
then reads lines holding a list of tasks `{"i", "g": [gold inputs], "p": answer input, "t": s}`
and writes one result line per task, in order: `{"i", "ok", "g", "p", "e", "to"}`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections import OrderedDict
from typing import Any

_GOLD_CACHE_SIZE = 4096


class PairTimeout(BaseException):
    """Raised by the alarm; a BaseException so library `except Exception` blocks let it through."""


class _Alarm:
    """A re-arming interval timer: if a library swallows the first PairTimeout, it fires again."""

    def __init__(self) -> None:
        self.armed = False
        signal.signal(signal.SIGALRM, self._fire)

    def _fire(self, signum: int, frame: Any) -> None:
        if self.armed:
            raise PairTimeout

    def start(self, seconds: float) -> None:
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)

    def stop(self) -> None:
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0, 0)


class Judge:
    """Parse gold and answer with math-verify and compare them; gold parses are cached (a GRPO group
    shares one gold answer)."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        import math_verify

        logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # its timeout warnings echo the input
        self._mv = math_verify
        self.options = {"float_rounding": 6, "numeric_precision": 15, "strict": True, **(options or {})}
        self._gold: OrderedDict[str, list[Any]] = OrderedDict()

    def warm_up(self) -> None:
        """Pay sympy's first-use costs (lazy imports, caches) before taking tasks, so that they do
        not eat into the first real pair's time limit."""
        for gold, answer in (("\\boxed{\\frac{1}{2}}", "\\boxed{0.5}"), ("\\boxed{(0,1]}", "\\boxed{[0,1]}"),
                             ("\\boxed{\\{1,2\\}}", "\\boxed{\\{2,1\\}}"), ("\\boxed{(x+1)^2}", "x^2+2x+1"),
                             ("\\boxed{50\\%}", "\\boxed{\\sqrt{2}}")):
            self.judge([gold], answer)
        self._gold.clear()

    def _parse(self, text: str) -> list[Any]:
        return list(self._mv.parse(text, parsing_timeout=None))

    def _gold_parse(self, text: str) -> list[Any]:
        hit = self._gold.get(text)
        if hit is not None:
            self._gold.move_to_end(text)
            return hit
        parsed = self._parse(text)
        self._gold[text] = parsed
        if len(self._gold) > _GOLD_CACHE_SIZE:
            self._gold.popitem(last=False)
        return parsed

    def judge(self, golds: list[str], answer: str) -> dict[str, Any]:
        """{"ok": bool|None, "g": gold as parsed, "p": answer as parsed, "e": error or None}."""
        gold_parsed: list[Any] = []
        for g in golds:
            gold_parsed.extend(self._gold_parse(g))
        if not gold_parsed:
            return {"ok": None, "g": "", "p": "", "e": "gold answer could not be parsed by math-verify"}
        pred = self._parse(answer)
        shown_gold = _shown(gold_parsed)
        if not pred:
            return {"ok": False, "g": shown_gold, "p": "", "e": None}
        ok = self._mv.verify(gold_parsed, pred, timeout_seconds=None, **self.options)
        if not ok:
            ok = self._percent_as_number(gold_parsed, pred)
        return {"ok": bool(ok), "g": shown_gold, "p": _shown(pred), "e": None}

    def _percent_as_number(self, gold: list[Any], pred: list[Any]) -> bool:
        """`37.5\\%` vs `37.5`: math-verify accepts a dropped or added percent sign only for integers
        (9% = 9); datasets write decimals the same way, so compare the numbers without the sign."""
        from math_verify.grader import get_pct_val

        g2, p2 = [get_pct_val(x, x) for x in gold], [get_pct_val(x, x) for x in pred]
        if all(a is b for a, b in zip(g2 + p2, gold + pred, strict=True)):
            return False  # no percentage on either side
        return bool(self._mv.verify(g2, p2, timeout_seconds=None, **self.options))


def _shown(parsed: list[Any]) -> str:
    """The string math-verify extracted (its last item); never str() a sympy object, which can hang."""
    for item in reversed(parsed):
        if isinstance(item, str):
            return item[:200]
    return ""


def run_task(judge: Judge, alarm: _Alarm, task: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any]
    try:
        alarm.start(float(task.get("t", 5.0)))
        try:
            out = judge.judge(task["g"], task["p"])
        finally:
            alarm.stop()
        out["to"] = False
    except PairTimeout:
        out = {"ok": False, "g": "", "p": "", "e": None, "to": True}
    except RecursionError:
        out = {"ok": False, "g": "", "p": "", "e": "expression nested too deeply to parse", "to": False}
    except MemoryError:
        out = {"ok": False, "g": "", "p": "", "e": "worker memory limit reached", "to": False}
    except Exception as exc:  # noqa: BLE001 - reported per task
        out = {"ok": None, "g": "", "p": "", "e": f"{type(exc).__name__}: {exc}"[:300], "to": False}
    out["i"] = task["i"]
    return out


def main() -> None:
    # The protocol owns the original stdout; anything a library prints goes to stderr instead.
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="surrogatepass")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    memory_mb = int(os.environ.get("REWARDKIT_MATH_MEMORY_MB", "0"))
    try:
        if memory_mb > 0:
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
        judge = Judge(json.loads(os.environ.get("REWARDKIT_MATH_OPTIONS", "{}")))
        judge.warm_up()
        alarm = _Alarm()
    except BaseException as exc:  # noqa: BLE001 - tell the parent why we cannot start
        proto.write(json.dumps({"ready": False, "e": f"{type(exc).__name__}: {exc}"}) + "\n")
        return
    proto.write('{"ready": true}\n')
    for line in sys.stdin:
        for task in json.loads(line):
            proto.write(json.dumps(run_task(judge, alarm, task)) + "\n")


if __name__ == "__main__":
    main()
