"""A private uid per concurrent run, so the kernel can tell runs apart without cgroups.

Why: RLIMIT_NPROC counts processes per uid, and `kill(-1)` issued *as* a uid reaches every process
of that uid, including a daemon that double-forked and left our session. Giving each in-flight run
its own otherwise-unused uid turns both into per-run tools: a process cap that really is per run,
and a sweep that leaves nothing behind. Slots are claimed with `flock` on a file per uid, so several
host processes (two test runners, a trainer and `rewardkit check`) never share a uid; the lock dies
with its holder, and a slot whose file says "busy" is swept before reuse (the holder crashed).
Only usable when we are root.
"""

from __future__ import annotations

import fcntl
import os
import random
import subprocess
import time
from dataclasses import dataclass

UID_BASE = 2_000_000  # far above any real account or container uid range
UID_SLOTS = 4096
LOCK_DIR = "/tmp/.rewardkit-sandbox-uids"


@dataclass
class UidSlot:
    uid: int
    fd: int

    @property
    def gid(self) -> int:
        return self.uid


def can_switch_uid() -> bool:
    return os.geteuid() == 0


def acquire() -> UidSlot:
    """Claim a free uid slot (non-blocking scan from a random start)."""
    os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
    start = random.randrange(UID_SLOTS)
    for i in range(UID_SLOTS):
        uid = UID_BASE + (start + i) % UID_SLOTS
        fd = os.open(os.path.join(LOCK_DIR, str(uid)), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        dirty = os.pread(fd, 1, 0) == b"1"
        if dirty or pids_of_uid(uid):
            sweep_uid(uid)  # a previous holder crashed mid-run: its processes go first
        os.pwrite(fd, b"1", 0)
        return UidSlot(uid, fd)
    raise RuntimeError(f"no free sandbox uid among {UID_SLOTS} slots")


def release(slot: UidSlot) -> None:
    os.ftruncate(slot.fd, 0)
    os.close(slot.fd)


def reap_stale() -> int:
    """Sweep every slot left "busy" by a holder that died (its lock is free again); returns how many."""
    if not can_switch_uid() or not os.path.isdir(LOCK_DIR):
        return 0
    reaped = 0
    for name in os.listdir(LOCK_DIR):
        if not name.isdigit():
            continue
        fd = os.open(os.path.join(LOCK_DIR, name), os.O_RDWR)
        try:
            if os.pread(fd, 1, 0) != b"1":
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live holder
            sweep_uid(int(name))
            remove_files_of_uid(int(name))
            os.ftruncate(fd, 0)
            reaped += 1
        finally:
            os.close(fd)  # also drops the lock
    return reaped


def pids_of_uid(uid: int, skip: frozenset[int] = frozenset()) -> list[int]:
    """Live (non-zombie) processes of `uid` (cheap: one stat per process, a read per match)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in skip:
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            found.append(int(name))
    return found


def kill_all_of_uid(uid: int) -> None:
    """SIGKILL every process of `uid` at once: `kill -9 -1` run as that uid."""
    if not UID_BASE <= uid < UID_BASE + UID_SLOTS:  # kill(-1) as any other uid could hit real processes
        raise ValueError(f"uid {uid} is not a sandbox uid")
    try:
        subprocess.run(
            ["kill", "-9", "-1"],
            user=uid,
            group=uid,
            extra_groups=[],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        for pid in pids_of_uid(uid):
            try:
                os.kill(pid, 9)
            except OSError:
                pass


def sweep_uid(uid: int, skip: frozenset[int] = frozenset(), attempts: int = 50) -> bool:
    """Kill until no live process of `uid` is left (`skip`: our unreaped child); True when clean."""
    for _ in range(attempts):
        if not pids_of_uid(uid, skip):
            return True
        kill_all_of_uid(uid)
        time.sleep(0.002)
    return not pids_of_uid(uid, skip)


def remove_files_of_uid(uid: int, dirs: tuple[str, ...] = ("/tmp", "/var/tmp", "/dev/shm")) -> list[str]:
    """Delete top-level entries of shared writable dirs that the run created; returns what went."""
    import shutil

    removed = []
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                removed.append(entry.path)
            except OSError:
                continue
    return removed
