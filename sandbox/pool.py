"""Warm pools: long-lived sandboxes, each with `runner.py` inside as PID 1, one run at a time each.

A run is one JSON line to a runner and one back, plus a fork inside the sandbox; for a
`python3 script.py` command the runner's fork runs the script itself (fork-server mode), so a
short test costs neither a sandbox start nor an interpreter start. The docker and bwrap backends
differ only in how a runner is started and talked to (`Worker`); queueing, requests, verdicts,
healing after a runner dies, and closing live here.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import queue
import select
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from rewardkit.errors import RunnerGone
from rewardkit.sandbox import uidpool
from rewardkit.sandbox.base import Program, RunResult, Sandbox
from rewardkit.sandbox.local import Watched, is_script, resolve_command, sandbox_error, verdict
from rewardkit.sandbox.process import base_env

LOG = logging.getLogger("rewardkit.sandbox")


class Worker(ABC):
    """One warm sandbox: send a request line, read a response line."""

    def __init__(self) -> None:
        self.out = bytearray()

    @abstractmethod
    def fileno(self) -> int: ...

    @abstractmethod
    def send(self, data: bytes) -> None: ...

    @abstractmethod
    def _recv(self) -> bytes | None:
        """Whatever runner output is readable now; b"" at end of stream, None for nothing yet."""

    @abstractmethod
    def destroy(self) -> None: ...

    def diagnostics(self) -> str:
        return ""

    def uid(self) -> int | None:
        """The host uid everything in this sandbox runs as (None when unknown)."""
        return None

    def own_pids(self) -> set[int]:
        """Host pids of the sandbox's own machinery (the runner, bwrap's monitor)."""
        return set()

    def read_line(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self.out:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("runner did not answer in time")
            ready, _, _ = select.select([self.fileno()], [], [], remaining)
            if not ready:
                continue
            chunk = self._recv()
            if chunk is None:
                continue
            if not chunk:
                diag = self.diagnostics()
                raise RunnerGone("runner exited" + (f": {diag[-500:]}" if diag else ""))
            self.out += chunk
        line, _, rest = bytes(self.out).partition(b"\n")
        self.out = bytearray(rest)
        return json.loads(line)

    def call(self, msg: dict[str, Any], deadline: float) -> dict[str, Any]:
        self.send(json.dumps(msg).encode() + b"\n")
        return self.read_line(deadline)


class PooledSandbox(Sandbox):
    """A fixed number of warm workers; `run` borrows one, a broken one is replaced."""

    python: str = "python3"
    memory_mb: int = 512
    pids: int = 64
    fork_server: bool = True

    def __init__(self, pool_size: int, env: dict[str, str] | None = None) -> None:
        self.pool_size = pool_size
        self.extra_env = dict(env or {})
        self._pool: queue.Queue[Worker] = queue.Queue()
        self._all: set[Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    def _fill(self) -> None:
        with ThreadPoolExecutor(max_workers=min(8, self.pool_size)) as ex:
            futures = [ex.submit(self._new_worker) for _ in range(self.pool_size)]
        try:
            for f in futures:
                self._pool.put(f.result())
        except BaseException:
            self.close()
            raise

    def _new_worker(self) -> Worker:
        w = self._start_worker()
        try:
            hello = w.read_line(time.monotonic() + 60)
            if not hello.get("ready"):
                raise RunnerGone(f"unexpected runner greeting {hello!r}")
        except BaseException:
            w.destroy()
            raise
        with self._lock:
            self._all.add(w)
        return w

    @abstractmethod
    def _start_worker(self) -> Worker:
        """Start one sandbox with the runner in it (the greeting is read by the caller)."""

    def default_workers(self) -> int:
        return self.pool_size

    def request(self, program: Program) -> dict[str, Any]:
        lim = program.limits
        cmd = resolve_command(program.command, self.python)
        inproc = self.fork_server and is_script(cmd, self.python, program.files)
        return {
            "files": program.files,
            "command": cmd,
            "inproc": inproc,
            "stdin": program.stdin,
            "env": base_env("/work", {**self.extra_env, "TMPDIR": "/tmp"}),
            "limits": {**asdict(lim), "memory_mb": min(lim.memory_mb, self.memory_mb),
                       "pids": min(lim.pids, self.pids)},
        }

    def run(self, program: Program) -> RunResult:
        t0 = time.monotonic()
        if self._closed:
            return sandbox_error("sandbox is closed", t0)
        lim = program.limits
        try:
            worker = self._pool.get(timeout=lim.wall_s + 120)
        except queue.Empty:
            return sandbox_error("no warm sandbox became free (pool broken?)", t0)
        healthy = False
        try:
            resp = worker.call(self.request(program), time.monotonic() + lim.wall_s + 15)
            healthy = True
        except (RunnerGone, OSError) as exc:
            return RunResult("killed", None, "", f"[sandbox] the runner died ({exc}); sandbox replaced",
                             time.monotonic() - t0)
        except TimeoutError:
            return RunResult("timeout", None, "", "[sandbox] runner unresponsive past the wall limit; "
                             "sandbox replaced", time.monotonic() - t0, limit="wall")
        except Exception as exc:  # noqa: BLE001 - one bad run must never sink the batch
            return sandbox_error(f"{type(exc).__name__}: {exc}", t0)
        finally:
            if healthy:
                self._pool.put(worker)
            else:
                self._replace(worker)
        if "error" in resp:
            return sandbox_error(str(resp["error"]), t0)
        w = Watched(base64.b64decode(resp["stdout"]), base64.b64decode(resp["stderr"]), int(resp["wait_status"]),
                    float(resp["cpu_s"]), float(resp["wall_s"]), resp["stopped_by"],
                    base64.b64decode(resp.get("status", "")))
        return verdict(w, lim)

    def _replace(self, worker: Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.destroy()
        if self._closed:
            return
        try:
            self._pool.put(self._new_worker())
        except Exception as exc:  # noqa: BLE001 - the pool shrinks by one; the others keep serving
            with self._lock:
                left = len(self._all)
            LOG.warning("%s sandbox: a broken warm sandbox could not be replaced (%s: %s); %d of %d left",
                        self.name or type(self).__name__, type(exc).__name__, exc, left, self.pool_size)

    def stray_processes(self) -> list[int]:
        """Host pids running as a pooled sandbox's uid that are not its machinery: processes that
        outlived their run. Only meaningful between runs (for tests and health checks)."""
        stray: list[int] = []
        with self._lock:
            workers = list(self._all)
        for w in workers:
            uid = w.uid()
            if uid is not None:
                stray += [p for p in uidpool.pids_of_uid(uid) if p not in w.own_pids()]
        return stray

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        threads = [threading.Thread(target=w.destroy, daemon=True) for w in workers]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        except RuntimeError:  # at interpreter exit new threads may be refused: go one by one
            for w in workers:
                w.destroy()
