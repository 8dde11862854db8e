"""FastAPI dependencies shared by the protocol routers: the engine and the settings of this app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rewardkit.serve.engine import Engine
from rewardkit.serve.settings import ServeSettings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
