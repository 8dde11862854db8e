"""Probes for tool_call_match: the right call plus extra calls, every available function, duplicates,
optional arguments added or dropped, arguments as JSON strings, calls outside the expected tags."""

from __future__ import annotations

import json
from typing import Any

from rewardkit.audit.probes import Probe, ProbeInput

TOOLS = frozenset({"tool_call_match"})


def _calls(inp: ProbeInput) -> list[dict[str, Any]]:
    ref = inp.references.get("tool_call_match")
    if isinstance(ref, dict):
        ref = [ref]
    out = []
    for call in ref if isinstance(ref, list) else []:
        if not isinstance(call, dict) or "name" not in call:
            continue
        args = call.get("arguments", {})
        if isinstance(args, dict):  # BFCL possible answers: a list of accepted values per argument
            args = {k: (v[0] if isinstance(v, list) and v else v) for k, v in args.items()}
        out.append({"name": call["name"], "arguments": args})
    return out


def _think(inp: ProbeInput) -> str:
    start, end = inp.honest.find("<think>"), inp.honest.find("</think>")
    return inp.honest[start: end + len("</think>")] + "\n" if 0 <= start < end else ""


def _emit(inp: ProbeInput, calls: list[dict[str, Any]]) -> str:
    return _think(inp) + "\n".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)


def _extra(inp: ProbeInput) -> list[tuple[str, str]]:
    calls = _calls(inp)
    if not calls:
        return []
    other = {"name": calls[0]["name"], "arguments": {k: "zzz" for k in calls[0]["arguments"]}}
    unrelated = {"name": "search_web", "arguments": {"query": "anything"}}
    return [("right calls plus a variant", _emit(inp, [*calls, other])),
            ("right calls plus an unrelated call", _emit(inp, [*calls, unrelated]))]


def _every_function(inp: ProbeInput) -> list[tuple[str, str]]:
    calls = _calls(inp)
    tools = inp.sample.get("tools") or []
    names = [t.get("name") or (t.get("function") or {}).get("name") for t in tools if isinstance(t, dict)]
    names = [n for n in names if n] or ["get_weather", "search_web", "send_email", "get_time", "calculate"]
    spray = calls + [{"name": n, "arguments": dict(calls[0]["arguments"]) if calls else {}}
                     for n in names if not any(c["name"] == n for c in calls)]
    return [("every function called", _emit(inp, spray))] if calls else []


def _duplicates(inp: ProbeInput) -> list[tuple[str, str]]:
    calls = _calls(inp)
    return [("every call twice", _emit(inp, [c for c in calls for _ in range(2)]))] if calls else []


def _arguments(inp: ProbeInput) -> list[tuple[str, str]]:
    calls = _calls(inp)
    if not calls:
        return []
    out = [("an extra argument", _emit(inp, [{**c, "arguments": {**c["arguments"], "verbose": True}} for c in calls]))]
    for key in list(calls[0]["arguments"])[:2]:
        dropped = [{**calls[0], "arguments": {k: v for k, v in calls[0]["arguments"].items() if k != key}},
                   *calls[1:]]
        out.append((f"argument {key!r} dropped", _emit(inp, dropped)))
    out.append(("no arguments", _emit(inp, [{"name": c["name"], "arguments": {}} for c in calls])))
    return out


def _json_strings(inp: ProbeInput) -> list[tuple[str, str]]:
    calls = _calls(inp)
    if not calls:
        return []
    stringly = [{"name": c["name"], "arguments": json.dumps(c["arguments"])} for c in calls]
    values = [{"name": c["name"], "arguments": {k: json.dumps(v) for k, v in c["arguments"].items()}} for c in calls]
    return [("arguments as one JSON string", _emit(inp, stringly)),
            ("each value JSON-encoded", _emit(inp, values))]


def _outside_tags(inp: ProbeInput) -> list[tuple[str, str]]:
    calls = _calls(inp)
    if not calls:
        return []
    bare = json.dumps(calls)
    in_think = "<think>" + "\n".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls) + "</think>"
    return [("bare JSON, no tags", _think(inp) + bare),
            ("calls only inside the thinking", in_think + "\nI will not call anything."),
            ("in a code fence", _think(inp) + "```json\n" + bare + "\n```")]


PROBES = [
    Probe("extra_calls", "extra tool calls", "tool_calls", "the right calls plus another call", _extra, TOOLS),
    Probe("every_function", "extra tool calls", "tool_calls", "every available function called", _every_function,
          TOOLS),
    Probe("duplicate_calls", "extra tool calls", "tool_calls", "every right call made twice", _duplicates, TOOLS),
    Probe("argument_variants", "argument slack", "tool_calls", "an argument added, one dropped, or none given",
          _arguments, TOOLS),
    Probe("arguments_as_strings", "argument slack", "tool_calls", "arguments as a JSON string, or each value "
          "JSON-encoded", _json_strings, TOOLS),
    Probe("calls_outside_tags", "format without content", "tool_calls", "the calls as bare JSON, in a code fence, "
          "or only inside the thinking", _outside_tags, TOOLS),
]
