"""The shape of a spec file, as pydantic models. Every block forbids unknown keys."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from rewardkit.advantages import ADVANTAGE_METHODS, DEFAULT_EPS, method_names, unknown_method_message

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SUPPORTED_VERSIONS = (1,)


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RewardConfig(_Block):
    """One reward: a verifier with its arguments, a weight, and an optional gate."""

    name: str = Field(pattern=NAME_PATTERN, description="Identifier used in metrics and in other rewards' `when:`.")
    verifier: str = Field(description="A built-in verifier name, an entry-point name, or a 'module:Class' path.")
    args: dict[str, Any] = Field(
        default_factory=dict, description="The verifier's arguments (validated by the verifier)."
    )
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


def _method_choices(schema: dict[str, Any]) -> None:
    """The JSON Schema lists the methods registered when it is generated (plugins included)."""
    schema["enum"] = list(method_names())
    schema["description"] = "; ".join(f"{m.name}: {m.summary}" for m in ADVANTAGE_METHODS.values()) + "."


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # the default depends on the method


class AdvantageConfig(_Block):
    """How rewards become advantages (see `rewardkit.advantages`)."""

    method: str = Field("gdpo", json_schema_extra=_method_choices)
    eps: float = Field(
        None,  # filled in with the method's default by `_method_eps`
        gt=0,
        validate_default=True,
        description="Added to standard deviations; default: the method's own "
        f"({DEFAULT_EPS} for gdpo and grpo, as TRL).",
        json_schema_extra=_no_default,
    )
    batch_norm: bool = Field(True, description="GDPO: normalize the summed advantages over the whole batch.")
    leave_one_out: bool = Field(True, description="gdpo_nemo_rl: each rollout's baseline is the mean of the "
                                "other rollouts of its group (NeMo-RL's use_leave_one_out_baseline).")

    @field_validator("method")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in ADVANTAGE_METHODS:
            raise ValueError(unknown_method_message(value))
        return value

    @field_validator("eps", mode="before")
    @classmethod
    def _method_eps(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None:
            return value
        method = ADVANTAGE_METHODS.get(info.data.get("method", ""))
        default = method.default_eps if method is not None else None
        return DEFAULT_EPS if default is None else default

    @property
    def explicit_eps(self) -> float | None:
        """The spec's own eps, or None when it leaves eps to each method's default (so `check`
        shows every method it compares with that method's eps)."""
        return self.eps if "eps" in self.model_fields_set else None


class AuditAccept(_Block):
    """A finding of `rewardkit audit` that the spec's author accepts as an inherent risk."""

    probe: str = Field(description="The probe's name or hack class (`rewardkit audit --list`), or `*`.")
    rewards: list[str] = Field(default_factory=list, description="Rewards (or `total`) it may earn; empty: any.")
    reason: str = Field(min_length=1, description="Why this is acceptable; shown in every audit report.")


class AuditConfig(_Block):
    """What `rewardkit audit` accepts for this spec."""

    accept: list[AuditAccept] = Field(default_factory=list, description="Accepted findings, each with a reason.")


class SpecConfig(_Block):
    """A whole spec file."""

    version: int = Field(description=f"Spec format version; supported: {', '.join(map(str, SUPPORTED_VERSIONS))}.")
    name: str = Field(description="A short name for logs and checkpoints.")
    description: str = ""
    rewards: list[RewardConfig] = Field(min_length=1, description="The rewards, scored in gate order.")
    advantage: AdvantageConfig = Field(default_factory=AdvantageConfig)
    train: dict[str, Any] | None = Field(None, description="Training settings (see `rewardkit.train_config`).")
    audit: AuditConfig = Field(default_factory=AuditConfig, description="Findings of `rewardkit audit` this spec "
                               "accepts, each with a reason.")

    @field_validator("version")
    @classmethod
    def _supported(cls, value: int) -> int:
        if value not in SUPPORTED_VERSIONS:
            raise ValueError(f"unsupported spec version {value}; this rewardkit reads version(s) "
                             f"{', '.join(map(str, SUPPORTED_VERSIONS))}")
        return value
