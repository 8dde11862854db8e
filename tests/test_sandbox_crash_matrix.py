"""Crashing programs get the same verdict on every backend, however they then handle their streams
or exit status (issue 13, part 1: the fork-server pools used to report some of them as `ok`).

Every program prints the right answer first, then ends by an uncaught exception, a signal or a
limit, and tries to hide it: closes or redirects its streams, overrides `sys.excepthook`, registers
an `atexit` that exits 0, exits 0 from `__del__`, `__str__`, a thread or a patched stream, patches
builtins or `os`. The whole matrix runs as one batch per backend (absent backends skip) and each
verdict is compared with the expected one, so all backends agree with each other too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rewardkit.sandbox import Limits, Program, RunResult, Sandbox
from rewardkit.sandbox.select import select_backend, unavailable_reason

PRINT = "import os, sys\nprint('42', flush=True)\n"
FAST = Limits(wall_s=20, cpu_s=10, memory_mb=256, output_bytes=1 << 16)
CPU = Limits(wall_s=20, cpu_s=1, memory_mb=256)

# name: (source, limits, status, exit code, limit)
MATRIX: dict[str, tuple[str, Limits, str, int | None, str | None]] = {
    "raise": (PRINT + "raise ValueError('x')\n", FAST, "runtime_error", 1, None),
    "close_stderr_then_raise": (PRINT + "os.close(2)\nraise ValueError('x')\n", FAST, "runtime_error", 1, None),
    "close_stdout_then_raise": (PRINT + "os.close(1)\nraise ValueError('x')\n", FAST, "runtime_error", 1, None),
    "close_all_fds_then_raise": (PRINT + "os.closerange(0, 1024)\nraise ValueError('x')\n", FAST,
                                 "runtime_error", 1, None),
    "stderr_to_devnull_then_raise": (PRINT + "os.dup2(os.open(os.devnull, os.O_WRONLY), 2)\n"
                                     "sys.stderr = open(os.devnull, 'w')\nraise ValueError\n", FAST,
                                     "runtime_error", 1, None),
    "stderr_none_then_raise": (PRINT + "sys.stderr = None\nraise ValueError\n", FAST, "runtime_error", 1, None),
    "broken_stderr_then_raise": (PRINT + "class W:\n    def write(self, s): raise OSError\n"
                                 "    def flush(self): raise OSError\nsys.stderr = W()\nraise ValueError\n",
                                 FAST, "runtime_error", 1, None),
    "excepthook_exits_0": (PRINT + "sys.excepthook = lambda *a: os._exit(0)\nraise ValueError\n", FAST,
                           "runtime_error", 1, None),
    "atexit_exits_0": (PRINT + "import atexit\natexit.register(lambda: os._exit(0))\nraise ValueError\n", FAST,
                       "runtime_error", 1, None),
    "stream_flush_exits_0": (PRINT + "class W:\n    def write(self, s): return len(s)\n"
                             "    def flush(self): os._exit(0)\nsys.stdout = sys.stderr = W()\nraise ValueError\n",
                             FAST, "runtime_error", 1, None),
    "del_exits_0": (PRINT + "class D:\n    def __del__(self): os._exit(0)\nd = D()\nraise ValueError\n", FAST,
                    "runtime_error", 1, None),
    "exception_str_exits_0": (PRINT + "class E(Exception):\n    def __str__(self): os._exit(0)\nraise E()\n", FAST,
                              "runtime_error", 1, None),
    "thread_exits_0_later": (PRINT + "import threading, time\n"
                             "threading.Thread(target=lambda: (time.sleep(0.3), os._exit(0))).start()\n"
                             "raise ValueError\n", FAST, "runtime_error", 1, None),
    "builtins_patched_then_raise": (PRINT + "import builtins\nbuiltins.BaseException = object\n"
                                    "builtins.SystemExit = object\nraise ValueError\n", FAST,
                                    "runtime_error", 1, None),
    "os_patched_then_raise": (PRINT + "import posix, traceback\nos._exit = lambda c: posix._exit(0)\n"
                              "os.write = lambda *a: 0\ntraceback.format_exception = lambda *a: os._exit(0)\n"
                              "raise ValueError\n", FAST, "runtime_error", 1, None),
    "status_fd_replaced_then_raise": (PRINT + "for fd in range(3, 64):\n    try: os.dup2(os.open(os.devnull, "
                                      "os.O_WRONLY), fd)\n    except OSError: pass\n"
                                      "class E(Exception):\n    def __str__(self): os._exit(0)\nraise E()\n",
                                      FAST, "runtime_error", 1, None),
    "exit_0_request_after_fake_report": (PRINT + "for fd in range(3, 8):\n    try: os.write(fd, b'uncaught 0 X\\n')\n"
                                         "    except OSError: pass\n", FAST, "ok", 0, None),
    "finally_closes_stderr": (PRINT + "try:\n    raise ValueError\nfinally:\n    os.close(2)\n", FAST,
                              "runtime_error", 1, None),
    "keyboard_interrupt": (PRINT + "raise KeyboardInterrupt\n", FAST, "runtime_error", 1, None),
    "sys_exit_3": (PRINT + "sys.exit(3)\n", FAST, "runtime_error", 3, None),
    "sys_exit_message": (PRINT + "sys.exit('bye')\n", FAST, "runtime_error", 1, None),
    "segfault": (PRINT + "import signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", FAST, "runtime_error", -11, None),
    "sigkill_self": (PRINT + "import signal\nos.kill(os.getpid(), signal.SIGKILL)\n", FAST, "killed", -9, None),
    "abort": (PRINT + "os.abort()\n", FAST, "runtime_error", -6, None),
    "memory_after_closing_stderr": (PRINT + "os.close(2)\nx = bytearray(1 << 34)\n", FAST, "memory", 1, "memory"),
    "memory": (PRINT + "x = bytearray(1 << 34)\n", FAST, "memory", 1, "memory"),
    "cpu_ignoring_sigxcpu": (PRINT + "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
                             "while True: pass\n", CPU, "timeout", None, "cpu"),
    "output_flood": (PRINT + "while True: sys.stdout.write('x' * 65536)\n", FAST, "output_limit", None, "output"),
    "stdout_closed_at_exit": ("import os\nprint('42')\nos.close(1)\n", FAST, "runtime_error", 120, None),
    # honest ends stay ok everywhere
    "ok": ("print('42')\n", FAST, "ok", 0, None),
    "os_exit_0": (PRINT + "os._exit(0)\n", FAST, "ok", 0, None),
    "caught_exception": (PRINT + "try:\n    raise ValueError\nexcept ValueError:\n    pass\n", FAST, "ok", 0, None),
    "child_raises_parent_ok": (PRINT + "pid = os.fork()\nif pid == 0:\n    raise ValueError\n"
                               "os.waitpid(pid, 0)\n", FAST, "ok", 0, None),
}

VARIANTS = {"process": ("process", {}), "bwrap": ("bwrap", {"pool_size": 4}),
            "bwrap-fresh": ("bwrap", {"fresh": True}), "docker": ("docker", {"pool_size": 4})}


@pytest.fixture(scope="module", params=list(VARIANTS))
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    backend, options = VARIANTS[request.param]
    reason = unavailable_reason(backend)
    if reason:
        pytest.skip(f"{backend} backend unavailable: {reason}")
    sb = select_backend(backend, **options)
    yield sb
    sb.close()


def _verdict(r: RunResult, expected_code: int | None) -> tuple[str, int | None, str | None]:
    return r.status, r.exit_code if expected_code is not None else None, r.limit


def test_crashing_programs_are_judged_by_how_they_ended_on_every_backend(sandbox: Sandbox) -> None:
    names = list(MATRIX)
    programs = [Program(("python3", "main.py"), {"main.py": MATRIX[n][0]}, "", MATRIX[n][1]) for n in names]
    results = sandbox.run_batch(programs, workers=4)
    wrong = {}
    for name, r in zip(names, results, strict=True):
        _, _, status, code, limit = MATRIX[name]
        if _verdict(r, code) != (status, code, limit):
            wrong[name] = (_verdict(r, code), r.stderr[-300:])
    assert not wrong, wrong
    for name, r in zip(names, results, strict=True):
        if MATRIX[name][0].startswith(PRINT) and "os.close(1)" not in MATRIX[name][0] and "closerange" not in MATRIX[name][0]:
            assert r.stdout.startswith("42"), (name, r.stdout[:50])


def test_an_uncaught_exception_is_named_even_when_the_traceback_is_lost(sandbox: Sandbox) -> None:
    r = sandbox.run(Program(("python3", "main.py"), {"main.py": MATRIX["close_stderr_then_raise"][0]}, "", FAST))
    assert r.status == "runtime_error"
    assert "ValueError: uncaught" in r.stderr, r.stderr
