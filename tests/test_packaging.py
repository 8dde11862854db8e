"""The package installs as the design says: editable and wheel installs into fresh venvs import
rewardkit with its three mapped subpackages, run the CLI, and never ship a top-level `verifiers`.
Third-party verifiers arrive through the `rewardkit.verifiers` entry-point group."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = textwrap.dedent("""\
    import importlib.util, json, sys
    import rewardkit, rewardkit.verifiers, rewardkit.sandbox, rewardkit.trainers, rewardkit.spec
    import rewardkit.verifiers.exact_match
    print(json.dumps({
        "rewardkit": rewardkit.__file__,
        "verifiers": rewardkit.verifiers.__file__,
        "sandbox": rewardkit.sandbox.__file__,
        "trainers": rewardkit.trainers.__file__,
        "top_level_verifiers": importlib.util.find_spec("verifiers") is not None,
        "torch_loaded": "torch" in sys.modules,
    }))
    """)


def _fresh_venv(path: Path) -> Path:
    """A new venv whose dependencies come from this interpreter's site-packages (added as a plain
    path, so the editable rewardkit of the dev environment is NOT visible in it)."""
    venv.create(path, with_pip=False)
    python = path / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check"], check=True, cwd=ROOT)


def _pip_in(python: Path, *args: str) -> None:
    """Run pip as the fresh venv's interpreter: it installs into that venv and leaves the dev
    environment's own rewardkit alone ("outside environment")."""
    out = subprocess.run([python, "-m", "pip", *args, "--no-deps", "--no-build-isolation",
                          "--disable-pip-version-check", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def _probe(python: Path, tmp_path: Path) -> dict[str, object]:
    import json

    out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _cli_help(venv_dir: Path, tmp_path: Path) -> str:
    out = subprocess.run([venv_dir / "bin" / "rewardkit", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _clean_source(tmp_path: Path) -> Path:
    """The tracked files (links kept as links), so the wheel is built from what git holds: building
    in the checkout itself would reuse its `build/` folder, stale modules included."""
    import shutil

    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    src = tmp_path / "src"
    for name in files.decode().split("\0"):
        if not name or not os.path.lexists(ROOT / name):
            continue
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():
            target.symlink_to(os.readlink(ROOT / name))
        else:
            shutil.copy2(ROOT / name, target)
    return src


def test_wheel_installs_into_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(_clean_source(tmp_path))], check=True, capture_output=True)
    wheel = next(dist.glob("rewardkit-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "rewardkit/verifiers/exact_match.py" in names
    assert "rewardkit/verifiers/_code/harness.py" in names  # helpers' subfolders; the harness runs as a file
    assert "rewardkit/sandbox/base.py" in names and "rewardkit/trainers/__init__.py" in names
    assert not any(n.startswith(("verifiers/", "sandbox/", "trainers/", "tests/")) for n in names)
    env_dir = tmp_path / "venv"
    python = _fresh_venv(env_dir)
    _pip_in(python, "install", str(wheel))
    info = _probe(python, tmp_path)
    for key in ("rewardkit", "verifiers", "sandbox", "trainers"):
        assert str(info[key]).startswith(str(env_dir)), info
    assert info["top_level_verifiers"] is False
    assert info["torch_loaded"] is False
    assert "validate" in _cli_help(env_dir, tmp_path)


def test_editable_install_into_fresh_venv(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    python = _fresh_venv(env_dir)
    _pip_in(python, "install", "-e", str(ROOT))
    info = _probe(python, tmp_path)
    # the import path is the folder path: rewardkit/verifiers is a link to the top-level folder
    assert info["verifiers"] == str(ROOT / "rewardkit" / "verifiers" / "__init__.py")
    assert Path(str(info["verifiers"])).resolve() == ROOT / "verifiers" / "__init__.py"
    assert Path(str(info["sandbox"])).resolve() == ROOT / "sandbox" / "__init__.py"
    assert info["top_level_verifiers"] is False
    assert "check" in _cli_help(env_dir, tmp_path)


def test_editable_install_sees_modules_added_later(tmp_path: Path) -> None:
    """The editable install maps only the name `rewardkit` to the checkout's folder (no link tree
    to rebuild, no repository root on sys.path), so a module added after installing imports."""
    env_dir = tmp_path / "venv"
    python = _fresh_venv(env_dir)
    _pip_in(python, "install", "-e", str(ROOT))
    added = ROOT / "verifiers" / f"_added_after_install_{os.getpid()}.py"
    added.write_text("VALUE = 42\n")
    try:
        out = subprocess.run([python, "-c", f"import rewardkit.verifiers.{added.stem} as m; print(m.VALUE)"],
                             capture_output=True, text=True, cwd=tmp_path)
    finally:
        added.unlink()
    assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr


def test_uninstalled_checkout_loads_builtin_verifiers(tmp_path: Path) -> None:
    """Run from the repository root without installing rewardkit: the folder tree is the import
    tree, so the built-in verifiers load (they used to fail with "No module named ...")."""
    python = _fresh_venv(tmp_path / "venv")
    code = ("import glob\n"
            "from rewardkit.spec import load_spec\n"
            "for path in sorted(glob.glob('specs/*.yaml')):\n"
            "    with load_spec(path) as spec:\n"
            "        print(*(type(r.verifier).__module__ for r in spec.rewards))\n")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for module in ("math_equivalence", "tool_call_match", "code_tests", "format_regex"):
        assert f"rewardkit.verifiers.{module}" in out.stdout


PLUGIN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "rk-shout-plugin"
version = "0.0.1"

[project.entry-points."rewardkit.verifiers"]
shout = "rk_shout_plugin:Shout"
"""

PLUGIN_MODULE = '''\
from rewardkit import Score, Verifier, VerifierArgs


class ShoutArgs(VerifierArgs):
    min_ratio: float = 0.5


class Shout(Verifier):
    """1 when at least `min_ratio` of the letters are upper case."""

    name = "shout"
    Args = ShoutArgs

    def score(self, sample, ctx):
        letters = [c for c in sample["completion"] if c.isalpha()]
        ratio = sum(c.isupper() for c in letters) / max(1, len(letters))
        return Score(float(ratio >= self.args.min_ratio), f"{ratio:.0%} upper case")
'''

PLUGIN_SPEC = """\
version: 1
name: plugin
rewards:
  - name: loud
    verifier: shout
    args: {min_ratio: 0.8}
"""


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("plugin-src")
    (src / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (src / "rk_shout_plugin.py").write_text(PLUGIN_MODULE)
    target = tmp_path_factory.mktemp("plugin-target")
    _pip("install", "--target", str(target), str(src))
    assert list(target.glob("rk_shout_plugin-0.0.1.dist-info"))
    return target


def test_entry_point_plugin_is_used_from_a_spec(plugin_dir: Path, tmp_path: Path) -> None:
    spec = tmp_path / "plugin.yaml"
    spec.write_text(PLUGIN_SPEC)
    samples = tmp_path / "s.jsonl"
    samples.write_text('{"completion": "HELLO THERE"}\n{"completion": "quiet please"}\n')
    env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    out = subprocess.run([sys.executable, "-m", "rewardkit.cli", "check", str(spec), str(samples), "--json"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    import json

    report = json.loads(out.stdout)
    assert [s["scores"]["loud"]["score"] for s in report["samples"]] == [1.0, 0.0]
    assert report["samples"][1]["scores"]["loud"]["reason"] == "0% upper case"
    listing = subprocess.run([sys.executable, "-m", "rewardkit.cli", "verifiers", "--json"],
                             capture_output=True, text=True, env=env, check=True).stdout
    assert json.loads(listing)["shout"]["path"] == "rk_shout_plugin:Shout"


def test_entry_point_plugin_args_are_validated(plugin_dir: Path, tmp_path: Path) -> None:
    spec = tmp_path / "plugin.yaml"
    spec.write_text(PLUGIN_SPEC.replace("min_ratio: 0.8", "min_ration: 0.8"))
    env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    out = subprocess.run([sys.executable, "-m", "rewardkit.cli", "validate", str(spec)],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 1
    assert f"{spec}:6:12: rewards[0].args.min_ration: unknown key 'min_ration'; did you mean 'min_ratio'?" in out.stderr


def test_module_class_path_needs_no_installation(tmp_path: Path) -> None:
    (tmp_path / "my_rewards.py").write_text(PLUGIN_MODULE.replace("rewardkit import", "rewardkit import"))
    spec = tmp_path / "local.yaml"
    spec.write_text(PLUGIN_SPEC.replace("verifier: shout", "verifier: my_rewards:Shout"))
    from rewardkit.spec import load_spec

    with load_spec(spec) as loaded:  # the spec's own folder is importable
        table = loaded.score([{"completion": "LOUD"}])
    assert table.values[0, 0] == 1.0
