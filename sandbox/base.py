"""The one interface every backend implements: run a program under limits, say what stopped it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "runtime_error", "timeout", "memory", "output_limit", "killed", "sandbox_error"]


@dataclass(frozen=True)
class Limits:
    """Per-run limits. `wall_s` is the hard deadline; the others are enforced as the backend can."""

    wall_s: float = 10.0
    cpu_s: float = 10.0
    memory_mb: int = 512
    pids: int = 64
    output_bytes: int = 1 << 20
    file_size_mb: int = 16
    open_files: int = 256


@dataclass(frozen=True)
class Program:
    """What to run: files written into an empty work dir, a command (argv; `python3` means the
    backend's Python interpreter), and stdin."""

    command: tuple[str, ...] = ("python3", "main.py")
    files: dict[str, str] = field(default_factory=dict)
    stdin: str = ""
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class RunResult:
    status: Status
    exit_code: int | None
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float = 0.0
    limit: str | None = None  # which limit stopped the run: wall, cpu, memory, pids, output, ...

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Sandbox(ABC):
    """A backend. `run` must never execute the program in the caller's process."""

    name: str = ""

    @abstractmethod
    def run(self, program: Program) -> RunResult: ...

    def run_batch(self, programs: Sequence[Program], workers: int | None = None) -> list[RunResult]:
        """Run many programs concurrently; order of results matches `programs`."""
        if not programs:
            return []
        with ThreadPoolExecutor(max_workers=workers or self.default_workers()) as pool:
            return list(pool.map(self.run, programs))

    def default_workers(self) -> int:
        import os

        return max(1, os.cpu_count() or 1)

    def isolation(self) -> str:
        """One line: what this backend isolates and what it does not stop."""
        return ""

    def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release containers, pools, temp dirs."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
