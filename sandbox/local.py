"""What the host-side backends (`process`, `bwrap`) share: work dirs, the watch loop, the verdict.

The watch loop runs in the calling thread (one per in-flight run) and waits on the child's pidfd
and its two pipes at once, so it notices, without polling, the first of: the main process exits,
the output cap is passed, or the wall deadline comes.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from rewardkit.sandbox.base import Limits, Program, RunResult, Status

RUNNER_SRC = open(os.path.join(os.path.dirname(__file__), "runner.py"), encoding="utf-8").read()
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT}


def write_files(workdir: str, files: dict[str, str]) -> None:
    """Write the program's files; names must stay inside the work dir."""
    root = os.path.realpath(workdir)
    for rel, text in files.items():
        path = os.path.realpath(os.path.join(root, rel))
        if os.path.isabs(rel) or not path.startswith(root + os.sep):
            raise ValueError(f"program file {rel!r} would land outside the work dir")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)


def make_base_dir(tag: str) -> str:
    """A per-sandbox parent dir named after our pid, so a later start can reap a crashed one's."""
    reap_stale_base_dirs(tag)
    base = tempfile.mkdtemp(prefix=f"rewardkit-{tag}-{os.getpid()}-")
    os.chmod(base, 0o711)  # run dirs below are owned by the run's uid; others may not list them
    return base


def reap_stale_base_dirs(tag: str) -> None:
    tmp = tempfile.gettempdir()
    prefix = f"rewardkit-{tag}-"
    for name in os.listdir(tmp):
        if not name.startswith(prefix):
            continue
        try:
            pid = int(name[len(prefix) :].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not pid_alive(pid):
            remove_tree(os.path.join(tmp, name))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_tree(path: str) -> None:
    """rmtree that also gets through dirs the program made read-only."""

    def fix(func: Callable[..., object], p: str, _exc: object) -> None:
        try:
            os.chmod(os.path.dirname(p), 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


def resolve_command(command: tuple[str, ...], python: str) -> list[str]:
    if not command:
        raise ValueError("empty command")
    head = python if command[0] in ("python3", "python") else command[0]
    return [head, *command[1:]]


def is_script(argv: list[str], python: str, files: dict[str, str]) -> bool:
    """`python3 x.py ...` with x.py one of the program's files: run through `runner.run_script`."""
    return len(argv) >= 2 and argv[0] == python and argv[1].endswith(".py") and argv[1] in files


def launch_command(command: tuple[str, ...], python: str, files: dict[str, str], status_fd: int) -> list[str]:
    """The argv a host-side backend starts: a Python script of the program goes through the same
    launcher as in the fork-server sandboxes (`runner.run_script`, reporting on `status_fd`), so
    every backend judges a script's end the same way; any other command runs as given."""
    argv = resolve_command(command, python)
    if is_script(argv, python, files):
        return [python, "-c", RUNNER_SRC, "--script", str(status_fd), *argv[1:]]
    return argv


def rlimit_args(limits: Limits, nproc: int) -> list[str]:
    """`prlimit` options for a run (hard CPU limit one second above the soft one: SIGXCPU first).

    `nproc` is RLIMIT_NPROC, which the kernel counts per uid: `limits.pids` for a private uid,
    more when the uid is shared (see `shared_uid_nproc`)."""
    cpu = max(1, int(limits.cpu_s + 0.999))
    mem = limits.memory_mb << 20
    fsize = limits.file_size_mb << 20
    nofile = limits.open_files
    return [f"--cpu={cpu}:{cpu + 1}", f"--as={mem}:{mem}", f"--fsize={fsize}:{fsize}",
            f"--nofile={nofile}:{nofile}", "--core=0:0", f"--nproc={nproc}:{nproc}"]


def shared_uid_nproc(pids: int) -> int:
    """Without a private uid, RLIMIT_NPROC counts all of the caller's processes: allow what runs
    now plus `pids`. A rough cap (concurrent runs share the headroom), but a fork bomb stops."""
    from rewardkit.sandbox.uidpool import pids_of_uid

    return len(pids_of_uid(os.getuid())) + pids


@dataclass
class Watched:
    stdout: bytes
    stderr: bytes
    wait_status: int
    cpu_s: float
    wall_s: float
    stopped_by: str | None  # "wall" or "output" when we ended it
    status: bytes = b""  # what the launcher reported on the status channel (runner.run_script)


def watch(proc: subprocess.Popen[bytes], limits: Limits, kill: Callable[[], None],
          status_fd: int | None = None) -> Watched:
    """Collect capped output until the main process exits or a limit is hit; always reaps. The
    launcher's report is read from `status_fd` (our end of the status pipe) once it is over."""
    t0 = time.monotonic()
    deadline = t0 + limits.wall_s
    cap = limits.output_bytes
    assert proc.stdout is not None and proc.stderr is not None
    bufs: dict[int, bytearray] = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    sel = selectors.DefaultSelector()
    pidfd = os.pidfd_open(proc.pid)
    sel.register(pidfd, selectors.EVENT_READ, "exit")
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ, "pipe")
    total = 0
    stopped_by: str | None = None
    exited = False
    try:
        while stopped_by is None:
            if exited and len(sel.get_map()) == 0:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if exited:
                    break  # only leftovers kept the pipes open; they are killed below
                stopped_by = "wall"
                break
            for key, _ in sel.select(remaining):
                if key.data == "exit":
                    exited = True
                    sel.unregister(pidfd)
                    kill()  # the run ends with its main process: descendants go now
                    deadline = min(deadline, time.monotonic() + 1.0)
                    continue
                fd = key.fd
                try:
                    chunk = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    continue
                room = cap - total
                bufs[fd] += chunk[: max(0, room)]
                total += len(chunk)
                if total > cap:
                    stopped_by = "output"
                    break
    finally:
        sel.close()
        os.close(pidfd)
    kill()
    _, wait_status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    proc.stdout.close()
    proc.stderr.close()
    return Watched(
        stdout=bytes(bufs[out_fd]),
        stderr=bytes(bufs[err_fd]),
        wait_status=wait_status,
        cpu_s=usage.ru_utime + usage.ru_stime,
        wall_s=time.monotonic() - t0,
        stopped_by=stopped_by,
        status=read_status(status_fd) if status_fd is not None else b"",
    )


def read_status(fd: int, cap: int = 1 << 16) -> bytes:
    """Whatever is in the status pipe now, at most `cap` bytes; never blocks."""
    os.set_blocking(fd, False)
    data = b""
    while len(data) < cap:
        try:
            chunk = os.read(fd, cap - len(data))
        except OSError:  # nothing more now (a leftover descendant may still hold the write end)
            break
        if not chunk:
            break
        data += chunk
    return data


def reported_end(status: bytes) -> tuple[int, str] | None:
    """The failing end the launcher reported first: (exit code, exception class), or None.

    The program can write to this channel too, but only claims of failure count, so forging
    one only fails itself."""
    for line in status.split(b"\n"):
        parts = line.split(b" ")
        if len(parts) == 3 and parts[0] == b"uncaught" and parts[1].isdigit() and 0 < int(parts[1]) < 256:
            return int(parts[1]), parts[2].decode("ascii", "replace")
    return None


def verdict(w: Watched, limits: Limits, note: str = "") -> RunResult:
    """Turn how the process ended into a status and the limit that stopped it."""
    code = os.waitstatus_to_exitcode(w.wait_status)
    stdout = w.stdout.decode("utf-8", "replace")
    stderr = w.stderr.decode("utf-8", "replace")
    end = reported_end(w.status) if w.stopped_by is None else None
    if end is not None:
        if code == 0:
            # it raised (or asked for a failing exit), then got its exit status to 0 anyway: a
            # patched stream, excepthook, __del__ or thread cannot turn a crash into ok
            code = end[0]
            stderr += f"\n[sandbox] the program ended by an uncaught {end[1]}, then exited 0 anyway"
        if "Traceback (most recent call last)" not in stderr and end[1] != "SystemExit":
            stderr += f"\n{end[1]}: uncaught (its traceback did not reach stderr)"
    status: Status
    limit: str | None = None
    sig = -code if code < 0 else 0
    if w.stopped_by == "wall":
        status, limit = "timeout", "wall"
    elif w.stopped_by == "output":
        status, limit = "output_limit", "output"
    elif sig == signal.SIGXCPU or (sig == signal.SIGKILL and max(w.cpu_s, w.wall_s) >= limits.cpu_s - 0.05):
        # the hard CPU limit (soft + 1 s) sends SIGKILL to a program that ignores SIGXCPU
        status, limit = "timeout", "cpu"
    elif code != 0 and _last_error_line(stderr).startswith("MemoryError"):
        status, limit = "memory", "memory"
    elif sig == signal.SIGKILL:
        status = "killed"
    elif code == 0:
        status = "ok"
    else:
        status = "runtime_error"
        if "BlockingIOError: [Errno 11]" in stderr:  # fork refused (forked copies' tracebacks interleave)
            limit = "pids"
        elif code != 0 and _last_error_line(stderr).startswith("OSError: [Errno 27]"):
            limit = "file_size"
    if sig and sig != signal.SIGKILL and w.stopped_by is None:
        name = signal.Signals(sig).name
        stderr += f"\n[sandbox] process killed by {name}" + (" (crash)" if sig in CRASH_SIGNALS else "")
    if note:
        stderr += f"\n[sandbox] {note}"
    return RunResult(status, code, stdout, stderr, w.wall_s, w.cpu_s, limit)


def _last_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln and not ln.startswith((" ", "[sandbox]"))]
    return lines[-1] if lines else ""


def sandbox_error(message: str, t0: float) -> RunResult:
    return RunResult("sandbox_error", None, "", message, time.monotonic() - t0)


Spawn = Callable[[str, int, int], tuple["subprocess.Popen[bytes]", Callable[[], None]]]


def run_program(program: Program, spawn: Spawn, workdir: str) -> RunResult:
    """Write files, spawn via `spawn(workdir, stdin_fd, status_fd)`, watch, decide. The caller
    cleans up."""
    t0 = time.monotonic()
    try:
        write_files(workdir, program.files)
    except (OSError, ValueError) as exc:
        return sandbox_error(f"cannot write program files: {exc}", t0)
    with tempfile.TemporaryFile() as stdin:
        stdin.write(program.stdin.encode("utf-8"))
        stdin.seek(0)
        status_r, status_w = os.pipe()
        try:
            try:
                proc, kill = spawn(workdir, stdin.fileno(), status_w)
            except (OSError, subprocess.SubprocessError) as exc:
                return sandbox_error(f"cannot start program: {exc}", t0)
            finally:
                os.close(status_w)
            w = watch(proc, program.limits, kill, status_r)
        finally:
            os.close(status_r)
    return verdict(w, program.limits)
