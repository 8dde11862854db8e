"""A real `rewardkit serve` process for the server tests: started the way a user starts it (the
`rewardkit` console script of this venv, `--port 0` on 127.0.0.1), ready once it prints its ready
line, stopped with SIGTERM and required to exit 0."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
READY = re.compile(r"ready on (http://\S+)")

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'rewardkit[serve]'")


class Server:
    """`with Server(spec, "--sample-budget", "8") as srv:` ... `srv.url`, `srv.post(...)`."""

    def __init__(self, spec: str | Path, *args: str, env: dict[str, str] | None = None,
                 ready_timeout_s: float = 180.0) -> None:
        self.cmd = [str(Path(sys.executable).parent / "rewardkit"), "serve", str(spec), "--port", "0", *args]
        self.env = {**os.environ, **(env or {})}
        self.ready_timeout_s = ready_timeout_s
        self.lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=self.env, cwd=ROOT, start_new_session=True)
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"server exited with {self.proc.wait()} before ready:\n" + "".join(self.lines))
            found = READY.search(line)
            if found:
                self.url = found.group(1)
                self.http = httpx.Client(base_url=self.url, timeout=300)
                return self
        self.stop()
        raise AssertionError("server not ready in time:\n" + "".join(self.lines))

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        if body is not None:
            kwargs["json"] = body
        return self.http.post(path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def stop(self, timeout_s: float = 120.0) -> int:
        """SIGTERM, then wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise AssertionError("server did not stop within its grace period:\n" + "".join(self.lines)) from None

    def __exit__(self, *exc: object) -> None:
        if getattr(self, "http", None) is not None:
            self.http.close()
        code = self.stop()
        if exc[0] is None:
            assert code == 0, f"server exited with {code}:\n" + "".join(self.lines)


def read_samples(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def wire(sample: dict[str, Any]) -> dict[str, Any]:
    """A flat JSONL sample as a /score sample: completion, prompt, fields."""
    fields = {k: v for k, v in sample.items() if k not in ("completion", "prompt")}
    return {"completion": sample["completion"], "prompt": sample.get("prompt"), "fields": fields}
