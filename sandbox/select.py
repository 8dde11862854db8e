"""Pick a backend by name; `auto` takes the strongest one that is really usable here."""

from __future__ import annotations

from collections.abc import Callable

from rewardkit.errors import SandboxUnavailable
from rewardkit.sandbox.base import Sandbox

BACKENDS = ("docker", "bwrap", "process")


def _factory(name: str) -> Callable[..., Sandbox]:
    if name == "process":
        from rewardkit.sandbox.process import ProcessSandbox

        return ProcessSandbox
    if name == "bwrap":
        from rewardkit.sandbox.bwrap import BwrapSandbox

        return BwrapSandbox
    if name == "docker":
        from rewardkit.sandbox.dockerpool import DockerSandbox

        return DockerSandbox
    raise SandboxUnavailable(f"unknown sandbox backend {name!r}; valid: auto, {', '.join(BACKENDS)}")


def unavailable_reason(name: str, **options: object) -> str | None:
    """None when `name` can run here, else one line saying why not (engine down, no bwrap, ...)."""
    try:
        return _unavailable_reason(name, **options)
    except ImportError as exc:
        return f"backend module missing: {exc}"


def _unavailable_reason(name: str, **options: object) -> str | None:
    if name == "process":
        return None
    if name == "bwrap":
        from rewardkit.sandbox.bwrap import bwrap_unavailable_reason

        return bwrap_unavailable_reason()
    if name == "docker":
        from rewardkit.sandbox.dockerpool import docker_unavailable_reason

        image = options.get("image")
        return docker_unavailable_reason(str(image) if image else None)
    return f"unknown sandbox backend {name!r}"


def available_backends(**options: object) -> dict[str, str | None]:
    """Every backend with the reason it is unavailable (None = usable)."""
    return {name: unavailable_reason(name, **options) for name in BACKENDS}


def select_backend(name: str = "auto", **options: object) -> Sandbox:
    """Build the named backend, or for `auto` docker > bwrap > process, whichever is present.

    Options go to the backend's constructor (`workers`, `python`, `image`, `pool_size`, ...);
    options a backend does not take are dropped for `auto`, so one call site serves all.
    """
    if name == "auto":
        for cand in BACKENDS:
            if unavailable_reason(cand, **options) is None:
                return _build(cand, options, lenient=True)
        raise SandboxUnavailable("no sandbox backend is usable")  # process always is; defensive
    if name not in BACKENDS:
        _factory(name)  # raises with the list of valid names
    reason = unavailable_reason(name, **options)
    if reason is not None:
        raise SandboxUnavailable(f"sandbox backend {name!r} is unavailable: {reason}")
    return _build(name, options, lenient=False)


def _build(name: str, options: dict[str, object], lenient: bool) -> Sandbox:
    import inspect

    cls = _factory(name)
    if lenient:
        accepted = inspect.signature(cls).parameters
        options = {k: v for k, v in options.items() if k in accepted}
    try:
        return cls(**options)
    except TypeError:
        raise
    except Exception as exc:
        raise SandboxUnavailable(f"sandbox backend {name!r} failed to start: {exc}") from exc
