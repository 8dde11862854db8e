"""`rewardkit audit` time per bundled spec (in one process, the order the CI test runs them).

    .venv/bin/python bench/audit.py

Per spec: probe completions scored, findings (open / accepted), seconds for the whole audit
(honest samples + every probe, one batch each), and seconds per probe completion.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from rewardkit.audit import run_audit
from rewardkit.spec import load_spec
from rewardkit.verifier import ScoringContext
from rewardkit.verifiers.length_limit import load_tokenizer_file

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [("demo.yaml", "demo.jsonl"), ("quickstart.yaml", "quickstart.jsonl"), ("math_length.yaml", "math.jsonl"),
         ("tool_calling.yaml", "tool_calling.jsonl"), ("code.yaml", "code.jsonl"),
         ("paper_code.yaml", "paper_code.jsonl"), ("paper_math.yaml", "paper_math.jsonl"),
         ("paper_math_gated.yaml", "paper_math.jsonl"), ("paper_tool_calling.yaml", "paper_tool_calling.jsonl")]


def main() -> None:
    tokenizer = load_tokenizer_file(str(ROOT / "specs" / "samples" / "tokenizer.json"))
    print(f"load before: {os.getloadavg()[0]:.1f}")
    print("| spec | samples | prompts | probe completions | open findings | accepted | seconds | ms / completion |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for spec_name, samples in PAIRS:
        rows = [json.loads(line) for line in (ROOT / "specs" / "samples" / samples).read_text().splitlines()]
        spec = load_spec(ROOT / "specs" / spec_name)
        try:
            t0 = time.perf_counter()
            report = run_audit(spec, rows, ctx=ScoringContext(tokenizer=tokenizer))
            seconds = time.perf_counter() - t0
        finally:
            spec.close()
        made = sum(p.completions for p in report.probes)
        prompts = len({json.dumps(r.get("prompt")) for r in rows})
        print(f"| {spec_name} | {len(rows)} | {prompts} | {made} | {len(report.open_findings)} | "
              f"{len(report.findings) - len(report.open_findings)} | {seconds:.2f} | {1000 * seconds / made:.1f} |")
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
