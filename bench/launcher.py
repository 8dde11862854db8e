"""Cost per run of the one launcher: `python3 main.py` (started through runner.run_script) next to
`python3 -c` (not a script, so not launched), on every present backend.

    .venv/bin/python bench/launcher.py
"""

import os
import time

from rewardkit.sandbox.base import Limits, Program
from rewardkit.sandbox.select import select_backend, unavailable_reason

for b, opts in (("process", {}), ("bwrap", {"fresh": True}), ("bwrap", {}), ("docker", {})):
    if unavailable_reason(b):
        continue
    sb = select_backend(b, **opts)
    name = b + ("-fresh" if opts else "")
    for label, cmd in (("launcher: python3 main.py", ("python3", "main.py")), ("plain: python3 -c", ("python3", "-c", "print(1)"))):
        progs = [Program(cmd, {"main.py": "print(1)"}, "", Limits(wall_s=20)) for _ in range(60)]
        sb.run_batch(progs[:4], workers=2)
        t = time.perf_counter()
        rs = sb.run_batch(progs, workers=2)
        dt = time.perf_counter() - t
        print(f"| {name} | {label} | {len(progs)/dt:.1f} | {all(r.ok for r in rs)} |")
    sb.close()
print("load", os.getloadavg()[0])
