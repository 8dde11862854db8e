"""Spec errors that say where (file, line, column, key path) and what would be valid."""

from __future__ import annotations

from dataclasses import dataclass

from rewardkit.yaml_positions import Path, Position


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


class SpecError(ValueError):
    """One or more problems in a spec file; `issues` lists them all, each with its place."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = issues
        count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
        file = issues[0].file if issues else "spec"
        super().__init__(f"{file}: {count}\n" + "\n".join(f"  {issue}" for issue in issues))
