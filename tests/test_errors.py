"""One error family: every error rewardkit raises on purpose is a `RewardkitError`, keeps its
builtin base (so `except ValueError` still catches what it did), is drawn in the tree at the top of
`rewardkit/errors.py`, and is caught once by the CLI."""

from __future__ import annotations

import importlib
import re

import pytest

import rewardkit.errors as errors
from rewardkit.cli import main
from rewardkit.errors import RewardkitError

FAMILY = {  # class name -> (module that defines it, builtin base it keeps)
    "SpecError": ("rewardkit.errors", ValueError),
    "YamlProblem": ("rewardkit.errors", ValueError),
    "GateSyntaxError": ("rewardkit.errors", ValueError),
    "UnknownVerifier": ("rewardkit.errors", LookupError),
    "GroupFieldError": ("rewardkit.errors", ValueError),
    "UnsupportedByTRL": ("rewardkit.errors", ValueError),
    "TrainSetupError": ("rewardkit.errors", ValueError),
    "DataError": ("rewardkit.errors", ValueError),
    "SandboxUnavailable": ("rewardkit.errors", RuntimeError),
    "RunnerGone": ("rewardkit.errors", RuntimeError),
    "RewardErrorsExceeded": ("rewardkit.trainers.error_guard", RuntimeError),
    "RemoteScoringError": ("rewardkit.client", RuntimeError),
    "VerlRewardError": ("rewardkit.integrations.verl", RuntimeError),
    "RequestProblem": ("rewardkit.serve.errors", Exception),  # answered as an HTTP status, never raised to callers
}

# where each used to be defined: the old import paths keep working
OLD_HOMES = {
    "GateSyntaxError": "rewardkit.gates",
    "YamlProblem": "rewardkit.yaml_positions",
    "UnknownVerifier": "rewardkit.registry",
    "GroupFieldError": "rewardkit.check",
    "UnsupportedByTRL": "rewardkit.integrations.trl",
    "SandboxUnavailable": "rewardkit.sandbox.select",
    "RunnerGone": "rewardkit.sandbox.pool",
    "TrainSetupError": "rewardkit.trainers.data",
    "DataError": "rewardkit.trainers.data",
}


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_every_error_is_a_rewardkit_error_with_its_builtin_base(name: str) -> None:
    module, base = FAMILY[name]
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, RewardkitError) and issubclass(cls, base)


@pytest.mark.parametrize("name", sorted(OLD_HOMES))
def test_old_import_paths_still_work(name: str) -> None:
    assert getattr(importlib.import_module(OLD_HOMES[name]), name) is getattr(errors, name)


def test_the_docstring_draws_the_whole_family() -> None:
    doc = errors.__doc__ or ""
    drawn = set(re.findall(r"[├└]── (\w+)", doc))
    assert drawn == set(FAMILY)
    defined_here = {n for n, v in vars(errors).items()
                    if isinstance(v, type) and issubclass(v, RewardkitError) and v is not RewardkitError}
    assert defined_here == {n for n, (m, _) in FAMILY.items() if m == "rewardkit.errors"}


def test_cli_prints_a_rewardkit_error_without_traceback(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = tmp_path / "s.jsonl"
    samples.write_text('{"completion": "x"}\n', encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nname: t\nrewards:\n  - {name: a, verifier: exact_match}\n", encoding="utf-8")
    assert main(["check", str(spec), str(samples), "--group-by", "question"]) == 2  # usage: GroupFieldError
    assert "error: --group-by 'question': no sample has that field" in capsys.readouterr().err
    assert main(["verifiers", "exact_mtch"]) == 1  # UnknownVerifier
    err = capsys.readouterr().err
    assert err.startswith("error: unknown verifier 'exact_mtch'") and "Traceback" not in err
