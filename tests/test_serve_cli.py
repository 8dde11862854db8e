"""`rewardkit serve` refusals that happen before anything binds: a non-loopback host without a
token warns, a token variable that is unset is a usage error, and neither leaves a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rk_serve import ROOT

RK = str(Path(sys.executable).parent / "rewardkit")


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RK, "serve", *args], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)


def test_a_non_loopback_host_without_a_token_warns(tmp_path: Path) -> None:
    # an invalid spec stops the server right after the warning, so nothing binds 0.0.0.0
    (tmp_path / "bad.yaml").write_text("version: 1\nname: bad\nrewards: []\n")
    done = _serve(str(tmp_path / "bad.yaml"), "--host", "0.0.0.0")
    assert done.returncode == 1
    assert "warning: listening on 0.0.0.0 without a token" in done.stderr


def test_an_unset_token_variable_is_a_usage_error() -> None:
    done = _serve(str(ROOT / "specs" / "quickstart.yaml"), "--token-env", "RK_NO_SUCH_TOKEN_VAR",
                  env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "--token-env RK_NO_SUCH_TOKEN_VAR: the environment variable is empty or unset" in done.stderr


@pytest.mark.parametrize(("flag", "value", "says"), [("--port", "70000", "port"), ("--labels", "xml", "invalid choice")])
def test_a_bad_option_value_names_the_option(flag: str, value: str, says: str) -> None:
    done = _serve(str(ROOT / "specs" / "quickstart.yaml"), flag, value)
    assert done.returncode == 2 and says in done.stderr


def test_workers_serve_and_stop_on_sigterm_with_exit_0() -> None:
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as sock:  # a free port (workers need a fixed one)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([RK, "serve", str(ROOT / "specs" / "quickstart.yaml"), "--port", str(port), "--workers", "2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        body = {"samples": [{"completion": "<think>x</think><answer>Paris</answer>", "fields": {"answer": "Paris"}}]}
        for _ in range(4):  # spread over both workers
            assert httpx.post(f"http://127.0.0.1:{port}/score", json=body, timeout=60).json()["results"][0]["total"] == 3.0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert out.count("worker ready") == 2
