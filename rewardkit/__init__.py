"""rewardkit: compose verifiers into multi-reward RL signals from one YAML file.

The public surface, importable without torch: loading a spec (`load_spec`, `load_spec_text`,
`Spec`) and its scores (`ScoreTable`), advantages (`compute_advantages`), the verifier contract
(`Verifier`, `VerifierArgs`, `Score`, `Sample`, `ScoringContext`, `completion_text`) and the
errors (`RewardkitError` and its family, drawn in `rewardkit.errors`). Everything else is reached
through its module (`rewardkit.advantages`, `rewardkit.integrations.trl`, `rewardkit.trainers`).
"""

__version__ = "0.1.0"  # the one version source: pyproject.toml reads it (tool.setuptools.dynamic)

import typing as _typing

from rewardkit.errors import (
    DataError,
    GateSyntaxError,
    RewardkitError,
    SandboxUnavailable,
    SpecError,
    TrainSetupError,
    UnknownVerifier,
    UnsupportedByTRL,
    YamlProblem,
)
from rewardkit.verifier import Sample, Score, ScoringContext, Verifier, VerifierArgs, completion_text

if _typing.TYPE_CHECKING:
    from rewardkit.advantages import compute_advantages
    from rewardkit.scoring import ScoreTable
    from rewardkit.spec import Spec, load_spec, load_spec_text

# Imported on first use: worker processes (`python -m rewardkit.verifiers...`) import this package
# too, and loading specs and numpy up front cost them ~0.2 s each on a busy 2-core box.
_LAZY = {
    "compute_advantages": "rewardkit.advantages",
    "ScoreTable": "rewardkit.scoring",
    "Spec": "rewardkit.spec",
    "load_spec": "rewardkit.spec",
    "load_spec_text": "rewardkit.spec",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rewardkit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
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
