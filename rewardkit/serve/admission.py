"""Backpressure: at most `budget` samples are in flight; a request that would go over it is
refused at once with 503 and `Retry-After`, so a burst never becomes an unbounded queue (and
unbounded memory) inside the server. The trainer's client retries; see `rewardkit.client`."""

from __future__ import annotations

import math
import threading

from rewardkit.serve.errors import RequestProblem


class SampleBudget:
    """A counter of samples in flight, shared by every endpoint of one server process."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.in_flight = 0
        self.rejected = 0
        self._lock = threading.Lock()
        self._recent_s = 1.0  # a smoothed request duration, for Retry-After

    def acquire(self, n: int) -> None:
        """Count `n` more samples in flight, or raise 503 (a batch over the whole budget: 422)."""
        if n > self.budget:
            raise RequestProblem(422, f"batch of {n} samples is over the server's sample budget of "
                                 f"{self.budget}; split it into batches of at most {self.budget}", ["samples"])
        with self._lock:
            if self.in_flight + n > self.budget:
                self.rejected += 1
                retry = max(1, math.ceil(self._recent_s))
                raise RequestProblem(
                    503, f"server busy: {self.in_flight} of {self.budget} samples in flight, {n} more "
                    f"requested; retry after {retry} s", headers={"Retry-After": str(retry)})
            self.in_flight += n

    def release(self, n: int) -> None:
        with self._lock:
            self.in_flight -= n

    def observe(self, seconds: float) -> None:
        """Feed a finished request's duration into the Retry-After estimate."""
        self._recent_s = 0.8 * self._recent_s + 0.2 * seconds
