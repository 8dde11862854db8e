"""NeMo-Gym's side of `/verify`, run with openai==2.7.2 importable:
`python nemo_gym_client.py WHEEL_DIR URL`. Builds each request of the wheel's own example
rollouts (`example_tool_call_multireward`) with NeMo-Gym's request model, posts it, and validates
the answer with its response models; prints one JSON line per rollout."""

import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nemo_gym_models import load

wheel, url = Path(sys.argv[1]), sys.argv[2]
models = load(wheel)
data = wheel / "resources_servers" / "example_tool_call_multireward" / "data"
tasks = [json.loads(line) for line in (data / "example.jsonl").read_text().splitlines() if line.strip()]
THEIR_OUTPUTS = ("reward", "reward_components", "correctness", "schema_valid", "format", "predicted_calls")
for line in (data / "example_rollouts.jsonl").read_text().splitlines():
    rollout = json.loads(line)
    theirs = {k: rollout.pop(k) for k in THEIR_OUTPUTS if k in rollout}
    rollout["expected_call"] = tasks[rollout["_ng_task_index"]]["expected_call"]
    body = models.ToolCallMultiRewardVerifyRequest.model_validate(rollout).model_dump(mode="json")
    body.update({k: v for k, v in rollout.items() if k not in body})  # task fields NeMo-Gym passes through
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.loads(response.read())
    models.BaseVerifyResponse.model_validate(answer)
    parsed = models.ToolCallMultiRewardVerifyResponse.model_validate(answer)
    print(json.dumps({"theirs": theirs, "answer": answer, "reward": parsed.reward,
                      "components": parsed.reward_components, "sent": body}))
