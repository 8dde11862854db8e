"""BFCL's AST-checker rules for one predicted call against one reference call, restated.

The rules and the deliberate differences from BFCL are listed in `tool_call_match`'s docstring;
`tests/test_tool_call_bfcl.py` measures the agreement with BFCL's own checker on BFCL's data.
A reference is compiled once per data row (`compile_call`) into rules that judge many calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rewardkit.verifiers._tool_calls.parsing import RefCall, ToolCall, show

Normalizer = Callable[[str], str]

_SCHEMA_TYPES: dict[str, type] = {
    "string": str,
    "str": str,
    "integer": int,
    "int": int,
    "float": float,
    "number": float,
    "double": float,
    "boolean": bool,
    "bool": bool,
    "array": list,
    "tuple": list,
    "list": list,
    "dict": dict,
    "object": dict,
}
_JSON_NAMES = {str: "string", int: "integer", float: "float", bool: "boolean", list: "array", dict: "dict"}

_BFCL_DROP = str.maketrans("", "", " ,./-_*^")


def normalize_bfcl(text: str) -> str:
    """BFCL's string standardization: drop spaces and `,./-_*^`, lower-case, `'` -> `"`."""
    return text.translate(_BFCL_DROP).lower().replace("'", '"')


def normalize_casefold(text: str) -> str:
    """Case- and surrounding-whitespace-insensitive comparison."""
    return text.strip().casefold()


def normalize_exact(text: str) -> str:
    return text


NORMALIZERS: dict[str, Normalizer] = {
    "bfcl": normalize_bfcl,
    "casefold": normalize_casefold,
    "exact": normalize_exact,
}

Problem = Callable[[], str]
"""A problem found in a call, formatted only when a reason is shown (most never are)."""


@dataclass(slots=True)
class CallCheck:
    """The verdict on one (predicted, reference) pair.

    `ok_args` counts reference parameters judged right (an optional one left out counts as
    right); `problems` holds one actionable sentence (made on demand) per thing that is wrong.
    """

    name_ok: bool
    n_ref_args: int
    ok_args: int = 0
    problems: list[Problem] = field(default_factory=list)
    extra_args: int = 0
    unlisted_missing: int = 0
    key_jaccard: float = 0.0

    @property
    def valid(self) -> bool:
        return self.name_ok and not self.problems


@dataclass(frozen=True, slots=True)
class ParamRule:
    """One reference parameter, with what its checks need worked out once per data row."""

    name: str
    allowed: list[Any]
    omittable: bool  # `""` is among the allowed values
    expected: type | None  # from the schema, else from the allowed values; None = any type
    type_desc: str | None
    answer_type: type | None  # type of the first allowed value
    item_type: type | None  # for arrays
    variable: bool  # BFCL's "variable" case: the answers' type differs from the schema's
    strings: frozenset[str]  # the allowed strings, normalized

    def check(self, value: Any, norm: Normalizer) -> Problem | None:
        """None when `value` is acceptable, else what is wrong with it (one short clause, on demand)."""
        kind = type(value)
        expected = self.expected
        if kind is str and expected is str and not self.variable:  # the common case, first
            if norm(value) in self.strings:
                return None
            return lambda: _value_problem(value, self.allowed, norm)
        if expected is float and kind is int:
            value, kind = float(value), float
        variable = False
        if expected is not None:
            if kind is expected:
                variable = self.variable
                item_type = self.item_type
                if (
                    kind is list
                    and item_type is not None
                    and not _items_typed(value, self.allowed, item_type)
                ):
                    name = _JSON_NAMES.get(item_type, item_type.__name__)
                    return lambda: f"expected an array of {name}, got {show(value)}"
            elif kind is self.answer_type:
                variable = True
            else:
                got = _JSON_NAMES.get(kind, kind.__name__)
                return lambda: f"expected {self.type_desc}, got {got} {show(value)}"
        if variable:
            if any(same(value, a) for a in self.allowed):
                return None
        elif kind is str:
            if norm(value) in self.strings:
                return None
        elif any(_matches(value, a, self.item_type, norm) for a in self.allowed):
            return None
        return lambda: _value_problem(value, self.allowed, norm)


@dataclass(frozen=True, slots=True)
class CallRule:
    """One reference call compiled against its function's schema (if given)."""

    name: str
    params: dict[str, ParamRule]
    required: frozenset[str]  # the schema's required parameters
    known: frozenset[str] | None  # the schema's parameter names; None without a schema
    # Optional schema parameters an exact ({name, arguments}) reference leaves out: the reference
    # shows one right call, so these may be passed too, with any value of their type (None = any).
    # BFCL's possible answers list every acceptable parameter, so there this stays empty.
    optional: dict[str, type | None]


def compile_call(ref: RefCall, schema: dict[str, Any] | None, norm: Normalizer) -> CallRule:
    props = schema.get("properties") if schema else None
    if not isinstance(props, dict):
        props = None
    required = schema.get("required") if schema else None
    required_set = (
        frozenset(r for r in required if isinstance(r, str)) if isinstance(required, list) else frozenset()
    )
    params = {}
    for name, allowed in ref.params.items():
        prop = props.get(name) if props is not None else None
        params[name] = _compile_param(name, allowed, prop if isinstance(prop, dict) else None, norm)
    optional: dict[str, type | None] = {}
    if ref.exact and props is not None:
        for name, prop in props.items():
            if name not in params and name not in required_set:
                type_desc = prop.get("type") if isinstance(prop, dict) else None
                optional[name] = _SCHEMA_TYPES.get(type_desc) if isinstance(type_desc, str) else None
    return CallRule(ref.name, params, required_set, frozenset(props) if props is not None else None, optional)


def _optional_problem(param: str, value: Any, expected: type | None) -> Problem | None:
    """None when `value` fits an optional schema parameter's type (an int passes for a float, a
    bool is never a number)."""
    kind = type(value)
    if expected is None or kind is expected or (expected is float and kind is int):
        return None
    got, want = _JSON_NAMES.get(kind, kind.__name__), _JSON_NAMES.get(expected, expected.__name__)
    return _text(f"argument {param!r}: expected {want}, got {got} {show(value)}")


def _compile_param(name: str, allowed: list[Any], prop: dict[str, Any] | None, norm: Normalizer) -> ParamRule:
    answer_type = next((type(a) for a in allowed if not _is_omit(a)), None)
    type_desc = prop.get("type") if prop else None
    expected: type | None
    if isinstance(type_desc, str):
        expected = _SCHEMA_TYPES.get(type_desc)  # `any` and unknown types: no type constraint
    else:
        expected = answer_type if answer_type in _JSON_NAMES else None
        type_desc = _JSON_NAMES.get(expected) if expected else None
    return ParamRule(
        name=name,
        allowed=allowed,
        omittable=any(_is_omit(a) for a in allowed),
        expected=expected,
        type_desc=type_desc,
        answer_type=answer_type,
        item_type=_item_type(prop, allowed) if expected is list or expected is None else None,
        variable=expected is not None and answer_type is not None and answer_type is not expected,
        strings=frozenset(norm(a) for a in allowed if type(a) is str),
    )


def names_match(predicted: str, expected: str, dots_as_underscores: bool) -> bool:
    if predicted == expected:
        return True
    return dots_as_underscores and predicted == expected.replace(".", "_")


def _is_omit(value: Any) -> bool:
    return type(value) is str and value == ""


def _text(message: str) -> Problem:
    return lambda: message


def first_problem(
    pred: ToolCall, rule: CallRule, norm: Normalizer, dots_as_underscores: bool = False
) -> Problem | None:
    """The first thing wrong with `pred`, or None: `check_call` without building a verdict, for
    the hot path of exact matching (most pairs are either right or wrong early)."""
    if pred.name != rule.name and not names_match(pred.name, rule.name, dots_as_underscores):
        return _text(f"expected a call to {rule.name}, got {pred.name}")
    args = pred.arguments
    if not rule.required <= args.keys():
        missing = min(rule.required - args.keys())
        return _text(f"missing required argument {missing!r}")
    params, known = rule.params, rule.known
    free = 0
    for param, value in args.items():
        param_rule = params.get(param)
        if param_rule is None and param in rule.optional:
            free += 1
            problem = _optional_problem(param, value, rule.optional[param])
            if problem is not None:
                return problem
            continue
        if param_rule is None or (known is not None and param not in known):
            return _text(f"unexpected argument {param!r}")
        error = param_rule.check(value, norm)
        if error is not None:
            return _argument_problem(param, error)
    if len(args) - free != len(params):  # some reference parameters were left out: may they be?
        for param, param_rule in params.items():
            if param not in args and not (param_rule.omittable and param not in rule.required):
                return _missing_problem(param, param_rule.allowed)
    return None


def check_call(
    pred: ToolCall, rule: CallRule, norm: Normalizer, dots_as_underscores: bool = False
) -> CallCheck:
    """Judge `pred` against the compiled reference call `rule`."""
    params = rule.params
    n_ref = len(params)
    if not names_match(pred.name, rule.name, dots_as_underscores):
        return CallCheck(False, n_ref, problems=[_text(f"expected a call to {rule.name}, got {pred.name}")])
    check = CallCheck(True, n_ref)
    problems = check.problems
    args = pred.arguments
    if not rule.required <= args.keys():
        for param in sorted(rule.required - args.keys()):
            problems.append(_text(f"missing required argument {param!r}"))
            if param not in params:
                check.unlisted_missing += 1
    known = rule.known
    free = 0  # optional schema parameters beyond an exact reference: neither right nor extra
    for param, value in args.items():
        param_rule = params.get(param)
        if param_rule is None and param in rule.optional:
            problem = _optional_problem(param, value, rule.optional[param])
            if problem is None:
                free += 1
            else:
                problems.append(problem)
                check.extra_args += 1
            continue
        if param_rule is None or (known is not None and param not in known):
            problems.append(_text(f"unexpected argument {param!r}"))
            check.extra_args += 1
            continue
        error = param_rule.check(value, norm)
        if error is None:
            check.ok_args += 1
        else:
            problems.append(_argument_problem(param, error))
    if len(args) - check.extra_args - free == n_ref:  # every reference parameter was given
        ref_keys = n_ref
    else:
        ref_keys = 0
        for param, param_rule in params.items():
            if param in args:
                ref_keys += 1
            elif param_rule.omittable and param not in rule.required:
                check.ok_args += 1
            else:
                ref_keys += 1
                if param not in rule.required:
                    problems.append(_missing_problem(param, param_rule.allowed))
    shared = len(args) - check.extra_args - free
    union = ref_keys + check.extra_args + check.unlisted_missing  # required by the schema, not given
    check.key_jaccard = shared / union if union else 1.0
    return check


def _argument_problem(param: str, error: Problem) -> Problem:
    return lambda: f"argument {param!r}: {error()}"


def _missing_problem(param: str, allowed: list[Any]) -> Problem:
    return lambda: f"missing argument {param!r} (expected {expect(allowed)})"


def _value_problem(value: Any, allowed: list[Any], norm: Normalizer) -> str:
    detail = _dict_detail(value, allowed, norm) if type(value) is dict else ""
    return detail or f"expected {expect(allowed)}, got {show(value)}"


def _item_type(prop: dict[str, Any] | None, allowed: list[Any]) -> type | None:
    if prop is not None:
        items = prop.get("items")
        if isinstance(items, dict) and isinstance(items.get("type"), str):
            return _SCHEMA_TYPES.get(items["type"])
        return None
    for entry in allowed:
        if type(entry) is list and entry:
            first = type(entry[0])
            return first if first in (dict, list) else None
    return None


def _items_typed(value: list[Any], allowed: list[Any], item_type: type) -> bool:
    """BFCL's one-level check of array item types (an int is also accepted for a float)."""
    for entry in allowed:
        if type(entry) is not list:
            return True  # BFCL skips the item check when `""` (or a non-list) is allowed
        inner = next((type(x) for x in entry if not _is_omit(x)), None)
        if all(
            type(v) is item_type or type(v) is inner or (item_type is float and type(v) is int) for v in value
        ):
            return True
    return False


def _matches(value: Any, entry: Any, item_type: type | None, norm: Normalizer) -> bool:
    kind = type(value)
    if type(entry) is str and entry == "":
        if kind is list:
            return not value  # BFCL: an empty list stands for a parameter left out
        return kind is str and norm(value) == ""
    if kind is str:
        return type(entry) is str and norm(value) == norm(entry)
    if kind is dict:
        return type(entry) is dict and dict_matches(value, entry, norm)
    if kind is list:
        if type(entry) is not list or len(entry) != len(value):
            return False
        if item_type is dict or (item_type is None and entry and all(type(e) is dict for e in entry)):
            return all(
                type(v) is dict and type(e) is dict and dict_matches(v, e, norm)
                for v, e in zip(value, entry, strict=True)
            )
        return all(_top_item_equal(v, e, norm) for v, e in zip(value, entry, strict=True))
    return same(value, entry)


def _top_item_equal(value: Any, entry: Any, norm: Normalizer) -> bool:
    if type(value) is str:
        return type(entry) is str and norm(value) == norm(entry)
    return same(value, entry)


def dict_matches(value: dict[Any, Any], entry: dict[Any, Any], norm: Normalizer) -> bool:
    """`value` against one allowed dict whose values are lists of allowed values."""
    for key, item in value.items():
        if key not in entry:
            return False
        options = entry[key] if type(entry[key]) is list else [entry[key]]
        if not any(_top_item_equal(item, option, norm) for option in options):
            return False
    for key, options in entry.items():
        if key not in value and not (type(options) is list and any(_is_omit(o) for o in options)):
            return False
    return True


def _dict_detail(value: dict[Any, Any], allowed: list[Any], norm: Normalizer) -> str:
    """Name the first key that differs from the first allowed dict (for an actionable reason)."""
    entry = next((e for e in allowed if type(e) is dict), None)
    if entry is None:
        return ""
    for key, item in value.items():
        if key not in entry:
            return f"unexpected key {show(key, 30)}"
        options = entry[key] if type(entry[key]) is list else [entry[key]]
        if not any(_top_item_equal(item, option, norm) for option in options):
            return f"key {show(key, 30)}: expected {expect(options)}, got {show(item)}"
    for key, options in entry.items():
        if key not in value and not (type(options) is list and any(_is_omit(o) for o in options)):
            return f"missing key {show(key, 30)}"
    return ""


def same(a: Any, b: Any) -> bool:
    """Structural equality where numbers compare by value but booleans only equal booleans."""
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta in (int, float) and tb in (int, float):
        return bool(a == b)
    if ta is not tb:
        return False
    if ta is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def expect(allowed: list[Any]) -> str:
    """'celsius' | one of 'celsius', 'c' | ... (or omitted)."""
    real = [a for a in allowed if not _is_omit(a)]
    optional = len(real) < len(allowed)
    if not real:
        return "it left out"
    text = show(real[0]) if len(real) == 1 else "one of " + ", ".join(show(a, 30) for a in real[:4])
    if len(real) > 4:
        text += ", ..."
    return text + (" (or omitted)" if optional else "")
