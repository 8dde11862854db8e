"""JSON Schema of spec files, with each registered verifier's `args`, so editors can complete
and check specs (`# yaml-language-server: $schema=...`)."""

from __future__ import annotations

import inspect
import sys
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

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


def verifier_docs(only: str | None = None) -> dict[str, dict[str, Any]]:
    """Each available verifier (or just `only`, which may also be a `module:Class` path): import
    path, its own description (first paragraph in `doc`, all of it in `description`), and its
    arguments with their type, default and, for a fixed set of values, `choices`."""
    out: dict[str, dict[str, Any]] = {}
    names = registry.available()
    if only is not None:
        registry.resolve(only)  # an unknown name raises here, with did-you-mean
        names = {only: names.get(only, only)}
    for name, path in sorted(names.items()):
        try:
            cls = registry.resolve(name)
        except registry.UnknownVerifier as exc:
            out[name] = {"path": path, "error": str(exc)}
            continue
        doc = _own_doc(cls)
        args = []
        for field_name, info in cls.Args.model_fields.items():
            args.append({
                "name": field_name,
                "type": _type_name(info.annotation),
                "choices": _choices(info.annotation),
                "required": info.is_required(),
                "default": None if info.is_required() else to_jsonable_python(
                    info.get_default(call_default_factory=True), fallback=repr),
                "description": info.description or "",
            })
        out[name] = {"path": path, "doc": doc.split("\n\n")[0].replace("\n", " "), "description": doc,
                     "args": args}
    return out


def _own_doc(cls: type) -> str:
    """The class's own docstring, else its module's: never the `Verifier` base class's, which
    says nothing about this verifier."""
    doc = cls.__dict__.get("__doc__")
    if not doc:
        doc = getattr(sys.modules.get(cls.__module__), "__doc__", None) or ""
    return inspect.cleandoc(doc)


def _choices(annotation: Any) -> list[Any] | None:
    """The values a `Literal` (also inside `X | None`) allows; None for an open type."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    found = [c for arg in get_args(annotation) for c in (_choices(arg) or [])]
    return found or None


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " | ".join(repr(v) for v in get_args(annotation))
    if get_origin(annotation) in (Union, UnionType):
        return " | ".join(_type_name(a) for a in get_args(annotation))
    if get_origin(annotation) is not None:
        return str(annotation).replace("typing.", "")
    text = getattr(annotation, "__name__", None) or str(annotation)
    return "None" if text == "NoneType" else text.replace("typing.", "")
