"""Running the app under uvicorn: the ready line, the loopback warning, graceful shutdown.

On SIGTERM or SIGINT uvicorn stops accepting connections, lets in-flight requests finish for up
to `grace_s`, then runs the lifespan's shutdown (spec, pools, sandboxes, containers closed) and
`serve` returns 0. A failed warm-up stops the server with exit code 1."""

from __future__ import annotations

import math
import os
import sys
import threading

from rewardkit.serve.settings import SETTINGS_ENV, ServeSettings, is_loopback


def serve(settings: ServeSettings) -> int:
    import uvicorn

    if not is_loopback(settings.host) and not settings.token_env:
        print(f"rewardkit serve: warning: listening on {settings.host} without a token; anyone who can reach "
              "this port can use the server (start it with --token-env VAR)", file=sys.stderr, flush=True)
    if settings.workers > 1:
        return _serve_workers(settings)
    from rewardkit.serve.app import create_app

    app = create_app(settings)  # validates the spec: SpecError goes up to the CLI (exit 1)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            timeout_graceful_shutdown=math.ceil(settings.grace_s), access_log=False,
                            limit_concurrency=None, timeout_keep_alive=30)
    server = _server_class()(config)
    failed = threading.Event()
    bound = threading.Event()

    def on_ready() -> None:
        threading.Thread(target=_announce, args=(server, app, bound), daemon=True).start()

    def on_failure() -> None:
        failed.set()
        server.should_exit = True

    app.state.on_ready = on_ready
    app.state.on_warm_up_failure = on_failure
    server.run()
    return 1 if failed.is_set() else 0


def _server_class() -> type:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn re-raises a caught SIGTERM after its graceful shutdown, so the process would die
        of the signal; a server that stopped cleanly on request exits 0 instead."""

        def handle_exit(self, sig: int, frame: object) -> None:
            super().handle_exit(sig, frame)  # type: ignore[arg-type]
            self._captured_signals.clear()

    return GracefulServer


def _announce(server: object, app: object, bound: threading.Event) -> None:
    """Print the ready line once the socket is bound (the port is known even for --port 0)."""
    import time

    while not getattr(server, "started", False):
        if getattr(server, "should_exit", False):
            return
        time.sleep(0.01)
    host, port = "?", 0
    for srv in getattr(server, "servers", []):
        for sock in srv.sockets:
            host, port = sock.getsockname()[:2]
    bound.set()
    engine = app.state.engine  # type: ignore[attr-defined]
    print(f"rewardkit serve: ready on http://{_url_host(str(host))}:{port} (spec {engine.spec.config.name}: "
          f"{', '.join(engine.spec.reward_names)}; pid {os.getpid()})", flush=True)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _serve_workers(settings: ServeSettings) -> int:
    import uvicorn

    from rewardkit.spec import load_spec

    load_spec(settings.spec).close()  # located errors and exit 1 before any worker starts
    if settings.port == 0:
        print("rewardkit serve: --workers needs a fixed --port (0 would give each worker its own)", file=sys.stderr)
        return 2
    os.environ[SETTINGS_ENV] = settings.to_env()
    uvicorn.run("rewardkit.serve.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level=settings.log_level, access_log=False,
                timeout_graceful_shutdown=math.ceil(settings.grace_s))
    return 0
