"""`rewardkit serve` under load: throughput and latency at 1/8/64 clients (cheap spec and code
spec), served vs in-process `spec.score` on the same batches, vs a minimal NeMo-Gym-style server
doing the same checks, overload at 4x the sample budget, and (with --soak SECONDS) a mixed soak.

The server (and the NeMo-style one) run as separate processes started like a user starts them;
this process is the load generator (asyncio + httpx) and, for the in-process column, the scorer.

    .venv/bin/python bench/serve.py                 # the tables for bench/RESULTS.md
    .venv/bin/python bench/serve.py --quick         # a short run (CI-sized)
    .venv/bin/python bench/serve.py --soak 600      # only the 10-minute soak
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "serve"
RK = str(Path(sys.executable).parent / "rewardkit")
READY = re.compile(r"ready on (http://\S+)")


# --- data -----------------------------------------------------------------------------------------
def cheap_samples(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = " ".join(["step"] * rng.randint(1, 40))
        shape = rng.choice(["<think>{w}</think><answer>{a}</answer>", "{w} <answer>{a}</answer>", "<think>{w}</think>"])
        out.append({"prompt": f"question {i // 8}", "completion": shape.format(w=words, a=rng.randint(0, 9))})
    return out


def code_samples(n: int) -> list[dict[str, Any]]:
    base = [json.loads(line) for line in (ROOT / "specs" / "samples" / "code.jsonl").read_text().splitlines() if line]
    out = []
    for i in range(n):  # distinct programs (a comment differs), so no run is shared between samples
        s = dict(base[i % len(base)])
        s["completion"] = s["completion"].replace("```python\n", f"```python\n# variant {i}\n", 1)
        out.append(s)
    return out


def wire(sample: dict[str, Any]) -> dict[str, Any]:
    return {"completion": sample["completion"], "prompt": sample.get("prompt"),
            "fields": {k: v for k, v in sample.items() if k not in ("completion", "prompt")}}


def verify_body(sample: dict[str, Any]) -> dict[str, Any]:
    return {"responses_create_params": {"input": sample.get("prompt")},
            "response": {"output": [{"type": "message", "role": "assistant",
                                     "content": [{"type": "output_text", "text": sample["completion"]}]}]}}


# --- processes ------------------------------------------------------------------------------------
class Proc:
    def __init__(self, cmd: list[str], ready: re.Pattern[str] | None = None, url: str | None = None) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                                     start_new_session=True)
        self.url = url or ""
        self.log: list[str] = []
        deadline = time.monotonic() + 180
        if ready is not None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.log.append(line)
                found = ready.search(line)
                if found:
                    self.url = found.group(1)
                    break
                if time.monotonic() > deadline:
                    break
        else:
            while time.monotonic() < deadline:
                try:
                    httpx.post(self.url + "/verify", json=verify_body({"completion": "x"}), timeout=2)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
        if not self.url:
            raise RuntimeError("server did not start:\n" + "".join(self.log))
        import threading

        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        if self.proc.stdout is not None:
            for line in self.proc.stdout:
                self.log.append(line)

    def rss_mb(self) -> float:
        try:
            p = psutil.Process(self.proc.pid)
            return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20
        except psutil.NoSuchProcess:
            return 0.0

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


def rewardkit_server(spec: Path, *args: str) -> Proc:
    return Proc([RK, "serve", str(spec), "--port", "0", "--log-level", "warning", *args], READY)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- load -----------------------------------------------------------------------------------------
async def load(url: str, path: str, bodies: list[dict[str, Any]], clients: int, samples_per_body: int,
               retry_503: bool = False) -> dict[str, Any]:
    """Send every body once over `clients` concurrent connections; latency per request."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    answered: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(bodies)):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                while True:
                    t0 = time.perf_counter()
                    response = await http.post(path, json=bodies[i])
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 503 and retry_503:
                        await asyncio.sleep(float(response.headers.get("retry-after", "1")) * random.uniform(0.5, 1))
                        continue
                    latencies.append(time.perf_counter() - t0)
                    if response.status_code == 200:
                        answered[i] = answered.get(i, 0) + 1
                    break

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start
    latencies.sort()
    return {"samples_per_s": len(bodies) * samples_per_body / wall, "wall_s": wall,
            "p50_ms": 1000 * latencies[len(latencies) // 2], "p99_ms": 1000 * latencies[min(len(latencies) - 1,
                                                                                             int(len(latencies) * 0.99))],
            "statuses": statuses, "answered": answered, "requests": len(bodies)}


def batches(samples: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    return [{"samples": [wire(s) for s in samples[i:i + size]]} for i in range(0, len(samples), size)]


def in_process(spec_path: Path, samples: list[dict[str, Any]], size: int) -> float:
    from rewardkit.spec import load_spec

    with load_spec(spec_path) as spec:
        spec.score(samples[:size])  # warm: pools and sandboxes started, as the server's warm-up does
        t0 = time.perf_counter()
        for i in range(0, len(samples), size):
            spec.score(samples[i:i + size])
        return len(samples) / (time.perf_counter() - t0)


# --- sections -------------------------------------------------------------------------------------
def concurrency_table(name: str, spec: Path, samples: list[dict[str, Any]], per_request: int,
                      rounds: dict[int, int]) -> list[str]:
    rows = [f"| {name} | clients | requests x samples | samples/s | p50 ms | p99 ms | statuses |", "|---|---:|---|---:|---:|---:|---|"]
    srv = rewardkit_server(spec, "--sample-budget", "1024")
    try:
        for clients, requests in rounds.items():
            bodies = batches(samples * (requests * per_request // len(samples) + 1), per_request)[:requests]
            r = asyncio.run(load(srv.url, "/score", bodies, clients, per_request))
            rows.append(f"| {name} | {clients} | {requests} x {per_request} | {r['samples_per_s']:.0f} | "
                        f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['statuses']} |")
    finally:
        srv.stop()
    return rows


def served_vs_in_process(name: str, spec: Path, samples: list[dict[str, Any]], size: int = 64) -> list[str]:
    srv = rewardkit_server(spec, "--sample-budget", "1024")
    try:
        bodies = batches(samples, size)
        asyncio.run(load(srv.url, "/score", bodies[:1], 1, size))  # first request: connection, caches
        served = asyncio.run(load(srv.url, "/score", bodies, 1, size))["samples_per_s"]
        local = in_process(spec, samples, size)
        served2 = asyncio.run(load(srv.url, "/score", bodies, 1, size))["samples_per_s"]
        local2 = in_process(spec, samples, size)
    finally:
        srv.stop()
    s, l_ = max(served, served2), max(local, local2)
    return [f"| {name} | {len(samples)} in batches of {size} | {l_:.0f} ({local:.0f}, {local2:.0f}) | "
            f"{s:.0f} ({served:.0f}, {served2:.0f}) | {s / l_:.2f}x |"]


def vs_nemo_style(samples: list[dict[str, Any]], clients: int) -> list[str]:
    port = free_port()
    nemo = Proc([sys.executable, str(HERE / "nemo_style_server.py"), str(port)], url=f"http://127.0.0.1:{port}")
    ours = rewardkit_server(HERE / "cheap.yaml", "--sample-budget", "1024")
    rows = []
    try:
        one = [verify_body(s) for s in samples]
        ref = [httpx.post(nemo.url + "/verify", json=b).json()["reward_components"] for b in one[:64]]
        mine = [httpx.post(ours.url + "/verify", json=b).json()["reward_components"] for b in one[:64]]
        assert ref == mine, "the NeMo-style server does not do the same checks"
        for label, url, path, bodies, per in (
                ("NeMo-style server, /verify, 1 rollout per request", nemo.url, "/verify", one, 1),
                ("rewardkit, /verify, 1 rollout per request", ours.url, "/verify", one, 1),
                ("rewardkit, /score, 8 samples per request", ours.url, "/score", batches(samples, 8), 8),
                ("rewardkit, /score, 64 samples per request", ours.url, "/score", batches(samples, 64), 64)):
            r = asyncio.run(load(url, path, bodies, clients, per))
            rows.append(f"| {label} | {clients} | {r['samples_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
    finally:
        nemo.stop()
        ours.stop()
    return rows


def overload(spec: Path, samples: list[dict[str, Any]], budget: int, name: str) -> list[str]:
    srv = rewardkit_server(spec, "--sample-budget", str(budget))
    per = 8
    clients = 4 * budget // per  # 4x the budget in flight at once
    bodies = [{"samples": [{**wire(s), "group": f"r{i}-{k}"} for k, s in enumerate(samples[(i * per) % len(samples):][:per])]}
              for i in range(clients * 4)]
    rss: list[float] = []
    stop = False

    async def watch() -> None:
        while not stop:
            rss.append(srv.rss_mb())
            await asyncio.sleep(0.2)

    async def main() -> dict[str, Any]:
        nonlocal stop
        watcher = asyncio.create_task(watch())
        r = await load(srv.url, "/score", bodies, clients, per, retry_503=True)
        stop = True
        await watcher
        return r

    try:
        r = asyncio.run(main())
    finally:
        code = srv.stop()
    lost = [i for i in range(len(bodies)) if r["answered"].get(i, 0) == 0]
    twice = [i for i, n in r["answered"].items() if n > 1]
    return [f"| {name} | {budget} | {clients} x {per} | {len(bodies)} | {r['statuses'].get(200, 0)} | "
            f"{r['statuses'].get(503, 0)} | {len(lost)} | {len(twice)} | {min(rss):.0f} -> {max(rss):.0f} | {code} |"]


def soak(seconds: float) -> list[str]:
    """Mixed traffic (cheap /score, /get_reward, /verify, code /score) for `seconds`; RSS at the
    start (after a minute of traffic, once caches are warm) and at the end; leftovers after stop."""
    cheap = rewardkit_server(HERE / "cheap.yaml", "--sample-budget", "256")
    code = rewardkit_server(ROOT / "specs" / "code.yaml", "--sample-budget", "64")
    cs, ks = cheap_samples(512, seed=1), code_samples(64)
    samples_rss: list[tuple[float, float, float]] = []
    requests = {"ok": 0, "other": 0}

    async def traffic(url: str, path: str, make: Any, clients: int, until: float) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=600) as http:
            async def one() -> None:
                while time.monotonic() < until:
                    response = await http.post(path, json=make())
                    requests["ok" if response.status_code == 200 else "other"] += 1
                    if response.status_code == 503:
                        await asyncio.sleep(1)
            await asyncio.gather(*(one() for _ in range(clients)))

    async def main() -> None:
        start = time.monotonic()
        until = start + seconds

        async def sample_rss() -> None:
            while time.monotonic() < until:
                samples_rss.append((time.monotonic() - start, cheap.rss_mb(), code.rss_mb()))
                await asyncio.sleep(5)

        def score_cheap() -> dict[str, Any]:
            return {"samples": [wire(s) for s in random.sample(cs, 16)]}

        def reward_cheap() -> dict[str, Any]:
            picked = random.sample(cs, 8)
            return {"query": [s["prompt"] + s["completion"] for s in picked], "prompts": [s["prompt"] for s in picked]}

        def verify_cheap() -> dict[str, Any]:
            return verify_body(random.choice(cs))

        def score_code() -> dict[str, Any]:
            return {"samples": [wire(s) for s in random.sample(ks, 4)]}

        await asyncio.gather(sample_rss(), traffic(cheap.url, "/score", score_cheap, 2, until),
                             traffic(cheap.url, "/get_reward", reward_cheap, 2, until),
                             traffic(cheap.url, "/verify", verify_cheap, 2, until),
                             traffic(code.url, "/score", score_code, 2, until))

    try:
        asyncio.run(main())
    finally:
        before = cheap.descendants() + code.descendants()
        codes = (cheap.stop(), code.stop())
    left = [p.pid for p in before if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    try:
        import docker

        containers = len(docker.from_env().containers.list(all=True, filters={"label": f"rewardkit.sandbox.owner={code.proc.pid}"}))
    except Exception:  # noqa: BLE001
        containers = -1
    warm = next((r for r in samples_rss if r[0] >= min(60.0, seconds / 4)), samples_rss[0])
    end = samples_rss[-1]
    growth = [(end[k] - warm[k]) / warm[k] * 100 for k in (1, 2)]
    return [f"| {seconds:.0f} s | {requests['ok']} | {requests['other']} | cheap {warm[1]:.0f} -> {end[1]:.0f} MB "
            f"({growth[0]:+.1f}%) | code {warm[2]:.0f} -> {end[2]:.0f} MB ({growth[1]:+.1f}%) | {len(left)} | {containers} | {codes} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a CI-sized run)")
    parser.add_argument("--soak", type=float, default=0, metavar="SECONDS", help="run only the mixed soak")
    parser.add_argument("--sections", type=int, nargs="+", default=[1, 2, 3, 4], metavar="N",
                        help="run only these sections (1 concurrency, 2 served vs in-process, 3 vs NeMo-style, 4 overload)")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    if args.soak:
        print("| soak | requests 200 | other | cheap server RSS (from 1 min in) | code server RSS (with sandbox) | "
              "processes left | containers left | exit codes |\n|---|---:|---:|---|---|---:|---:|---|")
        print("\n".join(soak(args.soak)), flush=True)
        print(f"load after: {os.getloadavg()}")
        return
    q = 4 if args.quick else 1
    cheap, code = cheap_samples(1024 // q), code_samples(128 // q)
    sections = [
        ("Throughput and latency, /score, 8 samples per request", lambda: concurrency_table(
            "cheap", HERE / "cheap.yaml", cheap, 8, {1: 200 // q, 8: 400 // q, 64: 800 // q})
         + concurrency_table("code", ROOT / "specs" / "code.yaml", code, 8, {1: 16 // q, 8: 32 // q, 64: 64 // q})),
        ("Served vs in-process spec.score, same batches, one client (best of two; both runs in brackets)",
         lambda: served_vs_in_process("cheap", HERE / "cheap.yaml", cheap * 2)
         + served_vs_in_process("code", ROOT / "specs" / "code.yaml", code)),
        ("vs a minimal NeMo-Gym-style server (same checks, cheap spec), 64 clients",
         lambda: vs_nemo_style(cheap, 64)),
        ("Overload: 4x the sample budget in flight, clients retry on 503",
         lambda: overload(HERE / "cheap.yaml", cheap, 64, "cheap") + overload(ROOT / "specs" / "code.yaml", code, 16, "code")),
    ]
    heads = {0: None, 1: "| spec | samples | in-process samples/s | served samples/s | served / in-process |\n|---|---|---:|---:|---:|",
             2: "| server | clients | samples/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|",
             3: "| spec | budget | clients x samples | requests | 200s | 503s | lost | answered twice | server RSS MB | exit |\n"
                "|---|---:|---|---:|---:|---:|---:|---:|---|---:|"}
    for k, (title, run) in enumerate(sections):
        if k + 1 not in args.sections:
            continue
        t0 = time.perf_counter()
        rows = run()
        print(f"\n### {title}\n", flush=True)
        if heads[k]:
            print(heads[k])
        print("\n".join(rows), flush=True)
        print(f"({time.perf_counter() - t0:.0f} s; load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
