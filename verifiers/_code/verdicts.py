"""Judged test runs kept across batches and training steps: identical programs are run once.

GRPO groups hold identical completions, more of them late in training, and the same program
comes back step after step. A run is keyed by (backend, program, what the sandbox sees of the
test, limits), the key `runs._run_key` builds, and the judged `Outcome` is kept in a bounded
LRU (entries and bytes of kept output). Only outcomes that do not depend on the machine's load or
luck are kept: a program that ran to its end (passed, failed, raised) or hit its memory or output
cap. Timeouts, kills, sandbox and harness errors are always run again, so the cache never turns a
transient verdict into a permanent one (`tests/test_code_verdict_cache.py` compares cached and
uncached scores on the bundled samples; `bench/code_cache.py` measures the saving).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rewardkit.verifiers._code.runs import Outcome

CACHEABLE = frozenset({"ok", "runtime_error", "memory", "output_limit"})


def _size(outcome: Outcome) -> int:
    return 200 + len(outcome.stdout) + len(outcome.detail) + len(repr(outcome.result))


class VerdictCache:
    """A thread-safe LRU of judged runs, bounded by `max_entries` and `max_bytes`."""

    def __init__(self, max_entries: int = 50_000, max_bytes: int = 64 << 20) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict[tuple[str, str], tuple[Outcome, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple[str, str]) -> Outcome | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: tuple[str, str], outcome: Outcome) -> None:
        if outcome.status not in CACHEABLE or outcome.error is not None:
            return
        size = _size(outcome)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (outcome, size)
            self._bytes += size
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes


VERDICTS = VerdictCache()  # one per process: shared by every code reward, every batch, every step
