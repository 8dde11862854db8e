"""What `rewardkit serve` is started with: one validated model, shared by the CLI, the app factory
and the tests (which build one directly instead of parsing flags)."""

from __future__ import annotations

import json
import os
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SETTINGS_ENV = "REWARDKIT_SERVE_SETTINGS"  # JSON settings handed to each uvicorn worker process

# End-of-turn tokens that a decoded OpenRLHF `query` may carry after the response
# (Qwen/ChatML, GPT-2/Qwen base, Llama 2, Llama 3, Phi-3, DeepSeek).
DEFAULT_END_TOKENS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<|end|>",
                      "<\uff5cend\u2581of\u2581sentence\uff5c>")


class ServeSettings(BaseModel):
    """Options of the reward server; the CLI flags map one to one onto these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: str = Field(description="path of the spec file to serve")
    host: str = Field("127.0.0.1", description="address to bind; loopback by default")
    port: int = Field(8000, ge=0, le=65535, description="port to bind; 0 picks a free one (printed when ready)")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes, each with its own spec and pools")
    sample_budget: int = Field(256, ge=1, description="samples in flight at most; beyond it requests get 503")
    score_threads: int = Field(8, ge=1, le=256, description="requests scored at the same time (the rest wait, "
                               "admitted, in order)")
    chunk_size: int = Field(64, ge=1, description="samples scored per spec.score call: a cancelled or timed-out "
                            "request stops at the next chunk boundary")
    max_body_bytes: int = Field(16 << 20, ge=1024, description="larger request bodies get 413")
    max_samples: int = Field(4096, ge=1, description="samples per request at most (422 beyond)")
    max_array_length: int = Field(10_000, ge=1, description="any JSON array longer than this gets 422")
    max_json_depth: int = Field(64, ge=4, le=1000, description="JSON nested deeper than this gets 422")
    request_timeout_s: float = Field(300.0, gt=0, description="a request still scoring after this gets 504")
    grace_s: float = Field(30.0, ge=0, description="on SIGTERM/SIGINT, how long in-flight requests may finish")
    token_env: str | None = Field(None, description="name of the environment variable holding the bearer token")
    tokenizer: str | None = Field(None, description="tokenizer.json (or folder) for token lengths")
    label_field: str = Field("answer", description="/get_reward: the spec field that OpenRLHF's `labels` fill")
    labels: Literal["text", "json"] = Field("text", description="/get_reward: labels as text, or JSON to decode "
                                            "(e.g. the code spec's tests)")
    end_tokens: tuple[str, ...] = Field(DEFAULT_END_TOKENS, description="/get_reward: end-of-turn tokens cut "
                                        "from the end of a completion")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    def to_env(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_env(cls) -> ServeSettings:
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise RuntimeError(f"{SETTINGS_ENV} is not set; start the server with `rewardkit serve SPEC`")
        return cls.model_validate(json.loads(raw))

    def token(self) -> str | None:
        """The bearer token, read from the environment variable named by `token_env`."""
        if not self.token_env:
            return None
        value = os.environ.get(self.token_env, "")
        if not value:
            raise ValueError(f"--token-env {self.token_env}: the environment variable is empty or unset; "
                             f"export {self.token_env}=<token> or drop --token-env")
        return value


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def add_arguments(parser: Any) -> None:
    """One `--flag` per settings field (the field's description is the help), so the CLI, the
    settings model and `--help` cannot drift apart."""
    for name, field in ServeSettings.model_fields.items():
        if name == "spec":
            parser.add_argument("spec", metavar="SPEC", help=field.description)
            continue
        flag = "--" + name.replace("_", "-").removesuffix("-s")
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": f"{field.description} "
                                  f"(default: {_show_default(field.default)})"}
        choices = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is Literal else ()
        if choices:
            kwargs["choices"] = choices
        elif name == "end_tokens":
            flag, kwargs["action"], kwargs["metavar"] = "--end-token", "append", "TOKEN"
        elif field.annotation in (int, float):
            kwargs["type"] = field.annotation
        parser.add_argument(flag, **kwargs)


def settings_from_args(args: Any) -> ServeSettings:
    given = {name: getattr(args, name) for name in ServeSettings.model_fields if getattr(args, name, None) is not None}
    return ServeSettings(**given)


def _show_default(value: Any) -> str:
    return " ".join(value) if isinstance(value, tuple) else str(value)
