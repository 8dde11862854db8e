"""The hostile corpus (tests/hostile/*.py), run as ONE batch per backend next to benign canaries.

Each hostile program must end within its limits with the right status; the canaries in the same
batch must still give the right answer; afterwards no process of the batch is alive on the host
and nothing it wrote outside its work dir is left. Backends that are absent skip with the reason.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rewardkit.sandbox import Limits, Program, RunResult, Sandbox
from rewardkit.sandbox.select import select_backend, unavailable_reason

HOSTILE = Path(__file__).parent / "hostile"
ROOT = os.geteuid() == 0
GRACE_S = 2.0  # how far past its wall limit a run may end (kill, sweep, reap)


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


@dataclass
class Ctx:
    token: str
    port: int
    hostdir: Path
    secret: str


@dataclass
class Case:
    name: str
    limits: Limits
    statuses: tuple[str, ...]
    check: Callable[[RunResult, str, Ctx], None] = lambda r, b, c: None
    needs_root_for_process: bool = False


def _no_connection(r: RunResult, backend: str, c: Ctx) -> None:
    lines = r.stdout.splitlines()
    assert len(lines) == 3, r.stdout + r.stderr
    if backend != "process":  # the process backend does not isolate the network (documented)
        assert all(ln.startswith("BLOCKED") for ln in lines), r.stdout


def _writes(r: RunResult, backend: str, c: Ctx) -> None:
    """Only scratch dirs are writable: the sandbox's own tmpfs (bwrap, docker), or for `process`
    the host's shared /tmp, /var/tmp, /dev/shm (swept after the run; the leftover check below
    proves it). Never system dirs, /root, the work dir's parent, or a private host dir."""
    assert r.stdout.count("\n") == 8, r.stdout + r.stderr
    scratch = ("/tmp/", "/var/tmp/", "/dev/shm/") if backend == "process" else ("/tmp/", "/dev/shm/")
    for line in r.stdout.splitlines():
        if line.startswith("WROTE"):
            assert line.split()[1].startswith(scratch), line


CASES = [
    Case("fork_bomb", Limits(wall_s=3, cpu_s=3, pids=16), ("runtime_error", "timeout"),
         lambda r, b, c: r.limit in ("pids", "wall", "cpu") or pytest.fail(f"limit {r.limit}")),
    Case("memory_bomb", Limits(memory_mb=256, wall_s=10), ("memory",),
         lambda r, b, c: r.limit == "memory" or pytest.fail(f"limit {r.limit}")),
    Case("infinite_loop", Limits(cpu_s=1, wall_s=15), ("timeout",),  # wall: room for a busy 2-core box
         lambda r, b, c: r.limit == "cpu" or pytest.fail(f"limit {r.limit}")),
    Case("sleep_past_limit", Limits(wall_s=1, cpu_s=5), ("timeout",),
         lambda r, b, c: r.limit == "wall" or pytest.fail(f"limit {r.limit}")),
    Case("output_flood", Limits(output_bytes=64 << 10, wall_s=10), ("output_limit",),
         lambda r, b, c: len(r.stdout) + len(r.stderr) <= 64 << 10 or pytest.fail("output not capped")),
    Case("network_connect", Limits(wall_s=10), ("ok",), _no_connection),
    Case("write_outside", Limits(wall_s=10), ("ok",), _writes),
    Case("read_host_env", Limits(wall_s=10), ("ok",),
         lambda r, b, c: r.stdout.startswith("CLEAN") or pytest.fail(r.stdout), needs_root_for_process=True),
    Case("kill_parent", Limits(wall_s=10), ("ok",),
         lambda r, b, c: "still here" in r.stdout or pytest.fail(r.stdout + r.stderr), needs_root_for_process=True),
    Case("daemon_double_fork", Limits(wall_s=10), ("ok",),
         lambda r, b, c: (r.stdout == "daemon started\n" and r.wall_s < 3) or pytest.fail(f"{r}")),
    Case("fill_dev_shm", Limits(wall_s=15), ("ok", "runtime_error"),
         lambda r, b, c: b == "process" or r.stdout.startswith("STOPPED") or pytest.fail(r.stdout)),
    Case("deep_recursion", Limits(wall_s=10), ("runtime_error",),
         lambda r, b, c: r.limit is None or pytest.fail(f"limit {r.limit}")),
]

CANARY = """
import subprocess, sys
nums = [int(x) for x in sys.stdin.read().split()]
child = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
print(sum(nums), child.stdout.strip())
"""


def _program(case: Case, ctx: Ctx) -> Program:
    src = (HOSTILE / f"{case.name}.py").read_text()
    for key, val in (("__TOKEN__", ctx.token), ("__PORT__", str(ctx.port)), ("__HOSTDIR__", str(ctx.hostdir)),
                     ("__SECRET__", ctx.secret)):
        src = src.replace(key, val)
    return Program(command=("python3", "main.py", ctx.token), files={"main.py": src}, limits=case.limits)


def _procs_with(token: str) -> list[str]:
    """Host processes whose command line carries the batch token (forks and daemons keep argv)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read()
            with open(f"/proc/{pid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if token.encode() in cmd and state != b"Z":
            found.append(f"{pid}: {cmd[:120]!r}")
    return found


def test_corpus_exists() -> None:
    on_disk = {p.stem for p in HOSTILE.glob("*.py")}
    assert on_disk == {c.name for c in CASES}


def test_hostile_batch(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = sandbox.name
    secret = "rk-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("REWARDKIT_TEST_SECRET", secret)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    hostdir = tmp_path / "host-private"
    hostdir.mkdir(mode=0o700)
    ctx = Ctx(secrets.token_hex(6), listener.getsockname()[1], hostdir, secret)
    cases = [c for c in CASES if not (c.needs_root_for_process and backend == "process" and not ROOT)]

    programs: list[Program] = []
    kinds: list[Case | int] = []
    for i, case in enumerate(cases):
        programs.append(_program(case, ctx))
        kinds.append(case)
        if i % 2 == 0:  # canaries interleaved with the hostile runs
            programs.append(Program(command=("python3", "main.py", ctx.token), files={"main.py": CANARY},
                                    stdin=f"{i} 1 2", limits=Limits(wall_s=20)))
            kinds.append(i)
    t0 = time.monotonic()
    results = sandbox.run_batch(programs, workers=6)
    elapsed = time.monotonic() - t0
    listener.close()

    failures = []
    for kind, prog, res in zip(kinds, programs, results, strict=True):
        if isinstance(kind, int):
            if res.status != "ok" or res.stdout != f"{kind + 3} 42\n":
                failures.append(f"canary {kind}: {res}")
            continue
        try:
            assert res.status in kind.statuses, f"status {res.status} not in {kind.statuses}: {res}"
            assert res.wall_s <= prog.limits.wall_s + GRACE_S, f"ran {res.wall_s:.1f}s"
            kind.check(res, backend, ctx)
        except (AssertionError, pytest.fail.Exception) as exc:
            failures.append(f"{kind.name}: {exc}")
    assert not failures, "\n".join(failures)
    assert elapsed < 60

    time.sleep(0.2)
    assert _procs_with(ctx.token) == [], "processes outlived their run"
    # pooled sandboxes fork their runner (no token in argv): look for anything of their uids
    assert getattr(sandbox, "stray_processes", list)() == [], "processes outlived their run"
    leftovers = [p for d in ("/tmp", "/var/tmp", "/dev/shm", "/etc", "/usr", "/root", str(hostdir))
                 for p in Path(d).glob(f"*{ctx.token}*")]
    assert leftovers == [], f"files left outside the work dir: {leftovers}"
    if backend == "process":
        assert os.listdir(sandbox.base) == [], "work dirs left behind"  # type: ignore[attr-defined]
