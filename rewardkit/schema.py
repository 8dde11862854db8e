"""JSON Schema of spec files, with each registered verifier's `args`, so editors can complete
and check specs (`# yaml-language-server: $schema=...`)."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic_core import to_jsonable_python

from rewardkit import registry
from rewardkit.spec_models import SpecConfig


def spec_json_schema() -> dict[str, Any]:
    """The spec schema; a reward's `args` are checked against its verifier's model (if/then)."""
    schema = SpecConfig.model_json_schema()
    defs = schema.setdefault("$defs", {})
    conditions = []
    for name in sorted(registry.available()):
        try:
            cls = registry.resolve(name)
        except registry.UnknownVerifier:
            continue
        args_schema = cls.Args.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(args_schema.pop("$defs", {}))
        key = f"args_{name}"
        defs[key] = args_schema
        conditions.append({
            "if": {"properties": {"verifier": {"const": name}}, "required": ["verifier"]},
            "then": {"properties": {"args": {"$ref": f"#/$defs/{key}"}}},
        })
    reward = defs["RewardConfig"]
    reward["allOf"] = conditions
    reward["properties"]["verifier"]["examples"] = sorted(registry.available())
    try:
        from rewardkit.train_config import TrainConfig

        train_schema = TrainConfig.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(train_schema.pop("$defs", {}))
        defs["TrainConfig"] = train_schema
        schema["properties"]["train"] = {"anyOf": [{"$ref": "#/$defs/TrainConfig"}, {"type": "null"}]}
    except ImportError:
        pass
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "rewardkit spec"
    return schema


def verifier_docs() -> dict[str, dict[str, Any]]:
    """Each available verifier: import path, first docstring line, and its arguments."""
    out: dict[str, dict[str, Any]] = {}
    for name, path in sorted(registry.available().items()):
        try:
            cls = registry.resolve(name)
        except registry.UnknownVerifier as exc:
            out[name] = {"path": path, "error": str(exc)}
            continue
        doc = inspect.getdoc(cls) or ""
        args = []
        for field_name, info in cls.Args.model_fields.items():
            args.append({
                "name": field_name,
                "type": _type_name(info.annotation),
                "required": info.is_required(),
                "default": None if info.is_required() else to_jsonable_python(
                    info.get_default(call_default_factory=True), fallback=repr),
                "description": info.description or "",
            })
        out[name] = {"path": path, "doc": doc.split("\n\n")[0].replace("\n", " "), "args": args}
    return out


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "")
