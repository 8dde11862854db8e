"""The `bwrap` backend: bubblewrap namespaces around each run, plus the same rlimits as `process`.

Each run gets: no network (own empty net namespace), its own pid/ipc/uts/cgroup namespaces, a
read-only view of /usr (and the interpreter's prefix) and nothing else of the host file system,
size-capped tmpfs for the work dir, /tmp and /dev/shm (the program's files are copied in through
file descriptors, so nothing touches the host disk), no capabilities, and a fresh session so it
cannot reach our terminal. Killing the outer bwrap process kills the namespace's init, and with it
every process inside. As root, bwrap itself runs under a private uid from `uidpool`, so the process
cap is per run and a leftover-sweep by uid backs up the namespace teardown.
"""

from __future__ import annotations

import atexit
import functools
import os
import posixpath
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from rewardkit.sandbox import uidpool
from rewardkit.sandbox.base import Limits, Program, RunResult, Sandbox
from rewardkit.sandbox.local import Watched, resolve_command, rlimit_args, sandbox_error, verdict, watch
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
        with BwrapSandbox(_probe=True) as sb:
            r = sb.run(Program(command=("python3", "-c", "print(42)"), limits=Limits(wall_s=20)))
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return f"bwrap probe failed: {exc}"
    if r.status != "ok" or r.stdout.strip() != "42":
        return f"bwrap cannot run a program here ({r.status}): {r.stderr.strip()[-300:]}"
    return None


class BwrapSandbox(Sandbox):
    name = "bwrap"

    def __init__(self, python: str | None = None, ro_binds: list[str] | None = None,
                 workers: int | None = None, env: dict[str, str] | None = None, _probe: bool = False) -> None:
        self.bwrap = shutil.which("bwrap")
        if self.bwrap is None:
            raise RuntimeError("bubblewrap is not installed")
        if not _probe and (reason := bwrap_unavailable_reason()):
            raise RuntimeError(reason)
        if python:
            self.python, binds = python, [os.path.dirname(os.path.dirname(os.path.realpath(python)))]
        else:
            self.python, binds = default_python()
        self.binds = root_binds([*binds, *(ro_binds or [])])
        self.prlimit = shutil.which("prlimit")
        self.drop = uidpool.can_switch_uid()
        uidpool.reap_stale()
        self.workers = workers
        self.extra_env = dict(env or {})
        self._closed = False
        atexit.register(self.close)

    def default_workers(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)

    def isolation(self) -> str:
        return ("bwrap: own user/pid/net/ipc/uts namespaces (no network), read-only /usr only, "
                "size-capped tmpfs work dir, /tmp and /dev/shm, no capabilities, new session, "
                "rlimits (cpu, memory, processes" + ("" if self.drop else " counted per host user") +
                ", file size, open files), killed as a whole at the limit. Does not stop: kernel "
                "exploits, CPU/memory-bandwidth contention with the host.")

    def argv(self, program: Program, file_fds: list[tuple[int, str]]) -> list[str]:
        lim = program.limits
        tmp_bytes = str(max(4, lim.file_size_mb * 4) << 20)
        assert self.bwrap is not None
        args = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--hostname", "sandbox", *self.binds, "--proc", "/proc", "--dev", "/dev",
                "--size", tmp_bytes, "--tmpfs", "/dev/shm", "--size", tmp_bytes, "--tmpfs", "/tmp",
                "--size", tmp_bytes, "--tmpfs", WORKDIR]
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
        # the root and /dev are bwrap's own tmpfs: read-only, or a program could fill memory through them
        args += ["--remount-ro", "/dev", "--remount-ro", "/"]
        args += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--chdir", WORKDIR, "--"]
        args += resolve_command(program.command, self.python)
        if self.prlimit:
            # bwrap's own two processes (outer monitor, namespace init) count against the cap too
            lim2 = Limits(**{**lim.__dict__, "pids": lim.pids + 2})
            args = [self.prlimit, *rlimit_args(lim2, use_nproc=self.drop), "--", *args]
        return args

    def run(self, program: Program) -> RunResult:
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
            slot = uidpool.acquire() if self.drop else None
            ids: dict[str, object] = {"user": slot.uid, "group": slot.gid, "extra_groups": []} if slot else {}
            proc = subprocess.Popen(self.argv(program, file_fds), cwd="/", env=base_env(WORKDIR, self.extra_env),
                                    stdin=stdin_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True, pass_fds=[fd for fd, _ in file_fds],
                                    **ids)  # type: ignore[call-overload]
            for fd in fds:
                os.close(fd)
            fds = []
            w = watch(proc, program.limits, self._killer(proc, slot))
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

    def close(self) -> None:
        self._closed = True


def _signal_exit(w: Watched) -> Watched:
    """bwrap exits 128+N when its child died of signal N: restore the signal for the verdict."""
    if os.WIFEXITED(w.wait_status) and os.WEXITSTATUS(w.wait_status) in SIGNAL_EXITS:
        w.wait_status = os.WEXITSTATUS(w.wait_status) - 128  # a raw wait status for "killed by sig"
    return w
