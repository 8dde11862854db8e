"""The `process` backend: a child process under rlimits, always available, weakest.

As root, every run gets its own unused uid (see `uidpool`): the program cannot signal or read the
caller, RLIMIT_NPROC caps *its* processes, and a `kill -1` as that uid sweeps every descendant,
daemons included. Without root it falls back to its own session/process group plus a scan for a
per-run marker in the environment, which a determined program can evade.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from rewardkit.sandbox import uidpool
from rewardkit.sandbox.base import Program, RunResult, Sandbox
from rewardkit.sandbox.local import (
    launch_command,
    make_base_dir,
    remove_tree,
    rlimit_args,
    run_program,
    sandbox_error,
    shared_uid_nproc,
)

MARKER = "REWARDKIT_SANDBOX_RUN"
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


def base_env(workdir: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A scrubbed environment: nothing of the caller's (secrets, tokens, proxies) leaks through."""
    env = {
        "PATH": SAFE_PATH,
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }
    env.update(extra or {})
    return env


def python_candidates(preferred: str | None) -> list[str]:
    cands = [preferred] if preferred else []
    cands += [sys.executable, getattr(sys, "_base_executable", ""), shutil.which("python3") or "",
              "/usr/bin/python3", "/usr/local/bin/python3"]
    seen: list[str] = []
    for c in cands:
        if c and c not in seen and os.path.exists(c):
            seen.append(c)
    return seen


def probe_python(cands: list[str], uid: int | None) -> str | None:
    """First interpreter that starts as the sandbox uid (e.g. a venv under /root does not)."""
    for c in cands:
        ids: dict[str, Any] = {"user": uid, "group": uid, "extra_groups": []} if uid else {}
        try:
            r = subprocess.run([c, "-c", "pass"], cwd="/", env={"PATH": SAFE_PATH}, capture_output=True,
                               timeout=20, **ids)
        except (OSError, subprocess.SubprocessError):
            continue
        if r.returncode == 0:
            return c
    return None


class ProcessSandbox(Sandbox):
    name = "process"

    def __init__(self, python: str | None = None, workers: int | None = None,
                 drop_privileges: bool | None = None, env: dict[str, str] | None = None) -> None:
        can = uidpool.can_switch_uid()
        self.drop = can if drop_privileges is None else drop_privileges
        if self.drop and not can:
            raise RuntimeError("process sandbox: drop_privileges needs root")
        self.workers = workers
        self.extra_env = dict(env or {})
        self.prlimit = shutil.which("prlimit")
        self._closed = False
        if self.drop:
            slot = uidpool.acquire()
            try:
                found = probe_python(python_candidates(python), slot.uid)
            finally:
                uidpool.sweep_uid(slot.uid)
                uidpool.release(slot)
        else:
            found = probe_python(python_candidates(python), None)
        if found is None:
            raise RuntimeError(f"process sandbox: no usable python among {python_candidates(python)}")
        self.python = found
        self.base = make_base_dir(self.name)
        if self.drop:
            uidpool.reap_stale()
        atexit.register(self.close)

    def default_workers(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)

    def isolation(self) -> str:
        who = "a private uid per run" if self.drop else "the caller's own uid"
        return (f"process: rlimits (cpu, memory, processes, file size, open files), wall-time kill, "
                f"scrubbed env, temp work dir, {who}. Does NOT stop: network access, reading "
                f"world-readable host files, writes to world-writable dirs during the run (swept "
                f"after), /dev/shm or disk filling" +
                ("" if self.drop else ", signals to the caller, reading the caller's environment via /proc, "
                 "escape from the process sweep by setsid + clearing its env") + ".")

    def run(self, program: Program) -> RunResult:
        t0 = time.monotonic()
        if self._closed:
            return sandbox_error("sandbox is closed", t0)
        try:
            workdir = tempfile.mkdtemp(dir=self.base)
        except OSError as exc:
            return sandbox_error(f"cannot make work dir: {exc}", t0)
        slot = None
        try:
            slot = uidpool.acquire() if self.drop else None
            return run_program(program, self._spawner(program, slot), workdir)
        except Exception as exc:  # noqa: BLE001 - one bad run must never sink the batch
            return sandbox_error(f"{type(exc).__name__}: {exc}", t0)
        finally:
            if slot is not None:
                uidpool.sweep_uid(slot.uid)
                uidpool.remove_files_of_uid(slot.uid)
                uidpool.release(slot)
            remove_tree(workdir)

    def _spawner(self, program: Program, slot: uidpool.UidSlot | None) -> Callable[
            [str, int, int], tuple[subprocess.Popen[bytes], Callable[[], None]]]:
        def spawn(workdir: str, stdin_fd: int, status_fd: int) -> tuple[subprocess.Popen[bytes], Callable[[], None]]:
            token = secrets.token_hex(8)
            env = base_env(workdir, {**self.extra_env, MARKER: token})
            argv = launch_command(program.command, self.python, program.files, status_fd)
            ids: dict[str, Any] = {}
            if slot is not None:
                for root, dirs, files in os.walk(workdir):
                    for n in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
                        os.chown(n, slot.uid, slot.gid)
                ids = {"user": slot.uid, "group": slot.gid, "extra_groups": []}
            nproc = program.limits.pids if slot is not None else shared_uid_nproc(program.limits.pids)
            if self.prlimit:
                argv = [self.prlimit, *rlimit_args(program.limits, nproc), "--", *argv]
                preexec = None
            else:
                preexec = _rlimit_preexec(program, nproc)
            proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=stdin_fd, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
                                    pass_fds=(status_fd,), preexec_fn=preexec, **ids)  # type: ignore[call-overload]

            def kill() -> None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                if slot is not None:
                    uidpool.sweep_uid(slot.uid, skip=frozenset({proc.pid}))
                else:
                    kill_marked(token, skip=proc.pid)

            return proc, kill

        return spawn

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            remove_tree(self.base)


def _rlimit_preexec(program: Program, nproc: int) -> Callable[[], None]:
    import resource

    lim = program.limits
    cpu = max(1, int(lim.cpu_s + 0.999))
    pairs = [(resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_AS, (lim.memory_mb << 20,) * 2),
             (resource.RLIMIT_FSIZE, (lim.file_size_mb << 20,) * 2), (resource.RLIMIT_CORE, (0, 0)),
             (resource.RLIMIT_NOFILE, (lim.open_files,) * 2), (resource.RLIMIT_NPROC, (nproc, nproc))]

    def preexec() -> None:
        for res, val in pairs:
            resource.setrlimit(res, val)

    return preexec


def kill_marked(token: str, skip: int) -> None:
    """Non-root sweep: SIGKILL our own processes whose environment carries this run's marker."""
    needle = f"{MARKER}={token}".encode()
    me = os.getuid()
    for _ in range(20):
        hit = False
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == skip:
                continue
            try:
                if os.stat(f"/proc/{name}").st_uid != me:
                    continue
                with open(f"/proc/{name}/environ", "rb") as fh:
                    if needle not in fh.read():
                        continue
                os.kill(int(name), signal.SIGKILL)
                hit = True
            except OSError:
                continue
        if not hit:
            return
        time.sleep(0.002)
