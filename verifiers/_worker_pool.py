"""A pool of long-lived worker processes with a hard deadline per task.

Why not `multiprocessing` or `concurrent.futures`: neither can kill one stuck task and carry on,
and both re-import the caller's `__main__` under `spawn`. Here each worker is a plain subprocess
(`python -m <module>`) speaking JSON lines over its stdin/stdout; the parent multiplexes them
with `selectors`, so it never blocks on one worker and can kill and replace any worker whose
current task runs past its deadline. The parent uses no signals, so `run` works from any thread.

Tasks go out in chunks of consecutive tasks (the caller groups tasks that share work, e.g. one
gold answer per GRPO group); each worker holds at most `depth` chunks so it never waits for work,
and results stream back one per task, which tells the parent exactly which task is running.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Task = dict[str, Any]
Result = dict[str, Any]


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    ready: bool = False
    started: float = field(default_factory=time.monotonic)
    rbuf: bytes = b""
    wbuf: bytearray = field(default_factory=bytearray)
    inflight: deque[tuple[int, bool]] = field(default_factory=deque)  # (task index, ends a chunk), in run order
    chunks: int = 0
    head_since: float = 0.0

    def fds(self) -> tuple[int, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        return self.proc.stdin.fileno(), self.proc.stdout.fileno()


class WorkerPool:
    """Run tasks on up to `max_workers` subprocesses running `python -m module`.

    `deadline_s(task)` is the hard wall-clock budget of one task, counted from when the worker
    starts it; past it the worker is killed, the task gets `on_kill(task, why)` as its result,
    and the tasks queued behind it are sent again to a fresh worker.
    """

    def __init__(self, module: str, max_workers: int, deadline_s: Callable[[Task], float],
                 on_kill: Callable[[Task, str], Result], env: dict[str, str] | None = None,
                 depth: int = 2, startup_timeout_s: float = 120.0) -> None:
        self.module = module
        self.max_workers = max(1, max_workers)
        self.deadline_s = deadline_s
        self.on_kill = on_kill
        self.env = {**os.environ, **(env or {})}
        self.depth = depth
        self.startup_timeout_s = startup_timeout_s
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.kills = 0  # workers killed at a deadline (for tests and logs)

    # --- worker lifecycle -------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        proc = subprocess.Popen(
            [sys.executable, "-m", self.module], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=self.env, close_fds=True, start_new_session=True)
        w = _Worker(proc)
        for fd in w.fds():
            os.set_blocking(fd, False)
        self._workers.append(w)
        return w

    def _kill(self, w: _Worker) -> None:
        if w in self._workers:
            self._workers.remove(w)
        try:
            w.proc.kill()
        except OSError:
            pass
        for stream in (w.proc.stdin, w.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        w.proc.wait()

    def close(self) -> None:
        """Stop every worker (closing stdin lets an idle worker exit on its own)."""
        with self._lock:
            self._closed = True
            for w in list(self._workers):
                self._kill(w)

    def size(self) -> int:
        return len(self._workers)

    # --- running ----------------------------------------------------------------------------------
    def run(self, tasks: Sequence[Task], chunks: Sequence[Sequence[int]], workers: int) -> list[Result]:
        """Results for `tasks`, in order. `chunks` partitions the task indices into units sent together;
        up to `workers` processes are used (more already-running ones are used too)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool is closed")
            return _Run(self, tasks, chunks, min(max(1, workers), self.max_workers)).go()


class _Run:
    """One call of WorkerPool.run: an event loop over the pool's workers."""

    def __init__(self, pool: WorkerPool, tasks: Sequence[Task], chunks: Sequence[Sequence[int]],
                 workers: int) -> None:
        self.pool, self.tasks, self.want = pool, tasks, workers
        self.queue: deque[list[int]] = deque(list(c) for c in chunks if c)
        self.results: list[Result | None] = [None] * len(tasks)
        self.left = len(tasks)
        self.sel = selectors.DefaultSelector()
        self.start_failures = 0
        self.start_error = ""

    def go(self) -> list[Result]:
        try:
            for w in self.pool._workers:
                self._register(w)
            while self.left:
                self._prune()
                self._top_up()
                self._feed()
                self._wait()
                self._enforce_deadlines()
        finally:
            self.sel.close()
            for w in list(self.pool._workers):  # only after an exception: their queues are stale
                if w.inflight:
                    self.pool._kill(w)
        return [r if r is not None else self.pool.on_kill(self.tasks[i], "lost") for i, r in enumerate(self.results)]

    def _register(self, w: _Worker) -> None:
        _, out_fd = w.fds()
        self.sel.register(out_fd, selectors.EVENT_READ, (w, "r"))

    def _prune(self) -> None:
        """Drop workers that died while idle (e.g. killed from outside) before giving them work."""
        for w in list(self.pool._workers):
            if not w.inflight and w.proc.poll() is not None:
                self._lost(w, "worker exited while idle")

    def _top_up(self) -> None:
        """Start workers up to the number wanted while there is queued work."""
        if self.start_failures >= 3:
            for chunk in self.queue:
                for i in chunk:
                    self._finish(i, self.pool.on_kill(self.tasks[i], f"worker failed to start: {self.start_error}"))
            self.queue.clear()
            return
        while self.queue and len(self.pool._workers) < self.want:
            self._register(self.pool._spawn())

    def _feed(self) -> None:
        now = time.monotonic()
        for w in self.pool._workers:
            while w.ready and self.queue and w.chunks < self.pool.depth:
                chunk = self.queue.popleft()
                if not w.inflight:
                    w.head_since = now
                w.inflight.extend((i, k == len(chunk) - 1) for k, i in enumerate(chunk))
                w.chunks += 1
                w.wbuf += (json.dumps([self.tasks[i] for i in chunk]) + "\n").encode()
            self._flush(w)

    def _flush(self, w: _Worker) -> None:
        in_fd, out_fd = w.fds()
        if w.wbuf:
            try:
                n = os.write(in_fd, w.wbuf)
                del w.wbuf[:n]
            except BlockingIOError:
                pass
            except OSError:  # worker died; its EOF on stdout is handled by the reader
                w.wbuf.clear()
        want = selectors.EVENT_WRITE if w.wbuf else 0
        key = self.sel.get_key(in_fd) if in_fd in self.sel.get_map() else None
        if want and key is None:
            self.sel.register(in_fd, selectors.EVENT_WRITE, (w, "w"))
        elif not want and key is not None:
            self.sel.unregister(in_fd)

    def _next_deadline(self) -> float:
        deadlines = []
        for w in self.pool._workers:
            if not w.ready:
                deadlines.append(w.started + self.pool.startup_timeout_s)
            elif w.inflight:
                deadlines.append(w.head_since + self.pool.deadline_s(self.tasks[w.inflight[0][0]]))
        return min(deadlines, default=time.monotonic() + 1.0)

    def _wait(self) -> None:
        timeout = max(0.0, self._next_deadline() - time.monotonic())
        for key, _ in self.sel.select(timeout):
            w, kind = key.data
            if w not in self.pool._workers:
                continue
            if kind == "w":
                self._flush(w)
            else:
                self._read(w)

    def _read(self, w: _Worker) -> None:
        _, out_fd = w.fds()
        try:
            data = os.read(out_fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost(w, "worker exited (crash or memory limit)")
            return
        w.rbuf += data
        *lines, w.rbuf = w.rbuf.split(b"\n")
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                msg = None
            if not isinstance(msg, dict):
                self._lost(w, "worker wrote something that is not a protocol message")
                return
            if "ready" in msg:
                if msg["ready"]:
                    w.ready = True
                    self.start_failures = 0
                else:
                    self.start_error = str(msg.get("e", ""))
                continue
            if not w.inflight or msg.get("i") != self.tasks[w.inflight[0][0]].get("i"):
                self._lost(w, "worker protocol out of step")
                return
            i, ends_chunk = w.inflight.popleft()
            self._finish(i, msg)
            w.head_since = time.monotonic()
            w.chunks -= ends_chunk

    def _finish(self, i: int, result: Result) -> None:
        if self.results[i] is None:
            self.results[i] = result
            self.left -= 1

    def _lost(self, w: _Worker, why: str) -> None:
        """A worker died or was killed: its current task fails, the tasks behind it go back to the queue."""
        if not w.ready:
            self.start_failures += 1
            self.start_error = self.start_error or why
        if w.inflight:
            head, _ = w.inflight.popleft()
            self._finish(head, self.pool.on_kill(self.tasks[head], why))
            if w.inflight:
                self.queue.appendleft([i for i, _ in w.inflight])
        for fd in w.fds():
            if fd in self.sel.get_map():
                self.sel.unregister(fd)
        self.pool._kill(w)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for w in list(self.pool._workers):
            if not w.ready and now > w.started + self.pool.startup_timeout_s:
                self._lost(w, "worker did not start in time")
            elif w.ready and w.inflight:
                budget = self.pool.deadline_s(self.tasks[w.inflight[0][0]])
                if now > w.head_since + budget:
                    self.pool.kills += 1
                    self._lost(w, f"killed after {budget:.1f} s")
