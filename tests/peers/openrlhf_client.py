"""Run OpenRLHF's own HTTP reward client against a URL: `python openrlhf_client.py DIR URL < batch.json`.

DIR holds `pip install --no-deps --target DIR openrlhf==0.11.2` and aiohttp. The client,
`SingleTurnAgentExecutor._fetch_rewards_via_http` in `openrlhf/utils/agent.py`, imports only
aiohttp and `openrlhf.utils.logging_utils`; but importing it as `openrlhf.utils.agent` first runs
`openrlhf/utils/__init__.py`, which imports `math_utils` (sympy, pylatexenc) and `utils` (torch,
transformers). Only those two package `__init__`s are skipped: `openrlhf` and `openrlhf.utils`
are registered as bare packages over their real folders, so `agent.py` and `logging_utils.py`
are OpenRLHF's own files, unchanged."""

import asyncio
import json
import os
import sys
import types

target, url = sys.argv[1], sys.argv[2]
sys.path.insert(0, target)
for name in ("openrlhf", "openrlhf.utils"):
    package = types.ModuleType(name)
    package.__path__ = [os.path.join(target, *name.split("."))]
    sys.modules[name] = package

from openrlhf.utils.agent import SingleTurnAgentExecutor  # noqa: E402

batch = json.load(sys.stdin)
executor = SingleTurnAgentExecutor(remote_rm_url=url)
answers = asyncio.run(executor._fetch_rewards_via_http(batch["query"], batch["prompts"], batch["labels"]))
print(json.dumps({"answers": answers, "agent_file": sys.modules["openrlhf.utils.agent"].__file__}))
