"""Caps on what a request may hold, enforced before FastAPI parses it: body size (413), UTF-8
(400), JSON syntax (400), nesting depth and array lengths (422, with the path of the offending
field). A pure ASGI middleware, so an oversized body is refused while it streams in, never
buffered whole."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rewardkit.errors import format_path
from rewardkit.serve.errors import RequestProblem

_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)


class BodyLimits:
    """Read a POST body up to `max_bytes`, check it, then hand the same bytes to the app."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int, max_array: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.max_array = max_array

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
            check_json(body, self.max_depth, self.max_array)
        except RequestProblem as problem:
            await problem.response()(scope, receive, send)
            return
        # The body is known to be JSON now: say so, so that a client that forgot the header
        # (curl -d sends form encoding) is still understood.
        scope = {**scope, "headers": [(k, v) for k, v in scope.get("headers", []) if k != b"content-type"]
                 + [(b"content-type", b"application/json")]}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # http.disconnect, for handlers that watch for it
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                raise _too_large(int(value), self.max_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestProblem(400, "the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _too_large(size, self.max_bytes, at_least=True)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _too_large(size: int, cap: int, at_least: bool = False) -> RequestProblem:
    got = f"at least {size}" if at_least else str(size)
    return RequestProblem(413, f"request body is {got} bytes, over the cap of {cap}; send fewer or smaller "
                          "samples per request (or raise --max-body-bytes)")


def check_json(body: bytes, max_depth: int, max_array: int) -> None:
    """Raise RequestProblem unless `body` is UTF-8 JSON within the depth and array caps."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestProblem(400, f"request body is not valid UTF-8 (byte {exc.start}: "
                             f"{body[exc.start:exc.start + 1]!r}); encode text as UTF-8") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestProblem(400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
                             "send one JSON object") from exc
    except RecursionError:  # deeper than the parser's own limit (~1000): find where, without parsing
        raise _too_deep(too_deep(body, max_depth) or [], max_depth) from None
    for path, length in _containers(value):
        if len(path) >= max_depth:
            raise _too_deep(path, max_depth)
        if length > max_array:
            raise RequestProblem(422, f"array of {length} items, over the cap of {max_array}; "
                                 "split the request", path)


def _too_deep(path: list[str | int], max_depth: int) -> RequestProblem:
    problem = RequestProblem(422, f"JSON nested deeper than {max_depth} levels; flatten the value", path)
    if len(path) > 8:  # the message names where it starts; `field` keeps the whole path
        problem.message = (f"{format_path(tuple(path[:4]))}...{format_path(tuple(path[-2:]))} "
                           f"({len(path)} levels): JSON nested deeper than {max_depth} levels; flatten the value")
    return problem


def too_deep(body: bytes, max_depth: int) -> list[str | int] | None:
    """The path at which `body` first nests deeper than `max_depth`, or None. A token scan (no
    parse), so a body nested 10,000 deep costs one pass and no recursion."""
    stack: list[list[Any]] = []  # per open container: [kind, key or index, expecting a key]
    for match in _TOKENS.finditer(body):
        token = match.group()
        top = stack[-1] if stack else None
        if token in (b"[", b"{"):
            if len(stack) >= max_depth:
                return [frame[1] for frame in stack]
            stack.append(["array", 0, False] if token == b"[" else ["object", "", True])
        elif token in (b"]", b"}"):
            if stack:
                stack.pop()
        elif token == b",":
            if top is not None:
                if top[0] == "array":
                    top[1] += 1
                else:
                    top[2] = True
        elif token == b":":
            if top is not None:
                top[2] = False
        elif top is not None and top[0] == "object" and top[2]:
            try:
                top[1] = json.loads(token)
            except ValueError:
                top[1] = token.decode("utf-8", "replace")[1:-1]
    return None


def _containers(value: Any) -> Iterator[tuple[list[str | int], int]]:
    """Every array and object in a parsed JSON value with its path, and each array's length
    (objects: -1). Iterative, so depth costs no recursion."""
    todo: list[tuple[Any, list[str | int]]] = [(value, [])]
    while todo:
        node, path = todo.pop()
        if isinstance(node, list):
            yield path, len(node)
            todo.extend((item, [*path, i]) for i, item in enumerate(node) if isinstance(item, (list, dict)))
        elif isinstance(node, dict):
            yield path, -1
            todo.extend((item, [*path, key]) for key, item in node.items() if isinstance(item, (list, dict)))
