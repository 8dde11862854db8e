"""Read tool calls out of what a policy wrote, and reference calls out of a data row.

Policies emit calls in several shapes; all of them become a list of `ToolCall(name, arguments)`:

- Hermes / Qwen tags: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, one or many
  blocks; a block may also hold a JSON list, or one JSON object per line (ToolRL's layout).
- An OpenAI-style assistant message with ``tool_calls`` (``arguments`` may be a JSON string).
- A bare JSON object or list (optionally inside a Markdown code fence), after any `</think>`.
- Python call syntax, ``f(a=1, b="x")`` or ``[f(a=1), g(b=2)]`` (BFCL's prompting format). It is
  parsed with `ast` and never evaluated: only literals (numbers, strings, booleans, None, lists,
  tuples, dicts, and a sign on a number) are accepted; anything else is rejected with a reason.
  Like bare JSON, it is read from what follows the last `</think>`, if any.

References become `RefCall(name, params)` where each parameter maps to a list of allowed values,
BFCL's possible-answer format; the string ``""`` among them means the parameter may be left out.
A plain ``{name, arguments}`` reference is the special case of one allowed value per argument
(so there too an argument whose value is ``""`` may also be left out).

Every failure is a `ParseError` whose message says what was wrong and where; nothing here
raises anything else for any input (deep nesting, huge numbers and bad Unicode included).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

MAX_DEPTH = 32
"""Deepest nesting of argument values we accept; deeper input is rejected, not recursed into."""


class ParseError(ValueError):
    """The completion (or the reference) does not hold well-formed tool calls."""


class ToolCall(NamedTuple):
    """One call the policy made (a tuple: thousands are made per training step)."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class RefCall:
    """One expected call: each parameter maps to its allowed values (`""` = may be omitted)."""

    name: str
    params: dict[str, list[Any]]
    # one concrete call ({name, arguments} or call text), not BFCL's alternatives; not part of what
    # the call is, so two readings of the same expected call still compare equal
    exact: bool = field(default=False, compare=False)


def show(value: Any, width: int = 60) -> str:
    """A short, printable, one-line rendering of a value for a reason string."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a reason must never be the thing that fails
        text = f"<{type(value).__name__}>"
    text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text if len(text) <= width else text[: width - 3] + "..."


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests lists/dicts deeper than `limit` (level by level: safe on any depth)."""
    level = [value]
    depth = 0
    while level:
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is dict:
                below.extend(item.values())
            elif kind is list or kind is tuple:
                below.extend(item)
        if not below:
            return False
        depth += 1
        if depth > limit:
            return True
        level = below
    return False


# --- completions ----------------------------------------------------------------------------------

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_PY_CALL_START = re.compile(r"\[?\s*[A-Za-z_][\w.]*\s*\(")


def parse_completion(
    completion: Any, *, python_syntax: bool = True, max_calls: int = 64, max_chars: int = 200_000
) -> list[ToolCall]:
    """The tool calls in a completion: a string, one chat message, or a list of chat messages.

    Returns `[]` when the completion holds no tool call at all (a plain-text answer); raises
    `ParseError` when it tries to call a tool but the call is malformed, or when a text to parse
    is longer than `max_chars` (so that the time spent on one completion stays bounded).

    Argument values are not walked here: JSON and Python parsing already refuse pathological
    nesting, and the matcher only descends as deep as the reference does.
    """
    if type(completion) is not str:
        completion = _completion_text(completion, max_calls, max_chars)
        if type(completion) is list:  # the message's own `tool_calls`
            return completion
    if len(completion) > max_chars:
        raise ParseError(
            f"completion is {len(completion)} characters, over max_chars={max_chars}; not parsed"
        )
    calls = parse_text(completion, python_syntax=python_syntax)
    if len(calls) > max_calls:
        raise ParseError(f"{len(calls)} tool calls, more than max_calls={max_calls}")
    return calls


def _completion_text(completion: Any, max_calls: int, max_chars: int) -> str | list[ToolCall]:
    """A non-string completion as text to parse, or the calls of its assistant message."""
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        message = _last_assistant(completion)
        if message is None:
            return []
        raw_calls = message.get("tool_calls")
        if raw_calls:
            if not isinstance(raw_calls, (list, tuple)):
                raise ParseError(f"'tool_calls' must be a list, got {type(raw_calls).__name__}")
            if len(raw_calls) > max_calls:
                raise ParseError(f"{len(raw_calls)} tool calls, more than max_calls={max_calls}")
            return [
                _call_from_object(item, f"tool_calls[{i}]", max_chars) for i, item in enumerate(raw_calls)
            ]
        completion = message.get("content") or ""
        if isinstance(completion, list):  # content parts: [{"type": "text", "text": ...}]
            completion = "".join(str(p.get("text", "")) for p in completion if isinstance(p, Mapping))
    if isinstance(completion, (bytes, bytearray)):
        completion = bytes(completion).decode("utf-8", errors="replace")
    if not isinstance(completion, str):
        raise ParseError(f"completion must be text or chat messages, got {type(completion).__name__}")
    return completion


def parse_text(text: str, *, python_syntax: bool = True) -> list[ToolCall]:
    """The tool calls written in `text` (see the module docstring for the formats)."""
    if "<tool_call>" in text:
        calls: list[ToolCall] = []
        for i, block in enumerate(_tag_blocks(text)):
            calls.extend(_parse_block(block.strip(), i + 1, python_syntax))
        return calls
    body = text.rpartition("</think>")[2].strip()  # reasoning comes first; calls after it
    fenced = _FENCE.search(body) if "```" in body else None
    if fenced is not None:
        body = fenced.group(1).strip()
    if python_syntax and _PY_CALL_START.match(body):
        return parse_python_calls(body)
    if body[:1] in ("{", "["):
        return _calls_from_json(_loads(body), "the completion")
    return []


def _tag_blocks(text: str) -> list[str]:
    """The insides of `<tool_call>...</tool_call>`; an unclosed last block runs to the end."""
    blocks = []
    start = text.find("<tool_call>")
    while start != -1:
        start += len("<tool_call>")
        end = text.find("</tool_call>", start)
        if end == -1:
            blocks.append(text[start:])
            break
        blocks.append(text[start:end])
        start = text.find("<tool_call>", end + len("</tool_call>"))
    return blocks


def _parse_block(block: str, number: int, python_syntax: bool) -> list[ToolCall]:
    where = f"<tool_call> block {number}"
    if not block:
        raise ParseError(f"{where} is empty")
    try:
        return _calls_from_json(_loads(block), where)
    except ParseError as first:
        lines = [line for line in block.splitlines() if line.strip()]
        if len(lines) > 1:  # one JSON object per line
            try:
                calls: list[ToolCall] = []
                for j, line in enumerate(lines):
                    calls.extend(_calls_from_json(_loads(line), f"{where}, line {j + 1}"))
                return calls
            except ParseError:
                pass
        if python_syntax and _PY_CALL_START.match(block):
            return parse_python_calls(block)
        raise ParseError(f"{where}: {first}") from None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ParseError("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ParseError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ParseError(f"not valid JSON: {exc}") from None


def _last_assistant(messages: Sequence[Any]) -> Mapping[str, Any] | None:
    for message in reversed(list(messages)):
        if isinstance(message, Mapping) and message.get("role", "assistant") == "assistant":
            return message
    return None


def _calls_from_json(obj: Any, where: str) -> list[ToolCall]:
    if isinstance(obj, list):
        return [_call_from_object(item, f"{where}, item {i + 1}") for i, item in enumerate(obj)]
    if isinstance(obj, dict) and isinstance(obj.get("tool_calls"), list):
        return _calls_from_json(obj["tool_calls"], where)
    return [_call_from_object(obj, where)]


def _call_from_object(obj: Any, where: str, max_chars: int | None = None) -> ToolCall:
    """One call from `{name, arguments}`, `{function: {...}}` (OpenAI) or `{name: {args}}` (BFCL)."""
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise ParseError(f"{where}: a tool call must be a JSON object, got {show(obj, 40)}")
    function = obj.get("function")
    if function is not None and isinstance(function, Mapping):
        obj = function
    if "name" in obj:
        name = obj["name"]
        if "arguments" in obj:
            args = obj["arguments"]
        else:
            args = obj.get("parameters", {})
    elif len(obj) == 1:
        ((name, args),) = obj.items()
    else:
        raise ParseError(f"{where}: a tool call needs a 'name' (keys found: {show(sorted(obj), 60)})")
    if not isinstance(name, str) or not name:
        raise ParseError(f"{where}: the tool name must be a non-empty string, got {show(name, 40)}")
    if isinstance(args, str):
        if max_chars is not None and len(args) > max_chars:
            raise ParseError(f"{where}: arguments are {len(args)} characters, over max_chars={max_chars}")
        args = _loads(args) if args.strip() else {}
    if args is None:
        args = {}
    if type(args) is not dict:
        if not isinstance(args, Mapping):
            raise ParseError(f"{where}: arguments of {name} must be an object, got {show(args, 40)}")
        args = dict(args)
    return ToolCall(name, args)


# --- Python syntax --------------------------------------------------------------------------------


def parse_python_calls(text: str) -> list[ToolCall]:
    """`f(a=1)` or `[f(a=1), g(b="x")]` -> calls. Parsed with `ast`, never evaluated."""
    source = text.strip()
    if source[:1] == "`" or source[-1:] == "`":
        source = source.strip("`").strip()
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, UnicodeError, RecursionError, MemoryError) as exc:
        detail = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise ParseError(f"not valid Python call syntax: {detail}") from None
    body = tree.body
    nodes = body.elts if isinstance(body, (ast.List, ast.Tuple)) else [body]
    calls = []
    for i, node in enumerate(nodes):
        if not isinstance(node, ast.Call):
            raise ParseError(f"item {i + 1} is not a function call: {show(_unparse(node), 50)}")
        calls.append(_python_call(node))
    return calls


def _python_call(node: ast.Call) -> ToolCall:
    name = _dotted_name(node.func)
    if name is None:
        raise ParseError(f"the called object is not a plain or dotted name: {show(_unparse(node.func), 50)}")
    if node.args:
        raise ParseError(f"{name}: positional arguments are not supported; name each argument (param=value)")
    args: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ParseError(f"{name}: '**' unpacking is not supported; write each argument out")
        try:
            args[keyword.arg] = _literal(keyword.value, 0)
        except ParseError as exc:
            raise ParseError(f"{name}: argument {keyword.arg!r}: {exc}") from None
    return ToolCall(name, args)


def _dotted_name(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


_LITERAL_TYPES = frozenset({str, int, float, bool, type(None)})


def _literal(node: ast.expr, depth: int) -> Any:
    if type(node) is ast.Constant:  # the usual case, first
        constant = node.value
        if type(constant) in _LITERAL_TYPES:
            return constant
        raise ParseError(f"{type(constant).__name__} literals are not supported")
    if depth > MAX_DEPTH:
        raise ParseError(f"value nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant):
        constant = node.value
        if constant is None or isinstance(constant, (bool, int, float, str)):
            return constant
        raise ParseError(f"{type(constant).__name__} literals are not supported")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = node.operand
        number = operand.value if isinstance(operand, ast.Constant) else None
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return -number if isinstance(node.op, ast.USub) else number
        raise ParseError(f"only a number may carry a sign, not {show(_unparse(node), 40)}")
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(item, depth + 1) for item in node.elts]
    if isinstance(node, ast.Dict):
        out: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise ParseError("'**' unpacking inside a dict is not supported")
            k = _literal(key, depth + 1)
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise ParseError(f"dict key {show(k, 30)} is not a string or number")
            out[k] = _literal(value, depth + 1)
        return out
    if isinstance(node, ast.Name):
        raise ParseError(f"{node.id} is a variable name, not a literal value (quote it if it is text)")
    raise ParseError(f"{show(_unparse(node), 40)} is not a literal value (it would need evaluating)")


def _unparse(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001 - only used to describe a node in a reason
        return type(node).__name__


# --- references -----------------------------------------------------------------------------------


def parse_reference(raw: Any, *, python_syntax: bool = True) -> list[RefCall]:
    """Reference calls from a data field.

    Accepted shapes: a list of `{name, arguments}` (exact values), BFCL's possible answers
    `[{func: {param: [allowed, ...]}}]` (or a record with `ground_truth`), one such object, or a
    string holding any of those as JSON, or `<tool_call>` text / Python call syntax.
    """
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped[:1] in ("[", "{"):
            try:
                raw = json.loads(stripped)
            except (ValueError, RecursionError):
                raw = None
        else:
            raw = None
        if raw is None:
            calls = parse_text(stripped, python_syntax=python_syntax)
            return [RefCall(c.name, {k: [_as_allowed(v)] for k, v in c.arguments.items()}, exact=True)
                    for c in calls]
    if isinstance(raw, Mapping) and "ground_truth" in raw:
        raw = raw["ground_truth"]
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, (list, tuple)):
        raise ParseError(f"reference must be a list of calls, got {type(raw).__name__}")
    if too_deep(raw, MAX_DEPTH + 4):
        raise ParseError(f"reference nests deeper than {MAX_DEPTH} levels")
    return [_ref_call(item, i) for i, item in enumerate(raw)]


def _ref_call(item: Any, index: int) -> RefCall:
    where = f"reference call {index + 1}"
    if not isinstance(item, Mapping):
        raise ParseError(f"{where} must be an object, got {type(item).__name__}")
    if "name" in item or isinstance(item.get("function"), Mapping):
        call = _call_from_object(item, where)
        return RefCall(call.name, {k: [_as_allowed(v)] for k, v in call.arguments.items()}, exact=True)
    if len(item) != 1:
        raise ParseError(f"{where}: expected {{name, arguments}} or {{function_name: {{param: [values]}}}}")
    ((name, params),) = item.items()
    if not isinstance(params, Mapping):
        raise ParseError(f"{where}: parameters of {name} must be an object")
    allowed = {str(k): (list(v) if isinstance(v, list) else [_as_allowed(v)]) for k, v in params.items()}
    return RefCall(str(name), allowed)


def _as_allowed(value: Any) -> Any:
    """An exact reference value in the allowed-value form BFCL uses inside dicts (`{key: [v]}`)."""
    if isinstance(value, dict):
        return {k: [v] for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [{k: [x] for k, x in v.items()} for v in value]
    return value


def parse_functions(raw: Any) -> dict[str, dict[str, Any]]:
    """Function definitions by name, from BFCL's `[{name, parameters}]` or OpenAI's `tools` list."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"function definitions are not valid JSON: {exc}") from None
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, (list, tuple)):
        raise ParseError(f"function definitions must be a list, got {type(raw).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(raw):
        if isinstance(item, Mapping) and isinstance(item.get("function"), Mapping):
            item = item["function"]
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ParseError(f"function definition {i + 1} has no name")
        params = item.get("parameters") or {}
        if not isinstance(params, Mapping):
            raise ParseError(f"function {item['name']}: 'parameters' must be an object")
        out[item["name"]] = params if type(params) is dict else dict(params)
    return out
