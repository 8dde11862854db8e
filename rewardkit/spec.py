"""Loading a spec: YAML -> validated models -> verifier instances and gates, with every problem
reported at once, each with its file, line, column and key path."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from pydantic import BaseModel, ValidationError

from rewardkit import registry
from rewardkit.errors import SpecError, SpecIssue
from rewardkit.gates import Gate, GateSyntaxError, dependency_order, parse_gate
from rewardkit.scoring import ScoreTable, score_samples
from rewardkit.spec_models import SpecConfig
from rewardkit.time_limit import DEFAULT_TIMEOUT_S, TimeGuard
from rewardkit.train_config import TrainConfig
from rewardkit.verifier import ScoringContext, Verifier, VerifierArgs
from rewardkit.yaml_positions import Path, Position, YamlProblem, load_with_positions, nearest_position


@dataclass
class Reward:
    """A reward ready to score: its config, its verifier instance and its parsed gate."""

    name: str
    verifier: Verifier
    gate: Gate | None
    weight: float
    otherwise: float
    on_error: str
    pass_at: float
    timeout_s: float = DEFAULT_TIMEOUT_S
    guard: TimeGuard = field(init=False)

    def __post_init__(self) -> None:
        self.guard = TimeGuard(self.name, self.timeout_s)


class Spec:
    """A loaded spec. `score` runs every reward (gates first-class); `close` frees verifier pools.

    `config` is the validated file (`SpecConfig`); `train` is its `train:` section validated as
    a `TrainConfig` (None without one), where `config.train` keeps the mapping as written."""

    def __init__(self, config: SpecConfig, rewards: list[Reward], order: list[list[str]],
                 train: TrainConfig | None, path: str) -> None:
        self.config = config
        self.rewards = rewards
        self.order = order
        self.train = train
        self.path = path
        self._pool: ThreadPoolExecutor | None = None  # scores a gate level's rewards side by side

    @property
    def reward_names(self) -> list[str]:
        return [r.name for r in self.rewards]

    @property
    def weights(self) -> list[float]:
        return [r.weight for r in self.rewards]

    def score(self, samples: Sequence[dict[str, Any]], ctx: ScoringContext | None = None) -> ScoreTable:
        widest = max(len(level) for level in self.order)
        if self._pool is None and widest > 1:
            # Kept for the spec's life: starting threads anew on every call cost about 1 ms per
            # reward, as much as cheap verifiers take to score a training batch.
            self._pool = ThreadPoolExecutor(max_workers=widest, thread_name_prefix="rewardkit-score")
        return score_samples(self.rewards, self.order, samples, ctx or ScoringContext(), self._pool)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        for reward in self.rewards:
            reward.verifier.close()

    def __enter__(self) -> Spec:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_spec(path: str | FilePath) -> Spec:
    """Read and validate a spec file; raises SpecError listing every problem with its place."""
    file = str(path)
    _importable_from(FilePath(path).resolve().parent)
    try:
        text = FilePath(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecIssue(file, None, (), f"cannot read spec: {exc}")]) from exc
    return load_spec_text(text, file)


def load_spec_text(text: str, file: str = "<spec>") -> Spec:
    """Like `load_spec`, from text; `file` is the name used in error messages.

    Example: two rewards, the second gated on the first; every problem of a bad spec is reported
    at once, with its line and column.

    >>> spec = load_spec_text('''
    ... version: 1
    ... name: demo
    ... rewards:
    ...   - {name: correct, verifier: exact_match, args: {reference: answer}}
    ...   - {name: brief, verifier: length_limit, args: {unit: words, max_length: 3}, when: correct >= 1}
    ... ''')
    >>> table = spec.score([{"completion": "4", "answer": "4"}, {"completion": "five", "answer": "4"}])
    >>> table.values.tolist()
    [[1.0, 1.0], [0.0, 0.0]]
    >>> table.cells[1][1].reason
    'gated: `correct >= 1` is false'
    >>> spec.close()
    >>> load_spec_text("version: 1\\nname: x\\nrewards:\\n  - {name: a, verifier: exact_mach}\\n")
    Traceback (most recent call last):
      ...
    rewardkit.errors.SpecError: <spec>: 1 problem
      <spec>:4:25: rewards[0].verifier: unknown verifier 'exact_mach'; did you mean 'exact_match'? ...
    """
    try:
        data, positions = load_with_positions(text)
    except YamlProblem as exc:
        raise SpecError([SpecIssue(file, exc.position, (), exc.message)]) from exc
    if data is None:
        raise SpecError([SpecIssue(file, Position(1, 1), (), "the spec is empty; expected a mapping with "
                                   "'version', 'name' and 'rewards'")])
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise SpecError([SpecIssue(file, positions.get(()), (), f"the spec is {kind}; expected a mapping "
                                   "with 'version', 'name' and 'rewards'")])
    checker = _Checker(file, positions)
    config = checker.validate(SpecConfig, data, ())
    args_models = checker.check_verifiers(data)
    gates = checker.check_gates(data)
    train = checker.check_train(data)
    if isinstance(config, SpecConfig):
        checker.check_audit(config)
    if checker.issues or config is None:
        raise SpecError(sorted(checker.issues, key=_issue_order))
    assert isinstance(config, SpecConfig)
    order = dependency_order({r.name: gates.get(r.name) for r in config.rewards})
    rewards = []
    for i, cfg in enumerate(config.rewards):
        cls, args = args_models[i]
        rewards.append(Reward(cfg.name, cls(args), gates.get(cfg.name), cfg.weight, cfg.otherwise,
                              cfg.on_error, cfg.pass_at, cfg.timeout_s))
    return Spec(config, rewards, order, train, file)


def _importable_from(folder: FilePath) -> None:
    """Let `python` verifiers and `module:Class` paths name modules that sit next to the spec."""
    import sys

    if str(folder) not in sys.path:
        sys.path.append(str(folder))


def _issue_order(issue: SpecIssue) -> tuple[int, int]:
    return (issue.position.line, issue.position.column) if issue.position else (0, 0)


class _Checker:
    """Collects issues from every stage so that one run reports them all."""

    def __init__(self, file: str, positions: dict[Path, Position]) -> None:
        self.file = file
        self.positions = positions
        self.issues: list[SpecIssue] = []

    def add(self, path: Path, message: str, prefer_key: bool = False) -> None:
        position = nearest_position(self.positions, path, prefer_key)
        self.issues.append(SpecIssue(self.file, position, path, message))

    def validate(self, model: type[BaseModel], data: Any, prefix: Path) -> BaseModel | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
                self._translate(model, prefix, loc, error)
            return None

    def _translate(self, root: type[BaseModel], prefix: Path, loc: Path, error: Any) -> None:
        path = prefix + loc
        kind = error["type"]
        if kind == "extra_forbidden":
            fields = _fields_at(root, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.add(path, f"unknown key {loc[-1]!r}{hint} (valid keys: {', '.join(fields)})", prefer_key=True)
        elif kind == "missing":
            self.add(path, f"missing required key {loc[-1]!r}" if loc else "missing required value")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            if kind not in ("value_error", "assertion_error") and "input" in error:
                message += f" (got {_short(error['input'])})"
            if kind == "literal_error" and isinstance(error.get("input"), str):
                expected = error.get("ctx", {}).get("expected", "")
                options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",")]
                close = difflib.get_close_matches(error["input"], options, n=1, cutoff=0.6)
                if close:
                    message += f"; did you mean {close[0]!r}?"
            self.add(path, message)

    def check_verifiers(self, data: dict[str, Any]) -> dict[int, tuple[type[Verifier], VerifierArgs]]:
        """Resolve each reward's verifier and validate its args with the verifier's own model."""
        out: dict[int, tuple[type[Verifier], VerifierArgs]] = {}
        rewards = data.get("rewards")
        if not isinstance(rewards, list):
            return out
        for i, reward in enumerate(rewards):
            if not isinstance(reward, dict) or not isinstance(reward.get("verifier"), str):
                continue
            try:
                cls = registry.resolve(reward["verifier"])
            except registry.UnknownVerifier as exc:
                self.add(("rewards", i, "verifier"), str(exc))
                continue
            args = reward.get("args", {})
            if args is None:
                args = {}
            if not isinstance(args, dict):
                continue  # reported by the structural validation
            validated = self.validate(cls.Args, args, ("rewards", i, "args"))
            if isinstance(validated, VerifierArgs):
                out[i] = (cls, validated)
        return out

    def check_gates(self, data: dict[str, Any]) -> dict[str, Gate]:
        """Parse gates, check names (unique, known) and that gates form a DAG."""
        rewards = data.get("rewards")
        if not isinstance(rewards, list):
            return {}
        names: dict[str, int] = {}
        for i, reward in enumerate(rewards):
            name = reward.get("name") if isinstance(reward, dict) else None
            if isinstance(name, str):
                if name in names:
                    first = nearest_position(self.positions, ("rewards", names[name], "name"))
                    line = f" (first used on line {first.line})" if first else ""
                    self.add(("rewards", i, "name"), f"duplicate reward name {name!r}{line}; names must be unique")
                else:
                    names[name] = i
        gates: dict[str, Gate] = {}
        gate_ok = True
        for i, reward in enumerate(rewards):
            if not isinstance(reward, dict) or not isinstance(reward.get("when"), str):
                continue
            name = reward.get("name")
            try:
                gate = parse_gate(reward["when"])
            except GateSyntaxError as exc:
                self.add(("rewards", i, "when"), f"gate syntax error: {exc}")
                gate_ok = False
                continue
            for ref in sorted(gate.names - set(names)):
                close = difflib.get_close_matches(ref, list(names), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.add(("rewards", i, "when"), f"gate names unknown reward {ref!r}{hint} "
                         f"(rewards: {', '.join(names)})")
                gate_ok = False
            if isinstance(name, str):
                gates[name] = gate
        if gate_ok and gates:
            try:
                dependency_order({n: gates.get(n) for n in names})
            except ValueError as exc:
                cycle_start = str(exc).split(": ", 1)[1].split(" -> ")[0]
                self.add(("rewards", names.get(cycle_start, 0), "when"), str(exc))
        return gates

    def check_audit(self, config: SpecConfig) -> None:
        """`audit: accept:` names rewards of this spec (or `total`)."""
        names = [r.name for r in config.rewards]
        for i, entry in enumerate(config.audit.accept):
            for j, reward in enumerate(entry.rewards):
                if reward != "total" and reward not in names:
                    close = difflib.get_close_matches(reward, names, n=1, cutoff=0.6)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    self.add(("audit", "accept", i, "rewards", j),
                             f"unknown reward {reward!r}{hint} (rewards: {', '.join(names)}, or total)")

    def check_train(self, data: dict[str, Any]) -> TrainConfig | None:
        train = data.get("train")
        if not isinstance(train, dict):
            return None  # absent; a `train:` that is not a mapping is SpecConfig's error
        validated = self.validate(TrainConfig, train, ("train",))
        return validated if isinstance(validated, TrainConfig) else None


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the union member's type name (e.g. 'str', 'list[...]') into error locations
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool", "dict", "list"})


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields_at(model: type[BaseModel], loc: Path) -> list[str]:
    """Field names of the model that sits at `loc` inside `model` (following lists and optionals)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return []
        current = _model_in(current.model_fields[part].annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
