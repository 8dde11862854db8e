"""Coalescing: samples of concurrent requests scored in one `spec.score` call.

NeMo-RL calls `/verify` once per rollout and OpenRLHF's executor sends one query per
`/get_reward`, so a server sees many one-sample requests at once. Scored one by one, each pays a
thread hop and a verifier call of its own (bench/RESULTS.md, "Serve"); here `threads` scoring
threads each take, from one FIFO queue, every waiting part that fits in `chunk_size` samples and
score them together (a request larger than `chunk_size` is queued as several parts). Results
are per sample, so coalescing changes no number: gates, verifiers and reasons are per sample,
and advantages are computed per request afterwards.

A part whose request was cancelled (timeout, client gone) is dropped when a thread reaches it;
a part already being scored finishes within its verifiers' own time limits."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from rewardkit.scoring import Cell


class Cancelled(Exception):
    """The part's request timed out or its client left before the part was scored."""


@dataclass
class Part:
    samples: Sequence[dict[str, Any]]
    cancel: threading.Event
    future: Future[list[list[Cell]]] = field(default_factory=Future)


class Batcher:
    """`submit(samples, cancel)` -> one Future per part; `score_batch(samples)` does the work."""

    def __init__(self, score_batch: Callable[[list[dict[str, Any]]], list[list[Cell]]], *, threads: int,
                 chunk_size: int) -> None:
        self.score_batch = score_batch
        self.chunk_size = chunk_size
        self._queue: deque[Part] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self.batches = 0  # scoring calls made (for tests and the bench)
        self._threads = [threading.Thread(target=self._work, name=f"rewardkit-score-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, samples: Sequence[dict[str, Any]], cancel: threading.Event) -> list[Part]:
        parts = [Part(samples[i:i + self.chunk_size], cancel) for i in range(0, len(samples), self.chunk_size)]
        with self._ready:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.extend(parts)
            self._ready.notify(len(parts))
        return parts

    def _take(self) -> list[Part] | None:
        """Wait for work; then every queued part that fits, oldest first (cancelled ones dropped)."""
        with self._ready:
            while not self._queue and not self._closed:
                self._ready.wait()
            if not self._queue:
                return None
            taken: list[Part] = []
            size = 0
            while self._queue and (not taken or size + len(self._queue[0].samples) <= self.chunk_size):
                part = self._queue.popleft()
                if part.cancel.is_set():
                    part.future.set_exception(Cancelled())
                    continue
                taken.append(part)
                size += len(part.samples)
            return taken

    def _work(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            if not taken:
                continue
            self.batches += 1
            try:
                rows = self.score_batch([s for part in taken for s in part.samples])
            except BaseException as exc:  # noqa: BLE001 - every waiting request hears of it
                for part in taken:
                    part.future.set_exception(exc)
                continue
            start = 0
            for part in taken:
                part.future.set_result(rows[start:start + len(part.samples)])
                start += len(part.samples)

    def close(self) -> None:
        """Drop what is still queued, let running batches finish, stop the threads."""
        with self._ready:
            self._closed = True
            while self._queue:
                self._queue.popleft().future.set_exception(Cancelled())
            self._ready.notify_all()
        for thread in self._threads:
            thread.join()
