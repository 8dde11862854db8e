"""`POST /get_reward`, OpenRLHF's remote reward contract (`--reward.remote_url URL/get_reward`).

Request `{"query": [...], "prompts": [...], "labels": [...]}`, answer
`{"rewards": [...], "extra_logs": {...}}`. How the pieces map onto a spec:

- **The completion** is `query` with its `prompts` prefix cut off: OpenRLHF decodes prompt and
  response tokens together with special tokens kept, so the query starts with the (templated)
  prompt. End-of-turn tokens at the very end (`--end-token`, default: ChatML, Llama, GPT-2, ...)
  are cut too. A query that does not start with its prompt cannot be cut safely: that sample
  gets an error in every reward, never a guess and never a silent 0.
- **`labels`** fill the spec field named by `--label-field` (default `answer`), as text or, with
  `--labels json`, decoded from JSON (e.g. the code spec's `tests`).
- **Errors**: OpenRLHF has no "unscorable", so an error cell counts as that reward's `otherwise`
  (default 0) in `rewards`, and `extra_logs["<reward>/errors"]` marks it (1 per failed cell), so
  the run's logs show how often it happened. `extra_logs["<reward>"]` is each reward's score.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from rewardkit.scoring import Cell
from rewardkit.serve.auth import Authorized
from rewardkit.serve.deps import EngineDep, SettingsDep
from rewardkit.serve.errors import RequestProblem, short
from rewardkit.serve.settings import ServeSettings

router = APIRouter(tags=["OpenRLHF"])


class RewardRequest(BaseModel):
    query: list[str] = Field(description="prompt + response, decoded with special tokens kept")
    prompts: list[str] = Field(description="the prompts, as OpenRLHF sent them to the policy")
    labels: list[Any] | None = Field(None, description="the dataset's --data.label_key values (usually text)")


class RewardResponse(BaseModel):
    rewards: list[float] = Field(description="weighted gated total per query (error cells count `otherwise`)")
    extra_logs: dict[str, list[float]] = Field(description="per reward its scores, and `<reward>/errors` 0/1")


def cut_completion(query: str, prompt: str, end_tokens: tuple[str, ...]) -> str:
    """The response part of `query`; ValueError when the query does not start with the prompt."""
    if not query.startswith(prompt):
        at = next((i for i, (a, b) in enumerate(zip(query, prompt, strict=False)) if a != b),
                  min(len(query), len(prompt)))
        raise ValueError(f"query does not start with its prompt (they differ at character {at}: query has "
                         f"{short(query[at:at + 20], 30)}, prompt has {short(prompt[at:at + 20], 30)}); "
                         "send the prompt exactly as it was decoded into the query")
    completion = query[len(prompt):]
    cut = True
    while cut:
        cut = False
        for token in end_tokens:
            if token and completion.endswith(token):
                completion = completion[: -len(token)]
                cut = True
    return completion


def read_label(label: Any, settings: ServeSettings, index: int) -> Any:
    if not isinstance(label, str) or settings.labels == "text":
        return label
    try:
        return json.loads(label)
    except json.JSONDecodeError as exc:
        raise ValueError(f"labels[{index}] is not valid JSON ({exc.msg}, got {short(label)}); the server "
                         "runs with --labels json") from exc


@router.post("/get_reward", response_model=RewardResponse, summary="OpenRLHF's remote reward")
async def get_reward(body: RewardRequest, request: Request, engine: EngineDep, settings: SettingsDep,
                     _: Authorized) -> JSONResponse:
    n = len(body.query)
    if len(body.prompts) != n:
        raise RequestProblem(422, f"{len(body.prompts)} prompts for {n} queries; send one prompt per query",
                             ["prompts"])
    if body.labels is not None and len(body.labels) != n:
        raise RequestProblem(422, f"{len(body.labels)} labels for {n} queries; send one label per query",
                             ["labels"])
    if n > settings.max_samples:
        raise RequestProblem(422, f"{n} queries, over the cap of {settings.max_samples}; split the batch", ["query"])
    rows: list[dict[str, Any]] = []
    failed: dict[int, str] = {}
    for i, (query, prompt) in enumerate(zip(body.query, body.prompts, strict=True)):
        try:
            row = {"completion": cut_completion(query, prompt, settings.end_tokens), "prompt": prompt}
        except ValueError as exc:
            failed[i] = f"query[{i}]: {exc}"
            continue
        try:
            if body.labels is not None:
                row[settings.label_field] = read_label(body.labels[i], settings, i)
        except ValueError as exc:
            failed[i] = str(exc)
            continue
        rows.append(row)
    table = await engine.score(rows, "get_reward", request) if rows else None
    spec = engine.spec
    names = spec.reward_names
    scored = iter(table.cells if table is not None else [])
    rewards: list[float] = []
    logs: dict[str, list[float]] = {k: [] for name in names for k in (name, f"{name}/errors")}
    for i in range(n):
        cells = [Cell(math.nan, failed[i], error=failed[i])] * len(names) if i in failed else next(scored)
        total = 0.0
        for reward, cell in zip(spec.rewards, cells, strict=True):
            value = reward.otherwise if math.isnan(cell.value) else cell.value
            total += reward.weight * value
            logs[reward.name].append(value)
            logs[f"{reward.name}/errors"].append(1.0 if cell.error is not None else 0.0)
        rewards.append(total)
    return JSONResponse({"rewards": rewards, "extra_logs": logs})
