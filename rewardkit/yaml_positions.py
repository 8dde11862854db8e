"""YAML loading that remembers where every key and value came from (line and column), so that
every spec error can point at its place in the file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from rewardkit.errors import YamlProblem

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


class _Loader(yaml.SafeLoader):
    pass


def _position(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def load_with_positions(text: str) -> tuple[Any, dict[Path, Position]]:
    """Parse YAML text; return the data and a map from key path to the position of its value
    (for a mapping key, `path + ("<key>",)` holds the key's own position)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = _position(mark) if mark is not None else None
        problem = exc.problem or str(exc)
        if position is not None and "\t" in _line(text, position.line):
            problem += " (the line is indented with a tab; YAML allows only spaces)"
        if "unknown escape character" in problem:  # a regex like "\s+" in double quotes
            problem += (" (in a double-quoted YAML string a backslash starts an escape; write regular "
                        "expressions in single quotes, e.g. '\\s+', or double each backslash)")
        raise YamlProblem(f"invalid YAML: {problem}", position) from exc
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}", None) from exc
    positions: dict[Path, Position] = {}
    if node is None:
        return None, positions
    data = _build(node, (), positions)
    return data, positions


def _line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _build(node: yaml.Node, path: Path, positions: dict[Path, Position]) -> Any:
    positions[path] = _position(node.start_mark)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _Loader.construct_object(_Loader(""), key_node, deep=True) if not isinstance(
                key_node, yaml.ScalarNode
            ) else _scalar(key_node)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise YamlProblem("invalid YAML: mapping keys must be plain scalars", _position(key_node.start_mark))
            if key in out:
                first = positions.get(path + (key, "<key>"))  # type: ignore[operator]
                where = f" (first defined on line {first.line})" if first else ""
                raise YamlProblem(f"duplicate key {key!r}{where}", _position(key_node.start_mark))
            positions[path + (key, "<key>")] = _position(key_node.start_mark)  # type: ignore[operator]
            out[key] = _build(value_node, path + (key,), positions)  # type: ignore[operator]
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), positions) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def nearest_position(positions: dict[Path, Position], path: Path, prefer_key: bool = False) -> Position | None:
    """The position of `path`, or of its closest ancestor that exists in the file."""
    candidates = [path + ("<key>",), path] if prefer_key else [path, path + ("<key>",)]
    for candidate in candidates:
        if candidate in positions:
            return positions[candidate]
    for cut in range(len(path) - 1, -1, -1):
        if path[:cut] in positions:
            return positions[path[:cut]]
    return None
