"""`RewardClient`: score samples on a `rewardkit serve` server, so one scoring box (sandboxes,
math workers) can serve a trainer that runs elsewhere. Used by `rewardkit check --remote URL`
and by the compact trainer when the spec sets `train.reward_url`.

A 503 (the server's sample budget is full) is retried after the server's `Retry-After`, up to
`retries` times; other errors raise `RemoteScoringError` with the server's one-line reason."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rewardkit.errors import RewardkitError
from rewardkit.scoring import Cell, ScoreTable

if TYPE_CHECKING:
    import httpx

    from rewardkit.spec import Spec
    from rewardkit.verifier import ScoringContext

TOKEN_ENV = "REWARDKIT_TOKEN"


class RemoteScoringError(RewardkitError, RuntimeError):
    """The server refused or failed a request; the message holds its status and reason."""


class RewardClient:
    """A client of one server. `token` defaults to `$REWARDKIT_TOKEN`."""

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 600.0, retries: int = 8,
                 batch_size: int | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        for suffix in ("/score", "/get_reward", "/verify"):
            self.url = self.url.removesuffix(suffix)
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self.batch_size = batch_size
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- endpoints --------------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        return self._call("GET", "/spec")

    def health(self) -> dict[str, Any]:
        return self._http.get("/health").json()  # type: ignore[no-any-return]

    def score(self, samples: Sequence[dict[str, Any]], *, group_by: str = "prompt") -> dict[str, Any]:
        """POST /score with flat samples (`completion`, `prompt`, data fields), in batches of at
        most `batch_size` (default: the server's sample budget); results come back in order."""
        if self.batch_size is None:  # asked once: the server's budget is the largest batch it admits
            self.batch_size = int(self.spec().get("server", {}).get("sample_budget", 256))
        size = self.batch_size
        merged: dict[str, Any] | None = None
        for start in range(0, len(samples), size):
            body = {"samples": [_to_wire(s) for s in samples[start:start + size]], "group_by": group_by}
            answer = self._call("POST", "/score", json=body)
            if merged is None:
                merged = answer
            else:
                merged["results"].extend(answer["results"])
        return merged if merged is not None else {"results": []}

    def score_table(self, samples: Sequence[dict[str, Any]], pass_at: Sequence[float] | None = None) -> ScoreTable:
        """`score` as a ScoreTable, the type `Spec.score` returns (advantages are left to the caller,
        who may group differently)."""
        answer = self.score(samples)
        names = answer["rewards"]
        cells = [[_cell(result["scores"][name]) for name in names] for result in answer["results"]]
        return ScoreTable(names, cells, list(pass_at) if pass_at is not None else [1.0] * len(names))

    def scoring_for(self, spec: Spec) -> RemoteSpec:
        """`spec`, with `score` done by the server; checks that the server serves the same rewards."""
        served = self.spec()
        names = [r["name"] for r in served.get("rewards", [])]
        if names != spec.reward_names:
            raise RemoteScoringError(f"{self.url} serves spec {served.get('name')!r} with rewards {names}, but "
                                     f"{spec.path} has {spec.reward_names}; point --remote at a server of this spec")
        local = spec.config.model_dump(mode="json")["rewards"]
        for mine, theirs in zip(local, served["rewards"], strict=True):
            if mine != theirs:
                key = next(k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k))
                raise RemoteScoringError(
                    f"{self.url} serves reward {mine['name']!r} with {key} = {theirs.get(key)!r}, but {spec.path} "
                    f"has {mine.get(key)!r}; restart the server with this spec")
        return RemoteSpec(spec, self)

    # --- transport --------------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise RemoteScoringError(f"cannot reach {self.url}{path}: {exc}") from exc
                time.sleep(min(2.0 ** attempt * 0.1, 5.0))
                continue
            if response.status_code == 503 and attempt < self.retries:
                time.sleep(_retry_after(response, attempt))
                continue
            if response.status_code >= 400:
                raise RemoteScoringError(f"{method} {self.url}{path}: {response.status_code} {_reason(response)}")
            return response.json()
        raise RemoteScoringError(f"{method} {self.url}{path}: still busy after {self.retries} retries")


class RemoteSpec:
    """A loaded spec whose `score` runs on a server (everything else is the local spec's)."""

    def __init__(self, spec: Spec, client: RewardClient) -> None:
        self._spec = spec
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spec, name)

    def score(self, samples: Sequence[dict[str, Any]], ctx: ScoringContext | None = None) -> ScoreTable:
        if not samples:
            return self._spec.score([])  # no verifier runs on an empty batch
        return self.client.score_table(samples, [r.pass_at for r in self._spec.rewards])

    def close(self) -> None:
        self.client.close()
        self._spec.close()


def _to_wire(sample: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in sample.items() if k not in ("completion", "prompt")}
    wire: dict[str, Any] = {"completion": sample.get("completion", ""), "fields": fields}
    if sample.get("prompt") is not None:
        wire["prompt"] = sample["prompt"]
    return wire


def _cell(record: dict[str, Any]) -> Cell:
    score = record.get("score")
    return Cell(math.nan if score is None else float(score), record.get("reason", ""), record.get("error"),
                bool(record.get("gated")))


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return min(float(response.headers.get("retry-after", "1")), 30.0)
    except ValueError:
        return min(2.0 ** attempt * 0.1, 5.0)


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text[:200]
