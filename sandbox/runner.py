"""The small runner that lives inside each warm docker container (stdlib only, Python >= 3.8).

It is the container's PID 1 and reads one JSON request per line on stdin, runs the program in a
fresh session under rlimits, and writes one JSON line back with raw facts (wait status, rusage,
capped output); the host turns them into a verdict with the same code as the other backends.
Being PID 1 matters: the kernel drops signals sent to a namespace's init from inside unless it
installed a handler, so a program cannot kill its runner (os.kill(os.getppid(), SIGKILL) is a
no-op), orphans (double-forked daemons) are reparented to it, and `kill(-1)` from here reaches
every other process in the container. When stdin closes (the host went away) it exits, and the
container, started with auto-remove, disappears.

The host sends this file's source as `python3 -c`, so any image with a python3 works. The imports
above are also what a forked child needs, so that fork-server runs don't pay for them; the
process and fresh-bwrap backends start the same file as `python3 -c <it> --script FD ...` to run
one script through `run_script` (then the runner's own modules are never imported).
"""

import atexit
import builtins
import io
import os
import sys
import threading
import traceback
import types

# the runner loop's modules, imported by _server_modules() (a placeholder until then)
base64 = json = resource = select = shutil = signal = time = types.ModuleType("see _server_modules")

WORK = "/work"
STATUS_FD = 3  # in the program: where run_script reports how it ended (see there)
SCRATCH = ("/work", "/tmp", "/dev/shm")


def _wipe(path):
    """Empty a scratch dir, including parts the program made read-only."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        p = os.path.join(path, name)
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                for root, dirs, _files in os.walk(p):
                    for d in dirs:
                        try:
                            os.chmod(os.path.join(root, d), 0o700)
                        except OSError:
                            pass
                os.chmod(p, 0o700)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass


def _reap_all():
    """SIGKILL everything but us, then collect every zombie (we are PID 1)."""
    if os.getpid() != 1:  # never outside our own pid namespace: see main()
        raise RuntimeError("runner is not PID 1 of a pid namespace")
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _child(req, stdin_fd, out_w, err_w, status_w):
    """In the forked child: new session, rlimits, exec. Never returns, whatever the program does."""
    try:
        os.setsid()
        os.dup2(stdin_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(status_w, STATUS_FD, inheritable=False)
        os.closerange(STATUS_FD + 1, 1 << 16)  # no runner pipe or file may leak into the program
        lim = req["limits"]
        cpu = max(1, int(lim["cpu_s"] + 0.999))
        mem = lim["memory_mb"] << 20
        fsize = lim["file_size_mb"] << 20
        nproc = lim["pids"] + req.get("nproc_extra", 1)  # counts our uid's runner (and bwrap monitor) too
        for res, val in ((resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_AS, (mem, mem)),
                         (resource.RLIMIT_FSIZE, (fsize, fsize)), (resource.RLIMIT_CORE, (0, 0)),
                         (resource.RLIMIT_NOFILE, (lim["open_files"],) * 2),
                         (resource.RLIMIT_NPROC, (nproc, nproc))):
            resource.setrlimit(res, val)
        os.chdir(WORK)
        argv = req["command"]
        if req.get("inproc"):
            run_script(argv[1:], req["env"], STATUS_FD)
        os.execvpe(argv[0], argv, req["env"])
    except BaseException as exc:  # noqa: BLE001 - report and leave
        try:
            os.write(2, f"[sandbox] cannot start program: {exc!r}\n".encode())
        except BaseException:  # noqa: BLE001 - stderr may be gone: the exit status still says it
            pass
    finally:
        os._exit(127)  # never back into the runner's loop, whatever failed above


def run_script(argv, env, status_fd):
    """Run `python3 script.py args...` in this already-started interpreter. Never returns.

    The fork-server sandboxes call it in a forked runner (saving the interpreter start-up, most of
    a short test's cost); the other backends start `python3 -c <this file> --script FD ...`, so
    every backend runs Python scripts through this same code. The script looks like a fresh
    `python3 script.py`: argv, sys.path[0], environment, fresh std streams, exit status and a
    traceback without our frames. Differences: modules the runner imported are already loaded,
    the hash seed is shared by the runs of one runner, and after an uncaught exception the
    program's atexit functions and non-daemon threads do not run.

    How the program ended is reported before any more of its code can run: on an uncaught
    exception (or a failing exit request) this writes `uncaught CODE NAME` to `status_fd`, a pipe
    the host reads, so a program that then closes its streams, or exits 0 from a `__del__`, an
    `__str__`, a thread or a patched stream, is still judged by the exception. Every name used
    after the program ran was bound before it started: patching builtins, `os` or `traceback`
    changes nothing here. When the channel is gone (closed or replaced) we exit at once with the
    failing code. What is left: a program thread or signal handler that calls os._exit(0) in the
    microseconds between the exception leaving the script and the report can still win that race,
    and a program that catches its own exception and exits 0 did not crash, on every backend.
    """
    _exit, _write, _fstat, _getpid = os._exit, os.write, os.fstat, os.getpid
    _type, _issubclass, _int, _str, _encode = type, issubclass, int.__int__, str, str.encode
    _name_of = type.__dict__["__name__"].__get__  # the class's own name: no metaclass property runs
    _format = traceback.format_exception
    _BaseException, _SystemExit = BaseException, SystemExit
    me = _getpid()
    try:
        st = _fstat(status_fd)
        channel = (st.st_dev, st.st_ino)
        os.set_blocking(status_fd, False)
        os.set_inheritable(status_fd, False)  # programs the script execs never see it
    except OSError:
        channel = None

    def report(code, exc):
        """Record a failing end on the status channel (only the launched process, not its forks)."""
        if _getpid() != me:
            return
        try:
            name = _encode(_name_of(_type(exc)), "ascii", "replace")[:80]
        except _BaseException:
            name = b"?"
        try:
            st = _fstat(status_fd)
            if channel is None or (st.st_dev, st.st_ino) != channel:
                raise OSError("status channel replaced")
            _write(status_fd, b"uncaught %d %s\n" % (code, name))
        except _BaseException:  # no channel: end now, still failing
            _exit(code)

    script = os.path.abspath(argv[0])
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(script)
    os.environ.clear()
    os.environ.update(env)
    out = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
    err = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                           line_buffering=True)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout, sys.stderr = out, err
    code = 0
    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    try:
        try:
            with open(script, "rb") as fh:
                code_obj = compile(fh.read(), script, "exec")
            exec(code_obj, main.__dict__)
        except _SystemExit as exc:
            value = exc.code
            if value is None:
                code = 0
            elif _issubclass(_type(value), int):
                code = _int(value) & 0xFF  # type: ignore[arg-type]  # an int subclass here
                if code:
                    report(code, exc)
            else:
                report(1, exc)
                code = 1
                try:
                    _write(2, _encode(_str(value) + "\n", "utf-8", "backslashreplace"))
                except _BaseException:
                    pass
        except _BaseException as exc:  # the program's own uncaught error
            report(1, exc)
            _print_traceback(exc, script, _format, _write)
            try:
                out.flush()
            except _BaseException:
                pass
            _exit(1)
        try:
            threading._shutdown()  # type: ignore[attr-defined]  # wait for non-daemon threads, like interpreter exit
        except _BaseException:
            pass
        try:
            atexit._run_exitfuncs()
        except _BaseException:
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except _BaseException:  # e.g. the file size limit hit while flushing
                code = code or 120
    finally:
        _exit(code & 0xFF)


def _print_traceback(exc, script, format_exception, write):
    """The traceback a fresh interpreter would print, straight to fd 2; never raises."""
    try:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next  # drop our own frames, as a fresh interpreter would show none
        text = "".join(format_exception(type(exc), exc, tb))
        data = text.encode("utf-8", "backslashreplace")
        while data:
            data = data[write(2, data):]
    except BaseException:  # noqa: BLE001 - a hostile __str__, a closed stderr: the status says it
        pass


def handle(req):
    for d in SCRATCH:
        _wipe(d)
    for rel, text in req["files"].items():
        path = os.path.normpath(os.path.join(WORK, rel))
        if not path.startswith(WORK + "/"):
            return {"error": f"program file {rel!r} would land outside the work dir"}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    stdin_path = "/tmp/.stdin"
    with open(stdin_path, "wb") as fh:
        fh.write(req["stdin"].encode("utf-8"))
    stdin_fd = os.open(stdin_path, os.O_RDONLY)
    os.unlink(stdin_path)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        os.close(status_r)
        _child(req, stdin_fd, out_w, err_w, status_w)
    for fd in (stdin_fd, out_w, err_w, status_w):
        os.close(fd)
    lim = req["limits"]
    deadline = t0 + lim["wall_s"]
    cap = lim["output_bytes"]
    bufs = {out_r: bytearray(), err_r: bytearray()}
    open_fds = [out_r, err_r]
    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    total = 0
    stopped_by = None
    exited = False
    reaped = None
    while stopped_by is None:
        if not exited and pidfd is None:
            done, st, usage = os.wait4(pid, os.WNOHANG)
            if done:
                exited, reaped = True, (st, usage)
                _kill_others()
        if exited and not open_fds:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if not exited:
                stopped_by = "wall"
            break
        watch = list(open_fds) + ([pidfd] if pidfd is not None and not exited else [])
        timeout = remaining if pidfd is not None else min(remaining, 0.005)
        ready, _, _ = select.select(watch, [], [], timeout)
        for fd in ready:
            if fd == pidfd:
                exited = True
                _kill_others()  # the run ends with its main process: descendants go now
                deadline = min(deadline, time.monotonic() + 1.0)
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                open_fds.remove(fd)
                continue
            room = cap - total
            bufs[fd] += chunk[: max(0, room)]
            total += len(chunk)
            if total > cap:
                stopped_by = "output"
                break
    if pidfd is not None:
        os.close(pidfd)
    if reaped is None:
        _kill_others()  # includes the main process
        _, wait_status, usage = os.wait4(pid, 0)
    else:
        wait_status, usage = reaped
    _reap_all()
    status = read_status(status_r)
    for fd in (out_r, err_r, status_r):
        os.close(fd)
    for d in SCRATCH:
        _wipe(d)
    return {
        "wait_status": wait_status,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": time.monotonic() - t0,
        "stopped_by": stopped_by,
        "stdout": base64.b64encode(bytes(bufs[out_r])).decode(),
        "stderr": base64.b64encode(bytes(bufs[err_r])).decode(),
        "status": base64.b64encode(status).decode(),
    }


def read_status(fd, cap=1 << 16):
    """What the program's end left on the status channel (run_script's report), at most `cap`
    bytes; call after the program is gone. Never blocks."""
    os.set_blocking(fd, False)
    data = b""
    while len(data) < cap:
        try:
            chunk = os.read(fd, cap - len(data))
        except OSError:  # BlockingIOError: a descendant still holds it open, nothing more now
            break
        if not chunk:
            break
        data += chunk
    return data


def _kill_others():
    """SIGKILL every process in the container but us (kill(-1) skips the caller)."""
    if os.getpid() != 1:  # never outside our own pid namespace: see main()
        raise RuntimeError("runner is not PID 1 of a pid namespace")
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _not_dumpable():
    """Programs run as our uid: without this they could read our memory (/proc/1/mem holds the
    current request) or reopen our pipes through /proc/1/fd. Forked children inherit the flag;
    exec'd ones get their own (dumpable) image, which holds nothing of ours."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


def _server_modules():
    """What only the runner's loop needs, imported once before the first fork (forked children
    then pay nothing for them); a launched script (`--script`) never imports them."""
    global base64, json, resource, select, shutil, signal, time
    import base64
    import json
    import resource
    import select
    import shutil
    import signal
    import time


def main():
    if sys.argv[1:2] == ["--script"]:  # python3 -c <this file> --script FD script.py args...
        # the script runs in this very process: there is no runner memory to hide (no _not_dumpable)
        given = int(sys.argv[2])
        if given != STATUS_FD:  # the same descriptor number as in the fork-server sandboxes
            os.dup2(given, STATUS_FD, inheritable=False)
            os.close(given)
        run_script(sys.argv[3:], dict(os.environ), STATUS_FD)
    _server_modules()
    if os.getpid() != 1:
        # kill(-1) between runs is only safe as init of a pid namespace of our own: anywhere else
        # it would signal every process this user may signal. Refuse to start.
        sys.stderr.write("runner.py must run as PID 1 of its own pid namespace (a sandbox); refusing\n")
        sys.exit(2)
    _not_dumpable()
    os.umask(0o077)
    stdin = sys.stdin.buffer
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in stdin:
        try:
            req = json.loads(line)
            resp = handle(req)
        except Exception as exc:  # noqa: BLE001 - a broken request must not kill the runner
            resp = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(resp).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
