"""The few /etc files a program commonly reads, identical in the bwrap and docker sandboxes.

Without them the same program scored differently depending on which backend `auto` picked:
reading /etc/passwd worked under docker (the image's file) and raised under bwrap (no /etc), and
`getpass.getuser()` failed on both. Both isolating backends now show these files with this
content (the run's uid is named `sandbox`) and the hostname `sandbox`. What still differs, and
the `process` backend's view (the host's own files), is listed in `VIEW_DIFFERENCES`.
"""

from __future__ import annotations

HOSTNAME = "sandbox"

VIEW_DIFFERENCES = (
    "bwrap shows the host's /usr (and the interpreter's prefix) and an /etc with only the "
    "generated files plus ld.so.cache, localtime and alternatives; docker shows the image's whole "
    "root (its own /etc, /var, /home, /opt, os-release). Under both, /etc/passwd, /etc/group, "
    "/etc/hosts, /etc/hostname, /etc/resolv.conf and /etc/nsswitch.conf are the same generated "
    "files, the hostname is 'sandbox' and the work dir is /work. The run's uid number differs "
    "(65534 under bwrap, a private uid per container under docker); its name is 'sandbox' on "
    "both. The process backend runs on the host's own file system, in a temp work dir."
)


def etc_files(uid: int, gid: int) -> dict[str, str]:
    """Path -> content of the generated /etc files for a sandbox whose programs run as uid:gid."""
    users = {0: "root", 65534: "nobody", uid: "sandbox"}  # the run's uid keeps its name even if 65534
    passwd = "".join(f"{name}:x:{u}:{gid if u == uid else u}:{name}:{'/work' if u == uid else '/nonexistent'}:"
                     "/usr/sbin/nologin\n" for u, name in sorted(users.items()))
    groups = {0: "root", 65534: "nogroup", gid: "sandbox"}
    group = "".join(f"{name}:x:{g}:\n" for g, name in sorted(groups.items()))
    return {
        "/etc/passwd": passwd,
        "/etc/group": group,
        "/etc/hosts": f"127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        "/etc/hostname": f"{HOSTNAME}\n",
        "/etc/resolv.conf": "# no network in the sandbox\n",
        "/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    }
