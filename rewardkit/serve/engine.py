"""The server's scoring engine: one loaded spec scored off the event loop, under the sample
budget, with a deadline and cancellation.

Scoring is blocking work (verifiers wait on sandboxes and worker pools), so it runs on scoring
threads of our own (`batcher`, which also coalesces concurrent requests) rather than in plain
`def` endpoints: an endpoint has to keep waiting on the event loop to notice its deadline or a
client that went away, and stop the work. Work stops at the next part (`chunk_size` samples); a
part already running ends within its verifiers' own time limits. Samples stay counted against
the budget until their parts are done, so a timed-out request's leftover work still holds back
new admissions."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rewardkit.scoring import Cell, ScoreTable
from rewardkit.serve.admission import SampleBudget
from rewardkit.serve.batcher import Batcher, Cancelled
from rewardkit.serve.errors import RequestProblem
from rewardkit.verifier import ScoringContext

if TYPE_CHECKING:
    from starlette.requests import Request

    from rewardkit.serve.metrics import Metrics
    from rewardkit.serve.settings import ServeSettings
    from rewardkit.spec import Spec


class Engine:
    """Owns the spec for the server's life: warm-up, scoring, close."""

    def __init__(self, spec: Spec, settings: ServeSettings, metrics: Metrics, tokenizer: Any = None) -> None:
        self.spec = spec
        self.settings = settings
        self.metrics = metrics
        self.tokenizer = tokenizer
        self.budget = SampleBudget(settings.sample_budget)
        self.ready = threading.Event()
        self.warmup_error: str | None = None
        self._batcher = Batcher(self._score_batch, threads=settings.score_threads, chunk_size=settings.chunk_size)

    def warm_up(self) -> None:
        """Start every verifier's pools and sandboxes; the server reports ready only after this."""
        try:
            self.spec.score([])  # builds the spec's own gate-level thread pool before requests race to
            ctx = ScoringContext(tokenizer=self.tokenizer)
            for reward in self.spec.rewards:
                try:
                    reward.verifier.warm_up(ctx)
                except Exception as exc:  # reported, and the server stops
                    raise RuntimeError(f"reward {reward.name!r}: {exc}") from exc
        except Exception as exc:
            self.warmup_error = f"warm-up failed: {exc}"
            raise
        self.ready.set()

    async def score(self, samples: Sequence[dict[str, Any]], endpoint: str,
                    request: Request | None = None) -> ScoreTable:
        """Score `samples` in the pool; 503 beyond the budget, 504 past the deadline."""
        if not self.ready.is_set():
            raise RequestProblem(503, self.warmup_error or "server is warming up its verifiers; retry shortly",
                                 headers={"Retry-After": "2"})
        n = len(samples)
        self.budget.acquire(n)
        started = time.monotonic()
        cancel = threading.Event()
        self.metrics.in_flight.inc(n)
        try:
            parts = self._batcher.submit(list(samples), cancel)
        except RuntimeError:
            self.budget.release(n)
            self.metrics.in_flight.dec(n)
            raise RequestProblem(503, "server is shutting down; send this request to another replica",
                                 headers={"Retry-After": "5"}) from None
        pending = [len(parts)]
        lock = threading.Lock()

        def part_done(_: object) -> None:  # the budget is given back when the last part is done
            with lock:
                pending[0] -= 1
                last = pending[0] == 0
            if last:
                self.budget.release(n)
                self.metrics.in_flight.dec(n)
                self.budget.observe(time.monotonic() - started)

        for part in parts:
            part.future.add_done_callback(part_done)
        waiters = [asyncio.wrap_future(part.future) for part in parts]
        deadline = started + self.settings.request_timeout_s
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RequestProblem(504, f"scoring {n} samples took over the request timeout of "
                                         f"{self.settings.request_timeout_s:g} s; send smaller batches or "
                                         "raise --request-timeout")
                _, running = await asyncio.wait(waiters, timeout=min(0.25, left))
                if not running:
                    rows = [row for waiter in waiters for row in _result(waiter)]
                    table = ScoreTable(self.spec.reward_names, rows, [r.pass_at for r in self.spec.rewards])
                    self.metrics.count_table(endpoint, table)
                    return table
                if request is not None and await request.is_disconnected():
                    raise RequestProblem(499, "client disconnected; scoring stopped")
        finally:
            if not all(part.future.done() for part in parts):
                cancel.set()

    def _score_batch(self, samples: list[dict[str, Any]]) -> list[list[Cell]]:
        self.metrics.batches.inc()
        return self.spec.score(samples, ScoringContext(tokenizer=self.tokenizer)).cells

    def close(self) -> None:
        """Let running work finish (uvicorn has already waited out the grace period), then free
        the spec's pools, sandboxes and containers."""
        self._batcher.close()
        self.spec.close()


def _result(waiter: asyncio.Future[list[list[Cell]]]) -> list[list[Cell]]:
    try:
        return waiter.result()
    except Cancelled:
        raise RequestProblem(503, "server is shutting down; send this request to another replica",
                             headers={"Retry-After": "5"}) from None
    except Exception as exc:
        raise RequestProblem(500, f"scoring failed: {type(exc).__name__}: {exc}") from exc
