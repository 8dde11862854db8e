# Write files outside the work dir: system dirs, shared temp dirs, the parent dir, a host dir.

TARGETS = ["/etc/rk-__TOKEN__", "/usr/rk-__TOKEN__", "/root/rk-__TOKEN__", "/tmp/rk-__TOKEN__",
           "/var/tmp/rk-__TOKEN__", "/dev/shm/rk-__TOKEN__", "../rk-__TOKEN__", "__HOSTDIR__/rk-__TOKEN__"]
for path in TARGETS:
    try:
        with open(path, "w") as fh:
            fh.write("pwned")
        print("WROTE", path)
    except OSError as exc:
        print("DENIED", path, type(exc).__name__)
