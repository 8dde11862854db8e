"""Tool calling at CPU scale (GDPO paper section 4.1): pick the right function, fill its arguments.

A prompt lists 2-4 functions as JSON schemas and states a request; the answer is
`<think>call NAME</think>` then `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. The
right function is the one the request's wording names, and every argument value is copied from
the request. The warm-start demonstrations are deliberately imperfect (see `demonstration`), so
the policy RL starts from gets the format right about half the time and the call right less often.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

CITIES = ["paris", "tokyo", "rome", "cairo", "lima", "oslo", "delhi", "quito"]
DAYS = ["today", "tomorrow", "monday", "friday"]
CURRENCIES = ["usd", "eur", "yen", "gbp"]
PEOPLE = ["anna", "ben", "carl", "dana"]
MESSAGES = ["hello", "thanks", "sorry"]
NUMBERS = [str(n) for n in range(1, 10)]

# name -> (parameters as (name, type, allowed values), request templates)
FUNCTIONS: dict[str, tuple[list[tuple[str, str, list[str]]], list[str]]] = {
    "get_weather": ([("city", "string", CITIES), ("day", "string", DAYS)],
                    ["what is the weather in {city} {day}", "weather for {city} {day} please"]),
    "get_time": ([("city", "string", CITIES)], ["what time is it in {city}", "tell me the time in {city}"]),
    "book_hotel": ([("city", "string", CITIES), ("nights", "integer", NUMBERS)],
                   ["book a hotel in {city} for {nights} nights", "i need a room in {city} for {nights} nights"]),
    "convert_currency": ([("amount", "integer", NUMBERS), ("source", "string", CURRENCIES),
                          ("target", "string", CURRENCIES)],
                         ["convert {amount} {source} to {target}", "how much is {amount} {source} in {target}"]),
    "find_flights": ([("source", "string", CITIES), ("target", "string", CITIES)],
                     ["find flights from {source} to {target}", "fly me from {source} to {target}"]),
    "send_message": ([("to", "string", PEOPLE), ("body", "string", MESSAGES)],
                     ["send {body} to {to}", "tell {to} {body} from me"]),
}

JSON_PIECES = ['{"name": "', '", "parameters": {"', '", "arguments": {"', '": "', '": ', '", "', ', "', '"}}', "}}",
               "string", "integer"]
FORMAT_PIECES = ["tools:\n", "user: ", "\nassistant: ", "\n", " ", "<think>", "</think>", "<tool_call>",
                 "</tool_call>", "call ", "done"]


def pieces() -> list[str]:
    """Every piece of text a prompt or a completion of this task is made of."""
    words: list[str] = []
    for params, templates in FUNCTIONS.values():
        for t in templates:
            words += [w for w in t.split() if not w.startswith("{")]
        words += [p for p, _, _ in params]
    return FORMAT_PIECES + JSON_PIECES + list(FUNCTIONS) + words + CITIES + DAYS + CURRENCIES + PEOPLE + MESSAGES \
        + NUMBERS


def _schema_line(name: str) -> str:
    params = FUNCTIONS[name][0]
    body = '", "'.join(f'{p}": "{t}' for p, t, _ in params)
    return f'{{"name": "{name}", "parameters": {{"{body}"}}}}'


def _bfcl_function(name: str) -> dict[str, Any]:
    params = FUNCTIONS[name][0]
    return {"name": name, "parameters": {"type": "dict", "properties": {p: {"type": t} for p, t, _ in params},
                                         "required": [p for p, _, _ in params]}}


def _call_json(name: str, arguments: dict[str, Any]) -> str:
    return json.dumps({"name": name, "arguments": arguments})


def _draw_arguments(name: str, rng: np.random.Generator) -> dict[str, Any]:
    args: dict[str, Any] = {}
    used: set[str] = set()
    for p, t, values in FUNCTIONS[name][0]:
        choices = [v for v in values if v not in used]  # source and target differ
        v = str(rng.choice(choices))
        used.add(v)
        args[p] = int(v) if t == "integer" else v
    return args


def make_row(rng: np.random.Generator) -> dict[str, Any]:
    """One prompt: the functions on offer, the request, and the reference call."""
    names = list(FUNCTIONS)
    offered = [str(x) for x in rng.choice(names, size=int(rng.integers(2, 5)), replace=False)]
    target = offered[int(rng.integers(len(offered)))]
    args = _draw_arguments(target, rng)
    template = FUNCTIONS[target][1][int(rng.integers(2))]
    request = template.format(**{k: str(v) for k, v in args.items()})
    prompt = "tools:\n" + "\n".join(_schema_line(n) for n in offered) + f"\nuser: {request}\nassistant: "
    return {"prompt": prompt, "answer": [{"name": target, "arguments": args}],
            "functions": [_bfcl_function(n) for n in offered]}


def solution(row: dict[str, Any]) -> str:
    call = row["answer"][0]
    body = _call_json(call["name"], call["arguments"])
    return f"<think>call {call['name']}</think>\n<tool_call>\n{body}\n</tool_call>"


def demonstration(row: dict[str, Any], rng: np.random.Generator, p_wrong: float = 0.6,
                  p_bad_format: float = 0.5) -> str:
    """A warm-start demonstration, wrong on purpose part of the time, the two faults independent:

    - the call (p_wrong): another offered function, one argument with a value not in the request,
      or an argument left out;
    - the format (p_bad_format): no think block, a think block never closed, or text after the call.
    """
    call = row["answer"][0]
    name, args = call["name"], dict(call["arguments"])
    if rng.random() < p_wrong:
        kind = int(rng.integers(3))
        others = [f["name"] for f in row["functions"] if f["name"] != name]
        if kind == 0 and others:
            name = others[int(rng.integers(len(others)))]
            args = _draw_arguments(name, rng)
        elif kind == 1 or len(args) == 1:
            key = list(args)[int(rng.integers(len(args)))]
            fresh = _draw_arguments(name, rng)[key]
            args[key] = fresh if fresh != args[key] else _draw_arguments(name, rng)[key]
        else:
            args.pop(list(args)[-1])
    think, body = f"<think>call {name}</think>\n", f"<tool_call>\n{_call_json(name, args)}\n</tool_call>"
    if rng.random() < p_bad_format:
        kind = int(rng.integers(3))
        if kind == 0:
            return body
        if kind == 1:
            return f"<think>call {name}\n" + body
        return think + body + "\ndone"
    return think + body
