# Fill /dev/shm (shared memory) with files, up to 512 MiB, and say how far it got.

written = 0
try:
    for i in range(512):
        with open(f"/dev/shm/rk-fill-__TOKEN__-{i}", "wb") as fh:
            fh.write(b"\0" * (1 << 20))
        written += 1
except OSError as exc:
    print(f"STOPPED at {written} MiB: {type(exc).__name__}")
    raise SystemExit(1) from None
print(f"WROTE {written} MiB")
