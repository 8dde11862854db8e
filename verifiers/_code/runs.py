"""What `code_tests` and `bug_detector` share: reading a sample into a program and its tests,
running every (sample, test) of a batch in the sandbox at once, and judging each run.

Runs are keyed by (backend, program, what the sandbox sees of the test, limits) in
`ctx.cache`, so when a spec uses both verifiers on the same program the second one reuses the
first one's runs. The engine may call both at the same time (rewards of one gate level run in
threads), so a key holds a Future: the first verifier to claim a key runs it, the other waits.
A verifier runs all of its own claims before waiting on anyone else's, so two never deadlock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from rewardkit.sandbox.base import Limits, Program, RunResult, Sandbox
from rewardkit.sandbox.select import select_backend
from rewardkit.verifier import Sample, Score, ScoringContext, VerifierArgs, field_value
from rewardkit.verifiers._code.cases import TestCase, TestDataError, parse_tests
from rewardkit.verifiers._code.extract import compile_problem, extract_program
from rewardkit.verifiers._code.verdicts import VERDICTS, VerdictCache
from rewardkit.verifiers._text import one_line, sample_text

HARNESS_SOURCE = Path(__file__).with_name("harness.py").read_text(encoding="utf-8")
CACHE_PREFIX = "rewardkit.code_run"


class CodeRunArgs(VerifierArgs):
    """Where the program and its tests come from, and the limits each test runs under."""

    backend: Literal["auto", "docker", "bwrap", "process"] = Field(
        "auto", description="sandbox backend; auto = docker if usable, else bwrap, else process")
    language: Literal["python"] = Field("python", description="language of the program (the fence tag to look for)")
    extract: Literal["fenced", "full"] = Field(
        "fenced", description="where the program is: `fenced` (the last fenced block of the language, else the "
        "last untagged one, else the whole text) or `full` (the whole completion)")
    tests: str | list[str] = Field("tests", description="data field(s) holding the tests; several are concatenated")
    test_format: Literal["auto", "stdio", "assert", "call"] = Field(
        "auto", description="stdio (inputs/outputs), assert (HumanEval/MBPP), call (APPS fn_name); auto guesses")
    entry_point: str = Field("entry_point", description="data field naming the function (check(f) / call-based)")
    prefix: str | None = Field(None, description="data field put before the program, e.g. HumanEval's prompt")
    test_setup: str | None = Field(None, description="data field with code run before each assert (MBPP)")
    time_limit_s: float = Field(5.0, gt=0, le=600, description="wall and CPU limit per test")
    total_time_limit_s: float = Field(
        60.0, gt=0, description="time budget per sample over all its tests: a sample sends at most "
        "total/time_limit_s tests at once, a test gets at most what is left, tests past it fail unrun")
    memory_mb: int = Field(512, ge=16, description="memory limit per test run, in MiB")
    max_tests: int | None = Field(None, ge=1, description="use at most this many tests per sample")
    max_program_chars: int = Field(100_000, ge=1, description="longer programs score 0 without running")
    stop_at_first_failure: bool = Field(
        False, description="stop a sample's tests at its first failure (saves runs; the rest count as failed)")
    cache_verdicts: bool = Field(
        True, description="reuse the judged run of an identical (program, test, limits, backend) from earlier "
        "batches and steps; only runs that ended on their own are kept, never timeouts or sandbox errors")


@dataclass(frozen=True)
class Plan:
    """One sample, ready to run: the program and its cases, or why it cannot run."""

    program: str = ""
    cases: tuple[TestCase, ...] = ()
    compile_error: str | None = None  # the program's fault: judged without running
    data_error: str | None = None     # the row's fault: the sample cannot be judged


@dataclass(frozen=True)
class Outcome:
    """One test's run, judged. `fault` is None (ran cleanly), "program" (a bug: raised, crashed,
    timed out, was killed at a limit) or "test" (the test's own check failed: a wrong answer)."""

    status: str            # the sandbox status, or "not-run" (over the sample's time budget)
    fault: str | None
    detail: str            # why, for the reason line
    stdout: str = ""
    result: Any = None     # call-based: {"json": value} or {"repr": text}
    wall_s: float = 0.0
    error: str | None = None  # the sandbox failed: not the program's fault


def build_plan(sample: Sample, args: CodeRunArgs, reward: str = "") -> Plan:
    """Read the program and the tests out of one sample. Never raises."""
    try:
        cases = _cases(sample, args, reward)
    except (KeyError, TestDataError, TypeError, ValueError, RecursionError) as exc:
        return Plan(data_error=one_line(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)))
    if not cases:
        return Plan(data_error=f"the sample has no tests in {args.tests!r}")
    if args.max_tests is not None:
        cases = cases[: args.max_tests]
    text = sample_text(sample)
    if not text.strip():
        return Plan("", tuple(cases), compile_error="empty completion (not run)")
    code = extract_program(text, args.language) if args.extract == "fenced" else text
    if not code.strip():
        return Plan("", tuple(cases), compile_error="no program in the completion (not run)")
    if args.prefix:
        try:
            prefix = field_value(sample, args.prefix, reward)
        except KeyError as exc:
            return Plan(data_error=one_line(str(exc.args[0])))
        code = f"{prefix}{code}"
    problem = compile_problem(code, args.max_program_chars)
    return Plan(code, tuple(cases), compile_error=problem)


def _cases(sample: Sample, args: CodeRunArgs, reward: str) -> list[TestCase]:
    names = [args.tests] if isinstance(args.tests, str) else list(args.tests)
    entry = sample.get(args.entry_point)
    setup = sample.get(args.test_setup) if args.test_setup else ""
    cases: list[TestCase] = []
    for name in names:
        raw = field_value(sample, name, reward)
        cases += parse_tests(raw, args.test_format, str(entry or ""), str(setup or ""))
    return cases


def limits_for(args: CodeRunArgs, wall_s: float | None = None) -> Limits:
    wall = args.time_limit_s if wall_s is None else wall_s
    return Limits(wall_s=wall, cpu_s=wall, memory_mb=args.memory_mb)


def _run_key(backend: str, program: str, case: TestCase, limits: Limits) -> tuple[str, str]:
    blob = json.dumps([backend, program, list(case.run_key()), repr(limits)], default=repr)
    return (CACHE_PREFIX, hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest())


def _safe(text: str) -> str:
    """Text the sandbox can write as UTF-8 (lone surrogates become '?')."""
    return text.encode("utf-8", "replace").decode("utf-8")


def to_program(program: str, case: TestCase, limits: Limits) -> tuple[Program, str]:
    """The sandbox program for one test, and the nonce its harness report carries ('' for stdio)."""
    files = {"solution.py": program}  # valid UTF-8: compile_problem rejected lone surrogates
    if case.kind == "stdio":
        return Program(("python3", "solution.py"), files, _safe(case.stdin), limits), ""
    nonce = "@rewardkit:" + secrets.token_hex(16) + ":"
    if case.kind == "assert":
        request: dict[str, Any] = {"mode": "assert", "code": case.code, "entry_point": case.entry_point,
                                   "setup": case.setup}
    else:
        request = {"mode": "call", "name": case.entry_point, "args": case.args}
    request["nonce"] = nonce
    files["harness.py"] = HARNESS_SOURCE
    stdin = json.dumps(request, default=repr)  # ASCII: escapes survive any encoding
    return Program(("python3", "harness.py"), files, stdin, limits), nonce


def judge(result: RunResult, nonce: str, limits: Limits) -> Outcome:
    """Turn a sandbox result (and the harness report in it, if any) into an Outcome."""
    wall = result.wall_s
    status = result.status
    if status == "sandbox_error":
        return Outcome(status, None, "sandbox error", wall_s=wall, error=one_line(result.stderr or "sandbox error"))
    if status == "timeout":
        which = "CPU" if result.limit == "cpu" else "wall"
        return Outcome(status, "program", f"{which} limit {limits.wall_s:g}s", wall_s=wall)
    if status == "output_limit":
        return Outcome(status, "program", f"over {limits.output_bytes:,} bytes", wall_s=wall)
    if status == "memory":
        return Outcome(status, "program", f"{limits.memory_mb} MB", wall_s=wall)
    if status == "killed":
        return Outcome(status, "program", _last_line(result.stderr) or "signal", wall_s=wall)
    stdout = result.stdout
    if not nonce:  # stdio: the exit status is the whole story
        if status == "ok":
            return Outcome(status, None, "ran", stdout=stdout, wall_s=wall)
        return Outcome(status, "program", _crash_detail(result), stdout=stdout, wall_s=wall)
    report = _report(stdout, nonce)
    if report is None:
        how = "it exited early, closed stdout or crashed the interpreter"
        detail = _crash_detail(result) if status != "ok" else f"no test report ({how})"
        return Outcome(status, "program", detail, wall_s=wall)
    if report.get("ok"):
        return Outcome(status, None, "passed", result=report.get("result"), wall_s=wall)
    error = str(report.get("error") or "failed")
    if report.get("fault") == "harness":
        return Outcome(status, None, "harness error", wall_s=wall, error=f"the test harness failed: {error}")
    fault = "program" if report.get("fault") == "program" else "test"
    if fault == "program" and error.startswith("MemoryError"):
        return Outcome("memory", "program", f"{limits.memory_mb} MB, MemoryError", wall_s=wall)
    signal_name = str(report.get("signal") or "")
    if signal_name == "SIGXCPU":
        return Outcome("timeout", "program", f"CPU limit {limits.cpu_s:g}s", wall_s=wall)
    if signal_name:
        return Outcome("killed", "program", signal_name, wall_s=wall)
    line = str(report.get("line") or "")
    detail = f"{error} in `{line}`" if fault == "test" and line else error
    if report.get("stage") == "test-compile":
        return Outcome(status, None, detail, wall_s=wall, error=f"the test does not compile: {error}")
    return Outcome(status, fault, detail, wall_s=wall)


def _report(stdout: str, nonce: str) -> dict[str, Any] | None:
    """The harness's report: the JSON line after the last newline + nonce (the program cannot
    know the nonce; a JSON line holds no raw newline, so a value quoting the nonce is no match)."""
    at = stdout.rfind("\n" + nonce)
    if at < 0:
        return None
    line = stdout[at + 1 + len(nonce):].split("\n", 1)[0]
    try:
        report = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return report if isinstance(report, dict) else None


def _crash_detail(result: RunResult) -> str:
    """The exception line after a traceback, else the exit code (and the last line of stderr)."""
    last = _last_line(result.stderr)
    if last and "Traceback (most recent call last)" in result.stderr:
        return last
    return f"exit code {result.exit_code}" + (f": {last}" if last else "")


def _last_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith(" ")]
    lines = [ln for ln in lines if not ln.startswith("rewardkit harness:")]
    return one_line(lines[-1], 200) if lines else ""


LIMIT_WORDS = {"timeout": "timeout", "memory": "memory limit", "output_limit": "output limit",
               "killed": "killed"}


def failure_text(number: int, outcome: Outcome) -> str:
    """'timeout on test 4 (wall limit 5s)' or 'test 2: IndexError: list index out of range'."""
    if outcome.status in LIMIT_WORDS and outcome.fault == "program":
        return f"{LIMIT_WORDS[outcome.status]} on test {number} ({outcome.detail})"
    return f"test {number}: {outcome.detail}"


class RunCache:
    """Claim-run-share of test runs in `ctx.cache` (see the module docstring)."""

    def __init__(self, ctx: ScoringContext, sandbox: Sandbox, verdicts: VerdictCache | None = VERDICTS) -> None:
        self.cache = ctx.cache
        self.verdicts = verdicts  # across batches and steps (see verdicts.py); None: always run
        self.sandbox = sandbox
        self.workers = ctx.workers
        self.backend = getattr(sandbox, "name", "") or type(sandbox).__name__
        self.runs = 0  # sandbox runs this object started (for tests and logs)

    def run(self, jobs: Sequence[tuple[str, TestCase, Limits]]) -> list[Outcome]:
        keys = [_run_key(self.backend, program, case, limits) for program, case, limits in jobs]
        owned: dict[tuple[str, str], tuple[Future[Outcome], int]] = {}
        futures: list[Future[Outcome]] = []
        for i, key in enumerate(keys):
            fresh: Future[Outcome] = Future()
            known = self.verdicts.get(key) if self.verdicts is not None and key not in self.cache else None
            if known is not None:
                fresh.set_result(known)
            got = self.cache.setdefault(key, fresh)  # atomic for a dict: one claimer per key
            if got is fresh and known is None:
                owned[key] = (fresh, i)
            futures.append(got)
        self._run_owned(jobs, owned)
        if self.verdicts is not None:
            for key, (future, _) in owned.items():
                self.verdicts.put(key, future.result())
        return [f.result() for f in futures]

    def _run_owned(self, jobs: Sequence[tuple[str, TestCase, Limits]],
                   owned: dict[tuple[str, str], tuple[Future[Outcome], int]]) -> None:
        if not owned:
            return
        order = list(owned.values())
        try:
            built = [to_program(jobs[i][0], jobs[i][1], jobs[i][2]) for _, i in order]
            self.runs += len(built)
            results = self.sandbox.run_batch([p for p, _ in built], workers=self.workers)
            for (future, i), (_, nonce), result in zip(order, built, results, strict=True):
                future.set_result(judge(result, nonce, jobs[i][2]))
        except BaseException as exc:
            for future, _ in order:
                if not future.done():
                    future.set_result(Outcome("sandbox_error", None, "sandbox error",
                                              error=one_line(f"{type(exc).__name__}: {exc}")))
            if not isinstance(exc, Exception):
                raise


def run_plans(plans: Sequence[Plan], runner: RunCache, args: CodeRunArgs,
              stop: Callable[[TestCase, Outcome], bool] | None = None) -> list[list[Outcome]]:
    """Outcomes of the cases of every runnable plan, in case order (a stopped sample has fewer).

    All samples' tests go to the sandbox together, in rounds. A sample sends at most as many
    tests per round as their time limits fit in what is left of its total budget (usually all of
    them in the first round), and a test never gets more time than is left, so one sample costs
    the sandbox at most its budget. With `stop` set (stop at first failure), a sample sends 1, 2,
    4, ... tests per round and stops at a failure while the batch stays concurrent. Tests past the
    budget count as not run.
    """
    total = args.total_time_limit_s
    over = f"over the {total:g}s total time limit"
    outcomes: list[list[Outcome]] = [[] for _ in plans]
    live = [i for i, p in enumerate(plans) if p.compile_error is None and p.data_error is None]
    spent = {i: 0.0 for i in live}
    rounds = 0
    while live:
        jobs: list[tuple[str, TestCase, Limits]] = []
        owners: list[int] = []
        for i in live:
            done = len(outcomes[i])
            remaining = total - spent[i]
            count = max(1, int(remaining // args.time_limit_s))
            if stop is not None:
                count = min(count, 1 << rounds)
            limits = limits_for(args, min(args.time_limit_s, remaining))
            for case in plans[i].cases[done: done + count]:
                jobs.append((plans[i].program, case, limits))
                owners.append(i)
        for (_, _, limits), i, outcome in zip(jobs, owners, runner.run(jobs), strict=True):
            if spent[i] >= total:
                outcome = Outcome("not-run", "program", over)
            elif outcome.status == "timeout" and limits.wall_s < args.time_limit_s:
                outcome = Outcome("timeout", "program", f"{limits.wall_s:.3g}s left of the {total:g}s total "
                                  "time limit", wall_s=outcome.wall_s)
            spent[i] += outcome.wall_s
            outcomes[i].append(outcome)
        still = []
        for i in live:
            finished = len(outcomes[i]) >= len(plans[i].cases)
            failed = stop is not None and any(
                stop(c, o) for c, o in zip(plans[i].cases, outcomes[i], strict=False))
            if spent[i] >= total and not finished:
                outcomes[i] += [Outcome("not-run", "program", over)] * (len(plans[i].cases) - len(outcomes[i]))
            elif not finished and not failed:
                still.append(i)
        live = still
        rounds += 1
    return outcomes


_SHARED_LOCK = threading.Lock()
_SHARED: dict[str, list[Any]] = {}  # backend -> [sandbox, users]
_ANNOUNCED: set[str] = set()  # backends already announced in this process

LOG = logging.getLogger("rewardkit.sandbox")


def announce(sandbox: Sandbox, requested: str) -> None:
    """Say once per process and backend where model-written code runs and what that backend does
    not stop (the process backend stops much less than docker). A warning on the
    `rewardkit.sandbox` logger: with no logging set up, Python prints it to stderr, so
    `rewardkit check`/`train` show it without touching their stdout."""
    name = getattr(sandbox, "name", "") or type(sandbox).__name__
    if name in _ANNOUNCED:
        return
    _ANNOUNCED.add(name)
    how = "" if requested == name else f" (chosen for backend: {requested})"
    try:
        isolation = sandbox.isolation() or "no isolation summary given"
    except Exception as exc:  # noqa: BLE001 - a notice must never stop scoring
        isolation = f"isolation unknown ({type(exc).__name__})"
    LOG.warning("rewardkit: code runs in the %r sandbox%s: %s", name, how, isolation)


class SandboxUser:
    """Mixin: use `ctx.sandbox` when the engine provides one; else borrow a sandbox for
    `args.backend`, opened on first use and shared by every code verifier in this process (one
    docker pool, not one per reward), closed when the last of them calls `close()`. Opening one
    announces it (see `announce`); a sandbox the caller passes in is the caller's choice, so it is
    not announced."""

    args: Any

    def _sandbox(self, ctx: ScoringContext) -> Sandbox:
        if ctx.sandbox is not None:
            return ctx.sandbox  # type: ignore[no-any-return]
        with _SHARED_LOCK:
            own = self.__dict__.get("_own_sandbox")
            if own is None:
                backend = self.args.backend
                entry = _SHARED.get(backend)
                if entry is None:
                    entry = _SHARED[backend] = [select_backend(backend), 0]
                    announce(entry[0], backend)
                entry[1] += 1
                own = self.__dict__["_own_sandbox"] = entry[0]
            return own  # type: ignore[no-any-return]

    def warm_up(self, ctx: ScoringContext) -> None:
        """Open the sandbox (a docker or bwrap pool starts its workers) and run one trivial program."""
        result = self._sandbox(ctx).run(Program(files={"main.py": "print('ok')"}, limits=Limits(wall_s=60, cpu_s=10)))
        if not result.ok or result.stdout.strip() != "ok":
            raise RuntimeError(f"the sandbox failed a trivial program: {result.status} "
                               f"{one_line(result.stderr or result.stdout)}")

    def close(self) -> None:
        with _SHARED_LOCK:
            own = self.__dict__.pop("_own_sandbox", None)
            if own is None:
                return
            backend = self.args.backend
            entry = _SHARED.get(backend)
            if entry is None or entry[0] is not own:
                own.close()
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _SHARED[backend]
        own.close()


class ProgramVerifier(SandboxUser):
    """The flow both code verifiers share: plan each sample (extract, compile, read its tests),
    run what compiled through the shared run cache, then let the subclass judge the outcomes.
    Subclasses give `_stop` (a test outcome that ends a sample early under
    `stop_at_first_failure`) and `_judge`."""

    name: ClassVar[str]

    def required_fields(self) -> list[str]:
        fields = [self.args.tests] if isinstance(self.args.tests, str) else list(self.args.tests)
        return fields + [f for f in (self.args.prefix, self.args.test_setup) if f]

    def score_batch(self, samples: Sequence[Sample], ctx: ScoringContext) -> list[Score]:
        plans = [build_plan(s, self.args, self.name) for s in samples]
        outcomes: list[list[Outcome]] = [[] for _ in plans]
        if any(p.compile_error is None and p.data_error is None for p in plans):
            try:
                runner = RunCache(ctx, self._sandbox(ctx), VERDICTS if self.args.cache_verdicts else None)
                stop = self._stop if self.args.stop_at_first_failure else None
                outcomes = run_plans(plans, runner, self.args, stop)
            except Exception as exc:  # noqa: BLE001 - no sandbox: every sample is unjudged, none raises
                error = f"sandbox unavailable: {one_line(f'{type(exc).__name__}: {exc}')}"
                return [_static(p) or Score.failed(error) for p in plans]
        scores = []
        for plan, outs in zip(plans, outcomes, strict=True):
            try:
                scores.append(_static(plan) or self._judge(plan, outs))
            except Exception as exc:  # noqa: BLE001 - one odd sample never sinks the batch
                scores.append(Score.failed(f"{type(exc).__name__}: {one_line(str(exc))}"))
        return scores

    def _stop(self, case: TestCase, outcome: Outcome) -> bool:
        raise NotImplementedError

    def _judge(self, plan: Plan, outs: list[Outcome]) -> Score:
        raise NotImplementedError


def _static(plan: Plan) -> Score | None:
    """A verdict reached without running: unreadable tests (an error) or a compile error (0)."""
    if plan.data_error is not None:
        return Score.failed(plan.data_error)
    if plan.compile_error is not None:
        return Score(0.0, plan.compile_error)
    return None
