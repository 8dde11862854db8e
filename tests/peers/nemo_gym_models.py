"""NeMo-Gym's own request/response models, loaded from its wheel on Python 3.11.

`nemo-gym` 0.4.0 needs Python >= 3.12 and pulls ray, mlflow and more, so it is not installed:
its wheel is downloaded (`pip download --no-deps --python-version 3.12`) and these files of it
are used as they are:
- `nemo_gym/openai_utils.py` (NeMoGymResponseCreateParamsNonStreaming, NeMoGymResponse, ...),
  executed with openai==2.7.2 (its pin) importable; the one module it imports from nemo_gym,
  `server_utils` (ray, aiohttp, omegaconf: its HTTP client), is replaced by a stub holding the
  six names openai_utils imports, which only its HTTP helpers use, never the models;
- the verify models of `nemo_gym/base_resources_server.py` (BaseRunRequest, BaseVerifyRequest,
  BaseVerifyResponse) and of `resources_servers/example_tool_call_multireward/app.py`: their class
  definitions are read from the files with `ast` and executed over openai_utils' names (the
  rest of those modules is FastAPI server code with the same heavy imports).

`load(wheel_dir)` returns a namespace with those classes."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path
from typing import Any

SERVER_UTILS_NAMES = ("_GLOBAL_AIOHTTP_CLIENT_REQUEST_DEBUG", "MAX_NUM_TRIES", "ClientResponse",
                      "get_response_json", "raise_for_status", "request")


def _classes(path: Path, names: tuple[str, ...], namespace: dict[str, Any]) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name in names]
    missing = set(names) - {node.name for node in body}
    if missing:
        raise LookupError(f"{path} no longer defines {sorted(missing)}")
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)


def load(wheel_dir: Path) -> types.SimpleNamespace:
    package = types.ModuleType("nemo_gym")
    package.__path__ = [str(wheel_dir / "nemo_gym")]
    sys.modules["nemo_gym"] = package
    stub = types.ModuleType("nemo_gym.server_utils")
    for name in SERVER_UTILS_NAMES:
        setattr(stub, name, None)
    sys.modules["nemo_gym.server_utils"] = stub
    import nemo_gym.openai_utils as openai_utils  # the wheel's own file

    namespace: dict[str, Any] = dict(vars(openai_utils))
    from pydantic import BaseModel, Field

    # the names those class bodies use (the files spell them `Dict`/`List`)
    namespace.update(BaseModel=BaseModel, Field=Field, Dict=dict, List=list, Any=Any)
    _classes(wheel_dir / "nemo_gym" / "base_resources_server.py",
             ("BaseRunRequest", "BaseVerifyRequest", "BaseVerifyResponse"), namespace)
    _classes(wheel_dir / "resources_servers" / "example_tool_call_multireward" / "app.py",
             ("ToolCallMultiRewardVerifyRequest", "ToolCallMultiRewardVerifyResponse"), namespace)
    for name in ("BaseVerifyRequest", "BaseVerifyResponse", "ToolCallMultiRewardVerifyRequest",
                 "ToolCallMultiRewardVerifyResponse"):
        namespace[name].model_rebuild(_types_namespace=namespace)
    return types.SimpleNamespace(**{k: namespace[k] for k in namespace if not k.startswith("__")})
