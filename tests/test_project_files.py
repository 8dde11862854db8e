"""What a fresh clone shows: a LICENSE matching pyproject's SPDX string (no setuptools license
deprecation banner), README examples that match what the commands print, and a setup script that
does not reinstall when nothing changed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rewardkit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_license_file_matches_the_spdx_string_and_ships_in_the_wheel(tmp_path: Path) -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache License" in (text := (ROOT / "LICENSE").read_text()) and "Version 2.0, January 2004" in text
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                          str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "deprecated" not in (out.stdout + out.stderr).lower()
    wheel = zipfile.ZipFile(next(tmp_path.glob("rewardkit-*.whl")))
    metadata = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist())


def test_readme_bad_yaml_example_prints_what_the_readme_shows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text()
    spec = re.search(r"```yaml\n(# bad\.yaml\n.*?)```", readme, re.S)
    shown = re.search(r"\$ rewardkit validate bad\.yaml\n(.*?)```", readme, re.S)
    assert spec and shown
    (tmp_path / "bad.yaml").write_text(spec.group(1))
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "bad.yaml"]) == 1
    got = capsys.readouterr().err.splitlines()
    want = shown.group(1).rstrip("\n").splitlines()
    assert len(got) == len(want)
    for line, expected in zip(got, want, strict=True):  # "..." in the README stands for a long list
        assert re.fullmatch(re.escape(expected).replace(r"\.\.\.", ".*"), line), (line, expected)


def test_setup_does_not_reinstall_when_nothing_changed(tmp_path: Path) -> None:
    """scripts/setup.sh in a copy of the project whose .venv python is a stand-in that logs its
    arguments (a real pip install would take minutes and the network): the second run calls no pip."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "calls.log"
    (bin_dir / "python").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (bin_dir / "python").chmod(0o755)
    (bin_dir / "activate").write_text(f'PATH="{bin_dir}:$PATH"\n')
    env = {**os.environ, "PATH": "/usr/bin:/bin"}

    def setup() -> list[str]:
        log.unlink(missing_ok=True)
        out = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, capture_output=True, text=True,
                             env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        return [line for line in log.read_text().splitlines() if line.startswith("-m pip")]

    assert len(setup()) == 3  # first run: pip, torch, the project
    assert setup() == []  # nothing changed: no pip at all
    (tmp_path / "pyproject.toml").write_text((tmp_path / "pyproject.toml").read_text() + "\n# changed\n")
    assert len(setup()) == 3
