"""Where verifier names come from: built-ins, the `rewardkit.verifiers` entry-point group, and
`module:Class` paths written directly in a spec."""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from pathlib import Path

from rewardkit.errors import UnknownVerifier
from rewardkit.verifier import Verifier

ENTRY_POINT_GROUP = "rewardkit.verifiers"

# Built-ins are imported lazily so that `rewardkit validate` does not pay for math-verify or docker.
BUILTINS: dict[str, str] = {
    "exact_match": "rewardkit.verifiers.exact_match:ExactMatch",
    "python": "rewardkit.verifiers.python_function:PythonFunction",
    "trl_reward": "rewardkit.verifiers.trl_reward:TrlReward",
    "tool_call_match": "rewardkit.verifiers.tool_call_match:ToolCallMatch",
    "format_regex": "rewardkit.verifiers.format_regex:FormatRegex",
    "length_limit": "rewardkit.verifiers.length_limit:LengthLimit",
    "math_equivalence": "rewardkit.verifiers.math_equivalence:MathEquivalence",
    "code_tests": "rewardkit.verifiers.code_tests:CodeTests",
    "bug_detector": "rewardkit.verifiers.bug_detector:BugDetector",
}


def _import_path(path: str) -> type[Verifier]:
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    obj = getattr(module, attr)
    if not (isinstance(obj, type) and issubclass(obj, Verifier)):
        raise TypeError(f"{path} is not a subclass of rewardkit.Verifier")
    return obj


def _entry_point_names() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> dict[str, str]:
    """Every verifier name usable in a spec, mapped to its `module:Class` path."""
    names = dict(BUILTINS)
    for name, value in _entry_point_names().items():
        names.setdefault(name, value)
    return names


def resolve(name: str) -> type[Verifier]:
    """The verifier class for a spec's `verifier:` value; raises UnknownVerifier with suggestions."""
    names = available()
    if name in names:
        path = names[name]
    elif ":" in name:
        path = name
    else:
        close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownVerifier(
            f"unknown verifier {name!r}{hint} (available: {', '.join(sorted(names))}; "
            "or a 'module:Class' path)"
        )
    try:
        return _import_path(path)
    except ModuleNotFoundError as exc:
        if name in BUILTINS and (exc.name or "").startswith("rewardkit."):
            raise UnknownVerifier(_broken_checkout(name, exc)) from exc
        raise UnknownVerifier(f"verifier {name!r} -> {path!r} cannot be loaded: {exc}") from exc
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise UnknownVerifier(f"verifier {name!r} -> {path!r} cannot be loaded: {exc}") from exc


def _broken_checkout(name: str, exc: ModuleNotFoundError) -> str:
    """A built-in that cannot be imported means rewardkit itself is incomplete, not the spec."""
    import rewardkit

    home = Path(rewardkit.__file__).parent
    return (
        f"built-in verifier {name!r} cannot be imported ({exc}): the rewardkit at {home} is incomplete. "
        f"In a source checkout, {home}/verifiers, sandbox and trainers are links to the top-level "
        "folders; a copy or checkout without symlinks lacks them: check out again with "
        "`git config core.symlinks true`, or install rewardkit with `pip install .`"
    )
