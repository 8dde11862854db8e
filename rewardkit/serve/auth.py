"""Bearer-token check, as a FastAPI dependency. The token is compared in constant time and never
echoed, logged or put in a response."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from rewardkit.serve.errors import RequestProblem


def verify_token(request: Request) -> None:
    expected: bytes | None = request.app.state.token
    if expected is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if not header:
        raise RequestProblem(401, "missing bearer token; send the header 'Authorization: Bearer <token>'",
                             headers={"WWW-Authenticate": "Bearer"})
    ok = hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected)
    if scheme.lower() != "bearer" or not ok:
        raise RequestProblem(401, "wrong bearer token (not shown); send the token the server was started with",
                             headers={"WWW-Authenticate": "Bearer"})


Authorized = Annotated[None, Depends(verify_token)]
