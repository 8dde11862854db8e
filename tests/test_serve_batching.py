"""Concurrent one-rollout requests (NeMo-RL's /verify, OpenRLHF's one query per /get_reward) are
scored together in a few `spec.score` calls, and every answer still belongs to its own request."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from rk_serve import Server

SLOW = Path(__file__).parent / "data" / "serve_slow_code.yaml"
PROGRAM = "```python\nimport time\na, s = input().split()\ntime.sleep(float(s))\nprint(a)\n```"


def test_concurrent_single_rollout_requests_coalesce_and_keep_their_own_answers() -> None:
    n = 24
    answers: dict[int, dict] = {}
    with Server(SLOW, "--score-threads", "1") as srv:
        def one(i: int) -> None:
            expected = i if i % 2 == 0 else i + 1  # odd rollouts print the wrong number
            body = {"responses_create_params": {"input": "p"},
                    "response": {"output": [{"type": "message", "content": [{"type": "output_text", "text": PROGRAM}]}]},
                    "tests": {"inputs": [f"{i} 1\n"], "outputs": [f"{expected}\n"]}, "rollout": i}
            answers[i] = srv.post("/verify", body).json()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        batches = float(re.search(r"^rewardkit_scoring_batches_total (\S+)$", srv.get("/metrics").text,
                                  re.M).group(1))  # type: ignore[union-attr]
    assert sorted(answers) == list(range(n))
    for i, answer in answers.items():
        assert answer["rollout"] == i
        assert answer["passes"] == (1.0 if i % 2 == 0 else 0.0), answer["rewardkit"]
    assert batches <= n / 3, f"{n} requests took {batches:.0f} scoring calls"
