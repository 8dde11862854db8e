"""The `bwrap` backend: bubblewrap namespaces, plus the same rlimits as `process`.

By default a warm pool of bwrap sandboxes, each with `runner.py` as its PID 1 (see `pool`): a run
costs a fork inside an existing namespace, and the runner wipes the scratch dirs and kills every
other process of its namespace between runs. With `fresh=True` every run gets a namespace of its
own instead (stronger separation between runs, an interpreter and namespace start per run).

Each sandbox gets: no network (own empty net namespace), its own pid/ipc/uts/cgroup namespaces, a
read-only view of /usr (and the interpreter's prefix) and nothing else of the host file system,
size-capped tmpfs for the work dir, /tmp and /dev/shm (the program's files are copied in through
file descriptors, so nothing touches the host disk), no capabilities, and a fresh session so it
cannot reach our terminal. Killing the outer bwrap process kills the namespace's init, and with it
every process inside. As root, bwrap itself runs under a private uid from `uidpool`, so the process
cap is per run and a leftover-sweep by uid backs up the namespace teardown.
"""

from __future__ import annotations

import functools
import os
import posixpath
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rewardkit.sandbox import uidpool
from rewardkit.sandbox.base import Limits, Program, RunResult
from rewardkit.sandbox.etc_view import HOSTNAME, etc_files
from rewardkit.sandbox.local import (
    RUNNER_SRC,
    Watched,
    launch_command,
    rlimit_args,
    sandbox_error,
    shared_uid_nproc,
    verdict,
    watch,
)
from rewardkit.sandbox.pool import PooledSandbox, Worker
from rewardkit.sandbox.process import base_env

WORKDIR = "/work"
SANDBOX_UID = 65534
# bwrap reports a child killed by signal N as exit code 128+N; these we map back to a signal death.
SIGNAL_EXITS = {128 + s for s in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE,
                                   signal.SIGABRT, signal.SIGKILL, signal.SIGXCPU, signal.SIGXFSZ)}


def default_python() -> tuple[str, list[str]]:
    """Interpreter path and the host dirs to bind read-only so that it runs."""
    if os.path.exists("/usr/bin/python3"):
        return "/usr/bin/python3", []
    exe = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    return exe, [sys.base_prefix]


def root_binds(extra: list[str]) -> list[str]:
    """Read-only /usr, the merged-/usr symlinks (or binds), the few /etc files a runtime reads."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    for path in extra:
        if not path.startswith("/usr/"):
            args += ["--ro-bind", path, path]
    return args


@functools.lru_cache(maxsize=1)
def bwrap_unavailable_reason() -> str | None:
    """None when a trivial program runs under bwrap here, else why not."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    try:
        with BwrapSandbox(_probe=True, pool_size=1) as sb:
            r = sb.run(Program(command=("python3", "-c", "print(42)"), limits=Limits(wall_s=20)))
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return f"bwrap probe failed: {exc}"
    if r.status != "ok" or r.stdout.strip() != "42":
        return f"bwrap cannot run a program here ({r.status}): {r.stderr.strip()[-300:]}"
    return None


def sandbox_args(bwrap: str, binds: list[str], scratch_bytes: int) -> list[str]:
    """The namespace and mount set-up shared by pooled and fresh sandboxes."""
    size = str(scratch_bytes)
    return [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--hostname", HOSTNAME, *binds, "--proc", "/proc", "--dev", "/dev",
            "--size", size, "--tmpfs", "/dev/shm", "--size", size, "--tmpfs", "/tmp",
            "--size", size, "--tmpfs", WORKDIR]


def etc_data() -> tuple[list[str], list[int]]:
    """`--ro-bind-data` args for the generated /etc files (see `etc_view`), and the descriptors
    holding them, to pass to bwrap and close once it started."""
    args: list[str] = []
    fds: list[int] = []
    for path, text in etc_files(SANDBOX_UID, SANDBOX_UID).items():
        fd = os.memfd_create("rk-etc")
        fds.append(fd)
        os.write(fd, text.encode("utf-8"))
        os.lseek(fd, 0, os.SEEK_SET)
        args += ["--ro-bind-data", str(fd), path]
    return args, fds


# the root and /dev are bwrap's own tmpfs: read-only, or a program could fill memory through them
READ_ONLY_ROOT = ["--remount-ro", "/dev", "--remount-ro", "/"]
AS_SANDBOX_USER = ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--chdir", WORKDIR]


class BwrapWorker(Worker):
    """One warm bwrap sandbox: the runner's stdin/stdout are our pipes."""

    def __init__(self, proc: subprocess.Popen[bytes], slot: uidpool.UidSlot | None, errlog: Any) -> None:
        super().__init__()
        self.proc = proc
        self.slot = slot
        self.errlog = errlog

    def fileno(self) -> int:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _recv(self) -> bytes | None:
        return os.read(self.fileno(), 1 << 16)

    def diagnostics(self) -> str:
        try:
            self.errlog.seek(0)
            return str(self.errlog.read().decode(errors="replace"))
        except (OSError, ValueError):
            return ""

    def uid(self) -> int | None:
        return self.slot.uid if self.slot else None

    def own_pids(self) -> set[int]:
        pids = {self.proc.pid}
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as fh:
                pids.update(int(p) for p in fh.read().split())  # the runner (PID 1 inside)
        except OSError:
            pass
        return pids

    def destroy(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # outer bwrap; the namespace dies with it
        except OSError:
            pass
        if self.slot is not None:
            uidpool.sweep_uid(self.slot.uid, skip=frozenset({self.proc.pid}))
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.errlog):
            try:
                f.close()  # type: ignore[union-attr]
            except (OSError, AttributeError):
                pass
        if self.slot is not None:
            uidpool.release(self.slot)
            self.slot = None


class BwrapSandbox(PooledSandbox):
    name = "bwrap"

    def __init__(self, python: str | None = None, ro_binds: list[str] | None = None,
                 workers: int | None = None, pool_size: int | None = None, env: dict[str, str] | None = None,
                 fresh: bool = False, memory_mb: int = 1 << 20, pids: int = 1 << 16, scratch_mb: int = 64,
                 fork_server: bool = True, _probe: bool = False) -> None:
        super().__init__(pool_size or workers or 2 * max(1, os.cpu_count() or 1), env)
        exe = shutil.which("bwrap")
        if exe is None:
            raise RuntimeError("bubblewrap is not installed")
        self.bwrap = exe
        if not _probe and (reason := bwrap_unavailable_reason()):
            raise RuntimeError(reason)
        if python:
            self.python, binds = python, [os.path.dirname(os.path.dirname(os.path.realpath(python)))]
        else:
            self.python, binds = default_python()
        self.binds = root_binds([*binds, *(ro_binds or [])])
        self.prlimit = shutil.which("prlimit")
        self.drop = uidpool.can_switch_uid()
        self.fresh = fresh
        self.memory_mb, self.pids = memory_mb, pids  # caps on what a program's limits may ask
        self.scratch_mb = scratch_mb  # size of each of /work, /tmp, /dev/shm in a pooled sandbox
        self.fork_server = fork_server
        self._spawner: ThreadPoolExecutor | None = None
        uidpool.reap_stale()
        if not fresh:
            self._fill()

    def isolation(self) -> str:
        return ("bwrap: own user/pid/net/ipc/uts namespaces (no network), read-only /usr only, "
                "size-capped tmpfs work dir, /tmp and /dev/shm, no capabilities, new session, "
                "rlimits (cpu, memory, processes" + ("" if self.drop else " counted per host user") +
                ", file size, open files), killed as a whole at the limit" +
                ("" if self.fresh else "; runs of one pooled sandbox follow each other in the same "
                 "namespaces, scratch wiped and processes killed in between") +
                ". Does not stop: kernel exploits, CPU/memory-bandwidth contention with the host.")

    # --- warm pool --------------------------------------------------------------------------------
    def request(self, program: Program) -> dict[str, Any]:
        return {**super().request(program), "nproc_extra": 2}  # the runner and bwrap's monitor

    def _start_worker(self) -> Worker:
        # --die-with-parent fires when the *thread* that forked bwrap ends, so every warm sandbox is
        # forked from one long-lived thread, never from a batch worker or a pool-filling thread
        if self._spawner is None:
            self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rk-bwrap-spawner")
        return self._spawner.submit(self._spawn_worker).result()

    def _spawn_worker(self) -> Worker:
        slot = uidpool.acquire() if self.drop else None
        errlog = tempfile.TemporaryFile()
        etc_args, etc_fds = etc_data()
        argv = [*sandbox_args(self.bwrap, self.binds, self.scratch_mb << 20), *etc_args, *READ_ONLY_ROOT,
                "--as-pid-1", *AS_SANDBOX_USER, "--", self.python, "-u", "-c", RUNNER_SRC]
        ids: dict[str, Any] = {"user": slot.uid, "group": slot.gid, "extra_groups": []} if slot else {}
        try:
            proc = subprocess.Popen(argv, cwd="/", env=base_env(WORKDIR, self.extra_env), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=errlog, start_new_session=True,
                                    pass_fds=etc_fds, **ids)
        except BaseException:
            errlog.close()
            if slot is not None:
                uidpool.release(slot)
            raise
        finally:
            for fd in etc_fds:
                os.close(fd)
        return BwrapWorker(proc, slot, errlog)

    def run(self, program: Program) -> RunResult:
        return self._run_fresh(program) if self.fresh else super().run(program)

    def close(self) -> None:
        super().close()
        if self._spawner is not None:
            self._spawner.shutdown(wait=False)

    # --- one namespace per run --------------------------------------------------------------------
    def argv(self, program: Program, file_fds: list[tuple[int, str]], status_fd: int,
             etc_args: list[str]) -> list[str]:
        lim = program.limits
        args = sandbox_args(self.bwrap, self.binds, max(4, lim.file_size_mb * 4) << 20)
        made: set[str] = set()
        for fd, rel in file_fds:
            parent = posixpath.dirname(rel)
            parts = [p for p in parent.split("/") if p]
            for i in range(len(parts)):
                d = "/".join(parts[: i + 1])
                if d not in made:
                    made.add(d)
                    args += ["--dir", f"{WORKDIR}/{d}"]
            args += ["--file", str(fd), f"{WORKDIR}/{rel}"]
        command = launch_command(program.command, self.python, program.files, status_fd)
        args += [*etc_args, *READ_ONLY_ROOT, *AS_SANDBOX_USER, "--", *command]
        if self.prlimit:
            # bwrap's own two processes (outer monitor, namespace init) count against the cap too
            nproc = lim.pids + 2 if self.drop else shared_uid_nproc(lim.pids + 2)
            args = [self.prlimit, *rlimit_args(lim, nproc), "--", *args]
        return args

    def _run_fresh(self, program: Program) -> RunResult:
        t0 = time.monotonic()
        if self._closed:
            return sandbox_error("sandbox is closed", t0)
        fds: list[int] = []
        slot = None
        try:
            file_fds = []
            for rel, text in program.files.items():
                norm = posixpath.normpath(rel)
                if norm.startswith(("/", "..")):
                    return sandbox_error(f"program file {rel!r} would land outside the work dir", t0)
                fd = os.memfd_create("rk-file")
                fds.append(fd)
                os.write(fd, text.encode("utf-8"))
                os.lseek(fd, 0, os.SEEK_SET)
                file_fds.append((fd, norm))
            stdin_fd = os.memfd_create("rk-stdin")
            fds.append(stdin_fd)
            os.write(stdin_fd, program.stdin.encode("utf-8"))
            os.lseek(stdin_fd, 0, os.SEEK_SET)
            status_r, status_w = os.pipe()
            etc_args, etc_fds = etc_data()
            fds += [status_r, status_w, *etc_fds]
            slot = uidpool.acquire() if self.drop else None
            ids: dict[str, Any] = {"user": slot.uid, "group": slot.gid, "extra_groups": []} if slot else {}
            proc = subprocess.Popen(self.argv(program, file_fds, status_w, etc_args), cwd="/",
                                    env=base_env(WORKDIR, {**self.extra_env, "TMPDIR": "/tmp"}),  # as pooled
                                    stdin=stdin_fd, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True,
                                    pass_fds=[*(fd for fd, _ in file_fds), status_w, *etc_fds], **ids)
            fds.remove(status_r)
            for fd in fds:
                os.close(fd)
            fds = [status_r]
            w = watch(proc, program.limits, self._killer(proc, slot), status_r)
            return verdict(_signal_exit(w), program.limits)
        except Exception as exc:  # noqa: BLE001 - one bad run must never sink the batch
            return sandbox_error(f"{type(exc).__name__}: {exc}", t0)
        finally:
            for fd in fds:
                os.close(fd)
            if slot is not None:
                uidpool.sweep_uid(slot.uid)
                uidpool.release(slot)

    @staticmethod
    def _killer(proc: subprocess.Popen[bytes], slot: uidpool.UidSlot | None) -> Callable[[], None]:
        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # outer bwrap; its namespace init dies with it
            except OSError:
                pass
            if slot is not None:
                uidpool.sweep_uid(slot.uid, skip=frozenset({proc.pid}))

        return kill


def _signal_exit(w: Watched) -> Watched:
    """bwrap exits 128+N when its child died of signal N: restore the signal for the verdict."""
    if os.WIFEXITED(w.wait_status) and os.WEXITSTATUS(w.wait_status) in SIGNAL_EXITS:
        w.wait_status = os.WEXITSTATUS(w.wait_status) - 128  # a raw wait status for "killed by sig"
    return w
