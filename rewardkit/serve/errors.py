"""How the server says no: one exception for a refused request, and the handlers that turn it,
FastAPI's validation errors and unknown paths into one JSON shape:

    {"error": "<field>: <what was received>; <the fix>", "field": "<field path>"}

The text follows the spec-error convention (lower-case, what was received, the fix) so that a
trainer's log line is enough to find the bad sample."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rewardkit.errors import RewardkitError, format_path


class RequestProblem(RewardkitError):
    """A request the server refuses, with its status, its field path and a one-line reason."""

    def __init__(self, status: int, message: str, field: Sequence[str | int] = (),
                 headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.field = format_path(tuple(field)) if field else None
        self.message = f"{self.field}: {message}" if self.field else message
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.message}
        if self.field:
            body["field"] = self.field
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def short(value: Any, width: int = 60) -> str:
    """A received value for an error message: repr, cut to `width`."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _validation_problem(exc: RequestValidationError) -> RequestProblem:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    loc = [p for p in first.get("loc", ()) if p != "body" and not _is_union_tag(p)]
    if first.get("type") == "json_invalid":
        ctx: Any = first.get("ctx") or {}
        return RequestProblem(400, f"malformed JSON: {ctx.get('error', first['msg'])}; send one JSON object")
    kind = first.get("type", "")
    if kind == "missing":
        message = "missing required field"
    else:
        message = str(first.get("msg", "invalid")).lower()
        if "input" in first and kind not in ("extra_forbidden",):
            message += f" (got {short(first['input'])})"
        if kind == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}; remove it" if loc else message
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return RequestProblem(422, message + more, loc)


def _is_union_tag(part: Any) -> bool:
    """pydantic puts the tried union member into the location (`completion.str`, `list[dict[...]]`)."""
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool", "dict", "list"})


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestProblem)
    async def _problem(request: Request, exc: RequestProblem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_problem(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            paths = sorted(app.openapi().get("paths", {}))
            message = f"no endpoint at {request.url.path!r}; endpoints: {', '.join(paths)}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path!r}"
        else:
            message = str(exc.detail).lower()
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)
