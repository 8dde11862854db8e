"""Every reward is time-bounded: a verifier call that runs past its reward's `timeout_s` makes its
cells errors with the reason, and the run goes on.

A Python thread cannot be killed, so the call runs in a daemon thread of its own and the caller
stops waiting at the deadline. Stuck work cannot pile up: while a reward's timed-out call is
still running, later batches do not call that verifier again (their cells are errors saying so),
so each reward holds at most one stuck thread. Verifiers whose work can hang do it in killable
places (math_equivalence and `python` in worker processes, code in the sandbox) and end it
themselves well before this backstop; it is what bounds plugins and anything else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from rewardkit.verifier import Score

DEFAULT_TIMEOUT_S = 300.0


class TimeGuard:
    """Runs one reward's verifier calls with a deadline; remembers a call that overran it."""

    def __init__(self, reward: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.reward = reward
        self.timeout_s = timeout_s
        self._stuck: threading.Thread | None = None
        self._lock = threading.Lock()
        self.timeouts = 0  # calls that overran (for tests and logs)

    def call(self, fn: Callable[[], Sequence[Any]], size: int) -> list[Any]:
        """`fn()`'s result, or `size` error scores when it overran `timeout_s` or an earlier call
        of this reward still runs. Exceptions from `fn` propagate."""
        with self._lock:
            stuck = self._stuck
            if stuck is not None and stuck.is_alive():
                return [Score.failed(f"not scored: this reward's previous call is still running past its "
                                     f"timeout_s of {self.timeout_s:g} s")] * size
            self._stuck = None
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = list(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                box["error"] = exc

        thread = threading.Thread(target=run, name=f"rewardkit-reward-{self.reward}", daemon=True)
        thread.start()
        thread.join(self.timeout_s)
        if thread.is_alive():
            with self._lock:
                self._stuck = thread
                self.timeouts += 1
            return [Score.failed(f"timed out: the verifier ran past the reward's timeout_s of "
                                 f"{self.timeout_s:g} s on this batch of {size}")] * size
        if "error" in box:
            raise box["error"]
        return list(box["result"])

    def stuck(self) -> bool:
        """Whether a call that overran its deadline is still running."""
        with self._lock:
            return self._stuck is not None and self._stuck.is_alive()
