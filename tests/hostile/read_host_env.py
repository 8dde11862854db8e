# Look for the host's secret: our environment, then every /proc/*/environ we can read.
import os

secret = "__SECRET__"
hits = [k for k, v in os.environ.items() if secret in v]
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if secret.encode() in fh.read():
                    hits.append(pid)
        except OSError:
            pass
print("FOUND" if hits else "CLEAN", hits)
