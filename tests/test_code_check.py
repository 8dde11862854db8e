"""The code verifiers as a user meets them: `rewardkit verifiers` text, the one-time notice of
which sandbox runs the code (and what it does not stop), and `rewardkit check` on the shipped
code spec, where code_tests and bug_detector share their runs (counted at the sandbox)."""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from rk_sandboxes import Counting

from rewardkit.check import run_check
from rewardkit.sandbox import Program, RunResult, Sandbox
from rewardkit.sandbox.select import select_backend
from rewardkit.schema import verifier_docs
from rewardkit.spec import load_spec
from rewardkit.verifier import ScoringContext
from rewardkit.verifiers._code import runs as code_runs
from rewardkit.verifiers.bug_detector import BugDetector
from rewardkit.verifiers.code_tests import CodeTests

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "code.yaml"
SAMPLES = ROOT / "specs" / "samples" / "code.jsonl"
NOTICE = "rewardkit: code runs in the "

# specs/samples/code.jsonl: 12 completions, 2 of them do not compile (never run); the other 10
# are distinct programs: 4 x 3 tests + 3 x 4 + 3 x 4 = 36 (program, test) runs.
UNIQUE_RUNS = 36
PASS_RATE = [1.0, 1.0, 0.0, 0.0, 1.0, 0.75, 0.75, 0.0, 1.0, 0.75, 0.75, 0.0]
NO_BUG = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> list[Counting]:
    """Verifiers that open their own sandbox get a counted process backend, in a process state
    where no sandbox is open or announced yet."""
    opened: list[Counting] = []

    def open_counted(backend: str = "auto", **options: object) -> Sandbox:
        opened.append(Counting(select_backend("process")))
        return opened[-1]

    monkeypatch.setattr(code_runs, "select_backend", open_counted)
    monkeypatch.setattr(code_runs, "_SHARED", {})
    monkeypatch.setattr(code_runs, "_ANNOUNCED", set())
    return opened


@pytest.mark.parametrize("cls", [CodeTests, BugDetector])
def test_verifiers_listing_shows_their_own_doc_and_every_arg(cls: type) -> None:
    info = verifier_docs()[cls.name]
    own = inspect.cleandoc(cls.__dict__["__doc__"]).split("\n\n")[0].replace("\n", " ")
    assert info["doc"] == own and not info["doc"].startswith("Mixin")
    assert [a["name"] for a in info["args"] if not a["description"]] == []


def test_opening_a_sandbox_announces_it_once(fresh_process: list[Counting],
                                              caplog: pytest.LogCaptureFixture) -> None:
    sample = {"completion": "print(input())", "tests": {"inputs": ["1"], "outputs": ["1"]}}
    tests, bugs = CodeTests(CodeTests.Args(backend="process")), BugDetector()  # bugs: backend auto
    caplog.set_level(logging.WARNING, logger="rewardkit.sandbox")
    try:
        for _ in range(2):
            assert tests.score_batch([sample], ScoringContext())[0].value == 1.0
            assert bugs.score_batch([sample], ScoringContext())[0].value == 1.0
    finally:
        tests.close()
        bugs.close()
    notices = [r.getMessage() for r in caplog.records if r.name == "rewardkit.sandbox"]
    isolation = fresh_process[0].isolation()
    assert "Does NOT stop: network access" in isolation
    # two sandboxes were opened (backend "process" and backend "auto"), both are the process
    # backend here: one notice, which says what that backend does not stop
    assert len(fresh_process) == 2
    assert notices == [f"{NOTICE}'process' sandbox: {isolation}"]


def test_a_sandbox_given_by_the_caller_is_not_announced(fresh_process: list[Counting],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rewardkit.sandbox")
    given = Counting(select_backend("process"))
    sample = {"completion": "print(2)", "tests": {"inputs": [""], "outputs": ["2"]}}
    try:
        assert CodeTests().score_batch([sample], ScoringContext(sandbox=given))[0].value == 1.0
    finally:
        given.close()
    assert given.runs == 1 and fresh_process == []
    assert not [r for r in caplog.records if r.name == "rewardkit.sandbox"]


class NoSummary(Sandbox):
    name = "odd"

    def run(self, program: Program) -> RunResult:
        raise AssertionError("not run here")

    def isolation(self) -> str:
        raise RuntimeError("boom")


def test_notice_survives_a_backend_without_a_summary(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(code_runs, "_ANNOUNCED", set())
    caplog.set_level(logging.WARNING, logger="rewardkit.sandbox")
    code_runs.announce(NoSummary(), "auto")
    code_runs.announce(NoSummary(), "auto")
    assert [r.getMessage() for r in caplog.records] == [
        f"{NOTICE}'odd' sandbox (chosen for backend: auto): isolation unknown (RuntimeError)"]


def test_check_on_the_code_spec_shares_runs(fresh_process: list[Counting]) -> None:
    """`rewardkit check specs/code.yaml specs/samples/code.jsonl`, in-process with the
    verifiers opening their own sandbox as the CLI does: bug_detector runs nothing of its own."""
    spec = load_spec(SPEC)
    try:
        with SAMPLES.open(encoding="utf-8") as handle:
            report = run_check(spec, handle, ctx=ScoringContext())
    finally:
        spec.close()
    assert len(fresh_process) == 1 and fresh_process[0].runs == UNIQUE_RUNS
    table = report.table
    assert table.reward_names == ["pass_rate", "short", "no_bug"]
    assert table.values[:, 0].tolist() == PASS_RATE
    assert table.values[:, 2].tolist() == NO_BUG
    short = [table.cells[i][1].gated for i in range(len(PASS_RATE))]
    assert short == [p < 1 for p in PASS_RATE]  # length is scored only where every test passed


def test_rewardkit_check_command_on_the_code_spec() -> None:
    """The real command, in its own process, with the `auto` backend: JSON on stdout, exactly
    one sandbox notice on stderr."""
    proc = subprocess.run([sys.executable, "-m", "rewardkit.cli", "check", str(SPEC), str(SAMPLES)],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    got = [(s["scores"]["pass_rate"]["score"], s["scores"]["no_bug"]["score"]) for s in report["samples"]]
    assert got == list(zip(PASS_RATE, NO_BUG, strict=True))
    notices = [line for line in proc.stderr.splitlines() if line.startswith(NOTICE)]
    assert len(notices) == 1 and "sandbox (chosen for backend: auto): " in notices[0], proc.stderr
    assert "not stop" in notices[0].lower()
