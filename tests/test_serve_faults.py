"""Faults around a real server: timeouts, clients that leave, backpressure, a sandbox worker killed
mid-request, SIGTERM under load, a warm-up that fails and a spec that does not validate."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil
from rk_serve import ROOT, Server

from rewardkit.client import RewardClient

SLOW = Path(__file__).parent / "data" / "serve_slow_code.yaml"
PROGRAM = "```python\nimport time\na, s = input().split()\ntime.sleep(float(s))\nprint(a)\n```"


def slow(seconds: float, n: int = 1) -> dict[str, Any]:
    """n samples whose program runs `seconds`; distinct tests, so no two share a sandbox run."""
    return {"samples": [{"completion": PROGRAM, "prompt": "p", "fields": {
        "tests": {"inputs": [f"{i} {seconds}\n"], "outputs": [f"{i}\n"]}}} for i in range(n)]}


def in_flight(srv: Server) -> float:
    text = srv.get("/metrics").text
    return float(re.search(r"^rewardkit_samples_in_flight (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]


def wait_for(condition: Any, timeout_s: float = 60.0, what: str = "condition") -> float:
    """Poll until `condition()` holds; returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.05)
    return time.monotonic() - start


def all_pass(srv: Server, n: int = 2) -> None:
    answer = srv.post("/score", slow(0, n))
    assert answer.status_code == 200, answer.text
    assert [r["scores"]["passes"]["score"] for r in answer.json()["results"]] == [1.0] * n


def test_a_request_past_its_timeout_gets_504_and_its_work_stops() -> None:
    with Server(SLOW, "--request-timeout", "2", "--chunk-size", "1", "--score-threads", "1") as srv:
        started = time.monotonic()
        answer = srv.post("/score", slow(2, n=6))  # 12 s of work: one sample per part, one at a time
        assert answer.status_code == 504, answer.text
        assert "over the request timeout of 2 s" in answer.json()["error"]
        stopped_after = time.monotonic() - started + wait_for(lambda: in_flight(srv) == 0, what="work stopping")
        assert stopped_after < 10, f"work went on for {stopped_after:.1f} s after the timeout"
        all_pass(srv)


def test_a_client_that_disconnects_mid_request_stops_its_work() -> None:
    with Server(SLOW, "--chunk-size", "1", "--score-threads", "1") as srv:
        url = urlparse(srv.url)
        body = httpx.Request("POST", srv.url + "/score", json=slow(2, n=6))
        with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
            sock.sendall(f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body.content)}\r\n\r\n".encode() + body.content)
            wait_for(lambda: in_flight(srv) == 6, what="the request being admitted")
            left = time.monotonic()
        took = wait_for(lambda: in_flight(srv) == 0, what="work stopping")
        assert time.monotonic() - left < 9, f"work went on for {took:.1f} s after the client left (12 s in all)"
        all_pass(srv)


def test_beyond_the_sample_budget_answers_503_with_retry_after_and_the_client_retries() -> None:
    with Server(SLOW, "--sample-budget", "2") as srv:
        answers: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda: answers.append(srv.post("/score", slow(3)))) for _ in range(2)]
        for t in threads:
            t.start()
        wait_for(lambda: in_flight(srv) == 2, what="two samples in flight")
        busy = srv.post("/score", slow(0))
        assert busy.status_code == 503 and int(busy.headers["retry-after"]) >= 1
        assert "server busy: 2 of 2 samples in flight" in busy.json()["error"]
        with RewardClient(srv.url) as client:  # retries after Retry-After until there is room
            result = client.score([{"completion": PROGRAM, "prompt": "p",
                                    "tests": {"inputs": ["5 0\n"], "outputs": ["5\n"]}}])
        assert result["results"][0]["scores"]["passes"]["score"] == 1.0
        for t in threads:
            t.join()
        assert [a.status_code for a in answers] == [200, 200]


def _busy_sandbox_worker(server_pid: int) -> Any:
    """A docker container of the server's pool that is running a program right now (its runner
    has a child), else a bwrap worker process of the server with a program running."""
    try:
        import docker

        for container in docker.from_env().containers.list(filters={"label": f"rewardkit.sandbox.owner={server_pid}"}):
            if len(container.top()["Processes"]) > 1:  # the runner (PID 1) has forked a program
                return container
    except ImportError:
        pass
    for proc in psutil.Process(server_pid).children(recursive=True):
        if "bwrap" in " ".join(proc.cmdline()) and proc.children(recursive=True):
            return proc
    return None


def test_a_sandbox_worker_killed_mid_request_marks_its_cells_and_later_requests_pass() -> None:
    with Server(SLOW) as srv:
        pid = srv.proc.pid  # type: ignore[union-attr]
        box: list[httpx.Response] = []
        request = threading.Thread(target=lambda: box.append(srv.post("/score", slow(4, n=4))))
        request.start()
        wait_for(lambda: in_flight(srv) == 4, what="the request being admitted")
        found: list[Any] = []
        wait_for(lambda: found.append(_busy_sandbox_worker(pid)) or found[-1] is not None, what="a busy worker")
        found[-1].kill()
        request.join()
        answer = box[0]
        assert answer.status_code == 200, answer.text
        cells = [r["scores"]["passes"] for r in answer.json()["results"]]
        # The backend cannot tell a runner killed from outside from one its program took down (an
        # OOM kill may pick the runner), so it reports the run as killed: the sample scores 0 with
        # that reason, not a silent 0, and the samples on other workers are untouched.
        hit = [c for c in cells if c["score"] != 1.0]
        assert hit and len(hit) < len(cells), f"one killed worker should mark some cells, not all: {cells}"
        assert all("runner died" in c["reason"] or c["error"] for c in hit), hit
        all_pass(srv, n=4)


def test_sigterm_under_load_answers_every_accepted_request_and_leaves_nothing() -> None:
    srv = Server(SLOW, "--grace", "60").__enter__()
    pid = srv.proc.pid  # type: ignore[union-attr]
    answers: list[int] = []

    def one() -> None:
        with httpx.Client(base_url=srv.url, timeout=120) as http:
            answers.append(http.post("/score", json=slow(2)).status_code)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    wait_for(lambda: in_flight(srv) == 6, what="six requests in flight")
    workers = psutil.Process(pid).children(recursive=True)
    os.kill(pid, signal.SIGTERM)
    code = srv.proc.wait(timeout=120)  # type: ignore[union-attr]
    for t in threads:
        t.join()
    assert code == 0, "".join(srv.lines)
    assert answers == [200] * 6
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    tmp = Path(tempfile.gettempdir())
    assert not list(tmp.glob(f"rewardkit-*-{pid}-*"))
    try:
        import docker

        assert not docker.from_env().containers.list(all=True, filters={"label": f"rewardkit.sandbox.owner={pid}"})
    except ImportError:
        pass


def test_a_failed_warm_up_stops_the_server_with_exit_1(tmp_path: Path) -> None:
    (tmp_path / "cold.py").write_text(
        "from rewardkit import Score, Verifier\n\n"
        "class Cold(Verifier):\n"
        "    def warm_up(self, ctx):\n        raise RuntimeError('the pool cannot start')\n"
        "    def score(self, sample, ctx):\n        return Score(1.0)\n")
    (tmp_path / "cold.yaml").write_text("version: 1\nname: cold\nrewards:\n  - name: r\n    verifier: cold:Cold\n")
    done = subprocess.run([str(Path(sys.executable).parent / "rewardkit"), "serve", str(tmp_path / "cold.yaml"),
                           "--port", "0"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1
    assert "warm-up failed: reward 'r': the pool cannot start; stopping" in done.stderr


def test_a_spec_that_does_not_validate_exits_1_with_the_located_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("version: 1\nname: bad\nrewards:\n  - name: r\n    verifier: exact_mtch\n")
    done = subprocess.run([str(Path(sys.executable).parent / "rewardkit"), "serve", str(tmp_path / "bad.yaml")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1
    assert "bad.yaml:5:15: rewards[0].verifier: unknown verifier 'exact_mtch'; did you mean 'exact_match'?" in done.stderr
