"""Every error rewardkit raises on purpose, in one family.

    RewardkitError                          the message is complete: where, what was received, the fix
    ├── SpecError (ValueError)              a spec file's problems, all at once, each at file:line:col
    ├── YamlProblem (ValueError)            YAML that cannot be read at all (syntax, tabs, duplicate keys)
    ├── GateSyntaxError (ValueError)        a `when:` expression that does not parse
    ├── UnknownVerifier (LookupError)       a verifier name that is not built in, a plugin or a path
    ├── GroupFieldError (ValueError)        `check --group-by` names a field no sample has
    ├── UnsupportedByTRL (ValueError)       a spec setting TRL's GRPOTrainer cannot reproduce
    ├── TrainSetupError (ValueError)        a training problem found before step 1 (setting, model, path)
    │   └── DataError                       bad or missing training data, with its file and row
    ├── RewardErrorsExceeded (RuntimeError) a reward keeps failing: training stops   [trainers.error_guard]
    ├── SandboxUnavailable (RuntimeError)   the named sandbox backend cannot run on this machine
    ├── RunnerGone (RuntimeError)           a warm sandbox's runner stopped answering or died
    ├── RemoteScoringError (RuntimeError)   the reward server refused or failed a request   [client]
    ├── RequestProblem                      a request the reward server refuses: status, field path   [serve.errors]
    └── VerlRewardError (RuntimeError)      a spec or reward that cannot serve verl   [integrations.verl]

Each keeps a builtin base, so code written as `except ValueError` still catches what it did
(pydantic does the same: `class PydanticUserError(PydanticErrorMixin, TypeError)`). The classes
marked [module] live next to the code that raises them; every other one is defined here and
re-exported where it used to be (`rewardkit.gates.GateSyntaxError` still works). The CLI catches
`RewardkitError` once and prints the message without a traceback.

Not in the family, on purpose: what goes wrong with one completion or one data row inside a
verifier (`ParseError`, `TestDataError`, a timeout) is data, not an exception for the caller: it
becomes that cell's `Score` with an `error` and a reason, and one bad sample never stops a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rewardkit.yaml_positions import Path, Position


class RewardkitError(Exception):
    """Base of every error rewardkit raises on purpose; `str(error)` is the whole message."""


def format_path(path: Path) -> str:
    """`rewards[1].args.max_tokens` style."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass(frozen=True)
class SpecIssue:
    file: str
    position: Position | None
    path: Path
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.position is not None:
            where += f":{self.position.line}:{self.position.column}"
        key = f" {format_path(self.path)}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class SpecError(RewardkitError, ValueError):
    """One or more problems in a spec file; `issues` lists them all, each with its place."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = issues
        count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
        file = issues[0].file if issues else "spec"
        super().__init__(f"{file}: {count}\n" + "\n".join(f"  {issue}" for issue in issues))


class YamlProblem(RewardkitError, ValueError):
    """YAML that cannot be read at all (syntax, tabs, duplicate keys)."""

    def __init__(self, message: str, position: Position | None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class GateSyntaxError(RewardkitError, ValueError):
    """A `when:` expression that does not parse; `column` is 1-based within the expression."""

    def __init__(self, message: str, expression: str, column: int) -> None:
        super().__init__(f"{message} at column {column} of {expression!r}")
        self.column = column


class UnknownVerifier(RewardkitError, LookupError):
    """A verifier name that is neither built in, nor an entry point, nor an importable path."""


class GroupFieldError(RewardkitError, ValueError):
    """`--group-by FIELD` names a field no sample has: every sample would be a group of its own
    (all advantages 0), which is never what was meant."""


class UnsupportedByTRL(RewardkitError, ValueError):
    """A spec setting that TRL's GRPOTrainer cannot reproduce, so its advantages would differ."""


class TrainSetupError(RewardkitError, ValueError):
    """A problem found before step 1 (a setting, the data, a model path), said with its place;
    the CLI prints it without a traceback."""


class DataError(TrainSetupError):
    """Bad or missing training data, with the file and row it came from."""


class SandboxUnavailable(RewardkitError, RuntimeError):
    """The named backend cannot run on this machine; the message says why."""


class RunnerGone(RewardkitError, RuntimeError):
    """The runner stopped answering or died."""
