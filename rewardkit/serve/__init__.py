"""`rewardkit serve`: one spec as the reward service of distributed trainers, over HTTP.

Protocols: rewardkit's own `POST /score` (`native`), OpenRLHF's `POST /get_reward` (`openrlhf`)
and NeMo-Gym's `POST /verify` (`nemo_gym`); `GET /health`, `/spec`, `/metrics` (`app`).
Needs the `serve` extra: `pip install 'rewardkit[serve]'`; this module imports FastAPI only when
`create_app` or `serve` is called, so the CLI can list its options without it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewardkit.serve.settings import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServeSettings", "create_app", "serve"]


def create_app(settings: ServeSettings) -> FastAPI:
    from rewardkit.serve.app import create_app as _create

    return _create(settings)


def serve(settings: ServeSettings) -> int:
    from rewardkit.serve.run import serve as _serve

    return _serve(settings)
