"""The FastAPI app of `rewardkit serve`: the spec is loaded (and validated) when the app is
built, its verifiers warm up in the lifespan while `/health` says `warming`, and the lifespan
closes pools, sandboxes and containers at shutdown. Protocols live in their own routers
(`native`, `openrlhf`, `nemo_gym`)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from rewardkit.serve import native, nemo_gym, openrlhf
from rewardkit.serve.auth import Authorized
from rewardkit.serve.deps import EngineDep
from rewardkit.serve.engine import Engine
from rewardkit.serve.errors import install_handlers
from rewardkit.serve.limits import BodyLimits
from rewardkit.serve.metrics import Metrics, MetricsMiddleware
from rewardkit.serve.settings import ServeSettings

LOG = logging.getLogger("rewardkit.serve")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine: Engine = app.state.engine
    loop = asyncio.get_running_loop()
    warm = loop.run_in_executor(None, engine.warm_up)
    warm.add_done_callback(lambda f: _after_warm_up(app, f))
    app.state.warm_up = warm
    try:
        yield
    finally:
        if not warm.done():
            await asyncio.wait({warm})
        await asyncio.to_thread(engine.close)


def _after_warm_up(app: FastAPI, future: asyncio.Future[None]) -> None:
    if future.cancelled() or future.exception() is not None:
        print(f"rewardkit serve: {app.state.engine.warmup_error or 'warm-up cancelled'}; stopping",
              file=sys.stderr, flush=True)
        on_fail = getattr(app.state, "on_warm_up_failure", None)
        if on_fail is not None:
            on_fail()
        return
    on_ready = getattr(app.state, "on_ready", None)
    if on_ready is not None:
        on_ready()


def create_app(settings: ServeSettings, *, tokenizer: Any = None) -> FastAPI:
    """Load the spec (raises SpecError with every located problem) and build the app around it."""
    from rewardkit.spec import load_spec

    spec = load_spec(settings.spec)
    if tokenizer is None and settings.tokenizer:
        from rewardkit.verifiers.length_limit import load_tokenizer_file

        tokenizer = load_tokenizer_file(settings.tokenizer)
    metrics = Metrics()
    app = FastAPI(title=f"rewardkit: {spec.config.name}", description=spec.config.description or "",
                  lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = Engine(spec, settings, metrics, tokenizer)
    app.state.metrics = metrics
    token = settings.token()
    app.state.token = token.encode("utf-8") if token else None
    install_handlers(app)
    app.include_router(native.router)
    app.include_router(openrlhf.router)
    app.include_router(nemo_gym.router)
    _add_service_routes(app)
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth,
                       max_array=settings.max_array_length)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _add_service_routes(app: FastAPI) -> None:
    @app.get("/health", summary="ready (200) only once every verifier has warmed up")
    async def health(engine: EngineDep) -> JSONResponse:
        if engine.ready.is_set():
            return JSONResponse({"status": "ready", "spec": engine.spec.config.name})
        if engine.warmup_error:
            return JSONResponse({"status": "failed", "error": engine.warmup_error}, status_code=503)
        return JSONResponse({"status": "warming"}, status_code=503, headers={"Retry-After": "2"})

    @app.get("/spec", summary="the served spec: rewards, weights, gates, advantage settings")
    async def spec(engine: EngineDep, request: Request, _: Authorized) -> dict[str, Any]:
        settings: ServeSettings = request.app.state.settings
        config = engine.spec.config.model_dump(mode="json", exclude={"train"})
        config["server"] = {"sample_budget": settings.sample_budget, "max_samples": settings.max_samples,
                            "label_field": settings.label_field, "labels": settings.labels}
        return config  # type: ignore[no-any-return]

    @app.get("/metrics", summary="Prometheus metrics of this server process")
    async def metrics(request: Request, _: Authorized) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(request.app.state.metrics.text(), media_type=CONTENT_TYPE_LATEST)


def app_from_env() -> FastAPI:
    """The app factory uvicorn's worker processes call (`--workers N`): settings come as JSON in
    the environment, written by `rewardkit serve`."""
    app = create_app(ServeSettings.from_env())
    app.state.on_ready = lambda: print(f"rewardkit serve: worker ready (spec {app.state.engine.spec.config.name})",
                                       flush=True)
    return app
