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
