"""`POST /score`, rewardkit's own protocol: every cell with its reason, error and gate, the
weighted total, and per group the GRPO and GDPO advantages (the numbers `rewardkit check --json`
prints for the same samples)."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rewardkit.advantages import compared_methods
from rewardkit.check import group_advantages
from rewardkit.scoring import ScoreTable
from rewardkit.serve.auth import Authorized
from rewardkit.serve.deps import EngineDep, SettingsDep
from rewardkit.serve.errors import RequestProblem

router = APIRouter(tags=["rewardkit"])


class SampleIn(BaseModel):
    """One completion to score; `fields` holds the data fields the verifiers read (answer, tests...)."""

    model_config = ConfigDict(extra="forbid")

    completion: str | list[dict[str, Any]] = Field(description="text, or chat messages (the last assistant "
                                                   "message is judged)")
    prompt: str | list[dict[str, Any]] | None = Field(None, description="the prompt, text or chat messages")
    fields: dict[str, Any] = Field(default_factory=dict, description="other data fields of the row")
    group: str | None = Field(None, description="rollout group key; default: the value of `group_by`")


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples: list[SampleIn] = Field(min_length=1)
    group_by: str = Field("prompt", description="samples with equal values of this field form a group "
                          "(when a sample has no `group`)")


class CellOut(BaseModel):
    score: float | None = Field(description="null when excluded (a verifier error under on_error: exclude)")
    reason: str
    error: str | None
    gated: bool


class SampleResult(BaseModel):
    scores: dict[str, CellOut]
    total: float | None = Field(description="sum of weight x score over the scored cells; null if none")
    group: str
    advantages: dict[str, float | None] = Field(description="GRPO and GDPO advantage within the group")


class ScoreResponse(BaseModel):
    spec: str
    rewards: list[str]
    weights: list[float]
    advantage_method: str
    results: list[SampleResult]


def flatten(sample: SampleIn) -> dict[str, Any]:
    """The sample as the spec reads it: data fields, then `prompt` and `completion`."""
    row = dict(sample.fields)
    if sample.prompt is not None:
        row["prompt"] = sample.prompt
    row["completion"] = sample.completion
    return row


def group_key(sample: SampleIn, row: dict[str, Any], group_by: str, index: int) -> str:
    if sample.group is not None:
        return sample.group
    value = row.get(group_by)
    if value is None:
        return f"sample {index}"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def weighted_total(values: Any, weights: list[float]) -> float | None:
    total, seen = 0.0, False
    for value, weight in zip(values, weights, strict=True):
        if not math.isnan(value):
            total += weight * float(value)
            seen = True
    return total if seen else None


def score_response(table: ScoreTable, groups: list[str], engine: Any) -> dict[str, Any]:
    spec = engine.spec
    adv = spec.config.advantage
    advantages = {m: group_advantages(table.values, groups, spec.weights, method=m, eps=adv.explicit_eps,
                                      batch_norm=adv.batch_norm)
                  for m in compared_methods()}
    records = table.to_records()
    return {
        "spec": spec.config.name,
        "rewards": table.reward_names,
        "weights": spec.weights,
        "advantage_method": adv.method,
        "results": [
            {"scores": records[i], "total": weighted_total(table.values[i], spec.weights), "group": groups[i],
             "advantages": {m: None if math.isnan(a[i]) else round(float(a[i]), 6) for m, a in advantages.items()}}
            for i in range(len(records))
        ],
    }


@router.post("/score", response_model=ScoreResponse, summary="score samples with every reward of the spec")
async def score(body: ScoreRequest, request: Request, engine: EngineDep, settings: SettingsDep,
                _: Authorized) -> JSONResponse:
    if len(body.samples) > settings.max_samples:
        raise RequestProblem(422, f"{len(body.samples)} samples, over the cap of {settings.max_samples} per "
                             "request; split the batch", ["samples"])
    rows = [flatten(s) for s in body.samples]
    groups = [group_key(s, row, body.group_by, i) for i, (s, row) in enumerate(zip(body.samples, rows, strict=True))]
    table = await engine.score(rows, "score", request)
    return JSONResponse(score_response(table, groups, engine))
