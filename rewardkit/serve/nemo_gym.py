"""`POST /verify`, NeMo-Gym's resources-server contract (what NeMo-RL calls per rollout).

The body carries `responses_create_params` (the OpenAI Responses request: `input` is the prompt,
`tools` the tool schemas), `response` (its `output` items) and the task's own fields at the top
level. The sample the spec scores is:

- `completion`: one assistant message whose `content` joins the text of every `message` output
  item and whose `tool_calls` are every `function_call` item, in order (NeMo-Gym's own
  environments read all of a rollout's calls the same way); `reasoning` items go to
  `reasoning_content`, which no built-in verifier reads; `function_call_output` items (tool
  results) are not part of what the policy wrote and are left out;
- `prompt`: `responses_create_params.input`; `tools`: `responses_create_params.tools`;
- every other top-level field of the body, as it is.

The answer is the body plus `reward`, `reward_components` (each reward's weight x score, an error
cell counting `otherwise`) and each component again as a top-level field, and `rewardkit` (each
cell's score, reason, error, gate). `reward` is the sum of `reward_components` in their order, so
NeMo-RL's `reward == sum(reward_components)` check holds exactly.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rewardkit.serve.auth import Authorized
from rewardkit.serve.deps import EngineDep

router = APIRouter(tags=["NeMo-Gym"])

_BODY_KEYS = ("responses_create_params", "response")


class ResponseBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    output: list[dict[str, Any]] = Field(description="OpenAI Responses output items")


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    responses_create_params: dict[str, Any] = Field(description="the Responses request: input, tools, ...")
    response: ResponseBody


class VerifyResponse(VerifyRequest):
    reward: float = Field(description="sum of reward_components")
    reward_components: dict[str, float] = Field(description="reward name -> weight x score")


def to_sample(body: dict[str, Any]) -> dict[str, Any]:
    """The rewardkit sample of one NeMo-Gym rollout (see the module docstring)."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in body["response"].get("output", []):
        kind = item.get("type")
        if kind == "message":
            content = item.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.append("".join(str(part.get("text", "")) for part in content if isinstance(part, dict)))
        elif kind == "function_call":
            calls.append({"id": item.get("call_id"), "type": "function",
                          "function": {"name": item.get("name"), "arguments": item.get("arguments", "")}})
        elif kind == "reasoning":
            for part in item.get("summary") or item.get("content") or []:
                if isinstance(part, dict):
                    reasoning.append(str(part.get("text", "")))
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts)}
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "\n".join(reasoning)
    params = body["responses_create_params"]
    sample = {k: v for k, v in body.items() if k not in _BODY_KEYS}
    sample.update(completion=[message], prompt=params.get("input"))
    if params.get("tools") is not None:
        sample.setdefault("tools", params.get("tools"))
    return sample


@router.post("/verify", response_model=VerifyResponse, summary="NeMo-Gym's verify: the body plus its rewards")
async def verify(body: VerifyRequest, request: Request, engine: EngineDep, _: Authorized) -> JSONResponse:
    raw = body.model_dump(mode="json")
    table = await engine.score([to_sample(raw)], "verify", request)
    components: dict[str, float] = {}
    cells: dict[str, Any] = {}
    for reward, cell, record in zip(engine.spec.rewards, table.cells[0], table.to_records()[0].values(),
                                    strict=True):
        value = reward.otherwise if math.isnan(cell.value) else cell.value
        components[reward.name] = reward.weight * value
        cells[reward.name] = record
    reward_total = sum(components.values())
    return JSONResponse({**raw, **components, "reward": reward_total, "reward_components": components,
                         "rewardkit": cells})


@router.post("/seed_session", summary="NeMo-Gym's session start (rewardkit keeps no session state)")
async def seed_session(_: Authorized) -> dict[str, Any]:
    return {}
