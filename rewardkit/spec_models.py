"""The shape of a spec file, as pydantic models. Every block forbids unknown keys."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SUPPORTED_VERSIONS = (1,)


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RewardConfig(_Block):
    """One reward: a verifier with its arguments, a weight, and an optional gate."""

    name: str = Field(pattern=NAME_PATTERN, description="Identifier used in metrics and in other rewards' `when:`.")
    verifier: str = Field(description="A built-in verifier name, an entry-point name, or a 'module:Class' path.")
    args: dict[str, Any] = Field(default_factory=dict, description="The verifier's arguments (validated by the verifier).")
    weight: float = Field(1.0, ge=0, description="Weight of this reward in the sum (after normalization for GDPO).")
    when: str | None = Field(None, description="Gate over other rewards' scores, e.g. `correct >= 1 and format == 1`.")
    otherwise: float = Field(0.0, description="Score given when the gate is closed (the verifier is not run).")
    on_error: Literal["otherwise", "exclude"] = Field(
        "exclude",
        description="When the verifier fails on a sample: score `otherwise`, or `exclude` the cell from "
        "normalization (NaN, like TRL's None).",
    )
    pass_at: float = Field(1.0, description="A score at or above this counts as a pass in metrics.")
    timeout_s: float = Field(
        300.0, gt=0, le=86400,
        description="Most seconds one call of the verifier (one batch) may take; past it the batch's cells "
        "are errors with the reason and scoring goes on. While such a call still runs, the reward's later "
        "batches are errors too (stuck work never piles up).")
    description: str = Field("", description="Free text shown by `rewardkit check`.")

    @field_validator("weight", "otherwise", "pass_at")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class AdvantageConfig(_Block):
    """How rewards become advantages (see `rewardkit.advantages`)."""

    method: Literal["gdpo", "grpo", "grpo_no_std"] = Field(
        "gdpo",
        description="gdpo: normalize each reward in its group, sum, normalize over the batch; "
        "grpo: sum then normalize in the group; grpo_no_std: sum minus the group mean.",
    )
    eps: float = Field(1e-4, gt=0, description="Added to standard deviations (TRL uses 1e-4).")
    batch_norm: bool = Field(True, description="GDPO: normalize the summed advantages over the whole batch.")


class SpecConfig(_Block):
    """A whole spec file."""

    version: int = Field(description=f"Spec format version; supported: {', '.join(map(str, SUPPORTED_VERSIONS))}.")
    name: str = Field(description="A short name for logs and checkpoints.")
    description: str = ""
    rewards: list[RewardConfig] = Field(min_length=1, description="The rewards, scored in gate order.")
    advantage: AdvantageConfig = Field(default_factory=AdvantageConfig)
    train: dict[str, Any] | None = Field(None, description="Training settings (see `rewardkit.train_config`).")

    @field_validator("version")
    @classmethod
    def _supported(cls, value: int) -> int:
        if value not in SUPPORTED_VERSIONS:
            raise ValueError(f"unsupported spec version {value}; this rewardkit reads version(s) "
                             f"{', '.join(map(str, SUPPORTED_VERSIONS))}")
        return value
