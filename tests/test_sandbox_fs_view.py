"""The isolating backends show a program the same file-system basics (issue 13, part 1): a program
that reads /etc/passwd or asks for its user name used to work under docker and raise under bwrap,
so one spec scored differently depending on which backend `auto` picked. What still differs is
written down in `rewardkit.sandbox.etc_view.VIEW_DIFFERENCES` (and checked here)."""

from __future__ import annotations

import json

import pytest

from rewardkit.sandbox import Limits, Program
from rewardkit.sandbox.etc_view import VIEW_DIFFERENCES
from rewardkit.sandbox.select import select_backend, unavailable_reason

PROBE = r'''
import getpass, grp, json, os, pwd, socket
def read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError as exc:
        return type(exc).__name__
me = pwd.getpwuid(os.getuid())
print(json.dumps({
    "user": getpass.getuser(), "home": me.pw_dir, "shell": me.pw_shell, "group": grp.getgrgid(os.getgid()).gr_name,
    "passwd_has_me": any(line.split(":")[2] == str(os.getuid()) for line in read("/etc/passwd").splitlines()),
    "root": pwd.getpwuid(0).pw_name, "hostname": socket.gethostname(), "etc_hostname": read("/etc/hostname"),
    "hosts": read("/etc/hosts"), "resolv": read("/etc/resolv.conf"), "nsswitch": read("/etc/nsswitch.conf"),
    "localhost": socket.gethostbyname("localhost"), "cwd": os.getcwd(), "HOME": os.environ["HOME"],
    "TMPDIR": os.environ["TMPDIR"], "work_writable": os.access("/work", os.W_OK),
}, sort_keys=True))
'''

VARIANTS = {"bwrap": ("bwrap", {"pool_size": 1}), "bwrap-fresh": ("bwrap", {"fresh": True}),
            "docker": ("docker", {"pool_size": 1})}


def _view(variant: str) -> dict[str, object]:
    backend, options = VARIANTS[variant]
    reason = unavailable_reason(backend)
    if reason:
        pytest.skip(f"{backend} backend unavailable: {reason}")
    with select_backend(backend, **options) as sb:
        r = sb.run(Program(("python3", "main.py"), {"main.py": PROBE}, "", Limits(wall_s=30)))
    assert r.ok, r.stderr
    return dict(json.loads(r.stdout))


def test_isolating_backends_show_the_same_etc_files_user_and_hostname() -> None:
    views = {}
    for variant in VARIANTS:
        try:
            views[variant] = _view(variant)
        except pytest.skip.Exception:
            continue
    if len(views) < 2:
        pytest.skip(f"needs two isolating backends to compare; usable: {sorted(views)}")
    first, *others = views.items()
    for name, view in others:
        assert view == first[1], (first[0], name)
    view = first[1]
    assert view["user"] == view["group"] == "sandbox" and view["passwd_has_me"] and view["root"] == "root"
    assert view["hostname"] == "sandbox" and view["etc_hostname"] == "sandbox\n"
    assert view["localhost"] == "127.0.0.1" and view["cwd"] == view["HOME"] == "/work"


def test_the_remaining_differences_are_documented() -> None:
    for word in ("bwrap", "docker", "process", "uid", "/etc/passwd", "image"):
        assert word in VIEW_DIFFERENCES
