"""A minimal reward server in NeMo-Gym's resources-server style, for bench/serve.py: one rollout per
`POST /verify`, an `async def` endpoint that runs the checks inline, the body echoed with
`reward` and `reward_components`. It does the checks of `cheap.yaml` (the same regex with
`fullmatch` after strip, the same soft word limit), with none of rewardkit's machinery.

    python bench/serve/nemo_style_server.py PORT
"""

import re
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

PATTERN = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
MAX_WORDS, BUFFER = 30, 20

app = FastAPI()


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    responses_create_params: dict[str, Any]
    response: dict[str, Any]


def _text(body: VerifyRequest) -> str:
    parts = []
    for item in body.response.get("output", []):
        if item.get("type") == "message":
            parts += [str(p.get("text", "")) for p in item.get("content", []) if isinstance(p, dict)]
    return "".join(parts)


@app.post("/verify")
async def verify(body: VerifyRequest) -> dict[str, Any]:
    text = _text(body)
    fmt = 1.0 if PATTERN.fullmatch(text.strip()) else 0.0
    words = len(text.split())
    short = 1.0 if words <= MAX_WORDS - BUFFER else max(0.0, (MAX_WORDS - words) / BUFFER)  # DAPO soft limit
    components = {"format": fmt, "short": short}
    return {**body.model_dump(), "reward": sum(components.values()), "reward_components": components, **components}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
