"""The public API is what `rewardkit.__all__` says (httpx's test_exported_members is the model):
every public name of the package is listed, every listed name resolves, the list is pinned, and
none of it needs torch."""

from __future__ import annotations

import subprocess
import sys
import types

import rewardkit

PUBLIC = [
    "DataError",
    "GateSyntaxError",
    "RewardkitError",
    "Sample",
    "SandboxUnavailable",
    "Score",
    "ScoreTable",
    "ScoringContext",
    "Spec",
    "SpecError",
    "TrainSetupError",
    "UnknownVerifier",
    "UnsupportedByTRL",
    "Verifier",
    "VerifierArgs",
    "YamlProblem",
    "__version__",
    "completion_text",
    "compute_advantages",
    "load_spec",
    "load_spec_text",
]


def test_all_is_pinned_and_sorted() -> None:
    assert rewardkit.__all__ == PUBLIC
    assert rewardkit.__all__ == sorted(rewardkit.__all__)


def test_all_lists_every_public_name_and_each_resolves() -> None:
    public = {
        name for name in dir(rewardkit)
        if not name.startswith("_") and not isinstance(getattr(rewardkit, name), types.ModuleType)
    }
    assert public == set(rewardkit.__all__) - {"__version__"}


def test_public_api_needs_no_torch() -> None:
    code = ("import sys, rewardkit\n"
            "[getattr(rewardkit, name) for name in rewardkit.__all__]\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_version_source() -> None:
    from importlib.metadata import version
    from pathlib import Path

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and 'version = {attr = "rewardkit.__version__"}' in pyproject
    assert version("rewardkit") == rewardkit.__version__


def test_every_builtin_verifier_has_its_own_docstring() -> None:
    """`rewardkit verifiers` shows each verifier's own text, never the base class's."""
    from rewardkit.registry import BUILTINS, resolve

    for name in BUILTINS:
        cls = resolve(name)
        assert (cls.__dict__.get("__doc__") or "").strip(), f"{name}: {cls.__qualname__} has no docstring"
