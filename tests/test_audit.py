"""`rewardkit audit`: probes attack a spec's rewards; findings fail the audit unless the spec
accepts them with a reason. Every bundled spec audits clean (its accepted risks are written in
it), a spec with a known hole is caught with the probe, hack class, sample and rewards earned,
and probes come from plugins through the `rewardkit.probes` entry-point group."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rewardkit.audit import ENTRY_POINT_GROUP, all_probes, run_audit
from rewardkit.audit.probes import builtin_probes
from rewardkit.cli import main
from rewardkit.spec import load_spec, load_spec_text
from rewardkit.verifier import ScoringContext
from rewardkit.verifiers.length_limit import load_tokenizer_file

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "specs" / "samples"
BUNDLED = [("demo.yaml", "demo.jsonl"), ("quickstart.yaml", "quickstart.jsonl"), ("math_length.yaml", "math.jsonl"),
           ("tool_calling.yaml", "tool_calling.jsonl"), ("code.yaml", "code.jsonl"),
           ("paper_code.yaml", "paper_code.jsonl"), ("paper_math.yaml", "paper_math.jsonl"),
           ("paper_math_gated.yaml", "paper_math.jsonl"), ("paper_tool_calling.yaml", "paper_tool_calling.jsonl")]
FAMILIES = {"generic", "math", "tool_calls", "code"}
HACKS_THE_ISSUE_LISTS = {  # probe name -> hack class, as the issue lists them (at least)
    "empty", "prompt_echo", "empty_format", "format_nonsense", "repetition", "invisible_characters", "grader_note",
    "many_candidates", "candidates_in_one", "interval_around_gold", "think_vs_answer", "units_and_percent",
    "extra_calls", "every_function", "duplicate_calls", "argument_variants", "arguments_as_strings",
    "calls_outside_tags", "hardcoded_outputs", "exit_early", "stream_tricks", "crash_after_answer",
    "harness_overrides", "read_tests", "fork_early", "endless_output"}


def _rows(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (SAMPLES / name).read_text().splitlines() if line.strip()]


def test_the_probe_library_covers_every_family_the_issue_lists() -> None:
    probes = builtin_probes()
    assert {p.family for p in probes} == FAMILIES
    assert HACKS_THE_ISSUE_LISTS <= {p.name for p in probes}
    assert all(p.hack and p.description for p in probes)


def test_every_bundled_spec_is_audited() -> None:
    assert {name for name, _ in BUNDLED} == {p.name for p in (ROOT / "specs").glob("*.yaml")}


@pytest.mark.parametrize(("spec_name", "samples"), BUNDLED)
def test_every_bundled_spec_audits_clean_with_its_accepted_risks(spec_name: str, samples: str) -> None:
    from rewardkit.sandbox.select import unavailable_reason

    backend = "bwrap" if "backend: bwrap" in (ROOT / "specs" / spec_name).read_text() else None
    if backend and unavailable_reason(backend):
        pytest.skip(f"{spec_name} runs code under {backend}: {unavailable_reason(backend)}")
    spec = load_spec(ROOT / "specs" / spec_name)
    try:
        ctx = ScoringContext(tokenizer=load_tokenizer_file(str(SAMPLES / "tokenizer.json")))
        report = run_audit(spec, _rows(samples), ctx=ctx)
    finally:
        spec.close()
    assert report.open_findings == [], [(f.probe, f.variant, f.rule, [e.reward for e in f.earned])
                                        for f in report.open_findings]
    assert report.unused_accepts == []  # every accepted risk is still a real one
    assert all(f.accepted for f in report.findings)
    assert sum(p.completions for p in report.probes) > 20


LENIENT = """\
version: 1
name: lenient
rewards:
  - name: correct
    verifier: math_equivalence
    args: {reference: answer, ignore_thinking: false}
"""


def test_a_known_hole_is_found_with_probe_sample_rewards_and_honest_score(tmp_path: Path) -> None:
    """With ignore_thinking off, an answer inside <think> counted (the hole the audit found)."""
    spec = load_spec_text(LENIENT)
    try:
        report = run_audit(spec, _rows("math.jsonl"), rules=["pass"])
    finally:
        spec.close()
    hits = [f for f in report.open_findings if f.probe == "think_vs_answer"]
    assert hits, [f.probe for f in report.open_findings]
    f = hits[0]
    assert f.hack == "answer in the reasoning" and f.prompt and f.honest_total >= 1
    assert [e.reward for e in f.earned] == ["correct"] and "correct" in f.earned[0].reason
    fixed = load_spec_text(LENIENT.replace("ignore_thinking: false", "ignore_thinking: true"))
    try:
        again = run_audit(fixed, _rows("math.jsonl"), rules=["pass"])
    finally:
        fixed.close()
    assert not [f for f in again.open_findings if f.probe == "think_vs_answer"]


def test_the_command_exits_1_on_a_finding_and_0_once_accepted(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(LENIENT)
    samples = str(SAMPLES / "math.jsonl")
    assert main(["audit", str(spec), samples, "--json", "--probes", "think_vs_answer"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["findings"][0]["probe"] == "think_vs_answer" and report["findings"][0]["accepted"] is None
    spec.write_text(LENIENT + "audit:\n  accept:\n    - {probe: answer in the reasoning, reason: we grade the "
                    "reasoning too}\n")
    assert main(["audit", str(spec), samples, "--probes", "think_vs_answer", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {f["accepted"] for f in report["findings"]} == {"we grade the reasoning too"}
    assert main(["audit", str(spec), samples, "--probes", "think_vs_answer"]) == 0  # the table prints too
    assert "0 finding(s), 1 accepted" in " ".join(capsys.readouterr().out.split())


def test_an_accept_entry_needs_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(LENIENT + "audit:\n  accept:\n    - {probe: think_vs_answer}\n")
    assert main(["validate", str(spec)]) == 1
    assert "audit.accept[0].reason" in capsys.readouterr().err


def test_probes_come_from_plugins_through_the_entry_point_group(tmp_path: Path) -> None:
    """A real (tiny) installed distribution on sys.path declares a probe; the audit runs it."""
    (tmp_path / "rk_probe_plugin.py").write_text(textwrap.dedent("""\
        from rewardkit.audit import Probe

        SHOUT = Probe("shout", "shouting", "plugin", "the answer in capitals",
                      lambda inp: [("capitals", inp.honest.upper())])
        """))
    dist = tmp_path / "rk_probe_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rk-probe-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nshout = rk_probe_plugin:SHOUT\n")
    code = ("import json, sys\nfrom rewardkit.audit import all_probes, run_audit\nfrom rewardkit.spec import load_spec\n"
            "names = [p.name for p in all_probes()]\nspec = load_spec(sys.argv[1])\n"
            "rows = [json.loads(l) for l in open(sys.argv[2])]\n"
            "report = run_audit(spec, rows, probes=[p for p in all_probes() if p.name == 'shout'])\n"
            "print(json.dumps({'names': names, 'completions': report.probes[0].completions}))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "specs" / "quickstart.yaml"),
                           str(SAMPLES / "quickstart.jsonl")], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "shout" in out["names"] and out["completions"] == 2


def test_list_names_every_probe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "specs/quickstart.yaml", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(p.name in out for p in all_probes())


HE_SPEC = """\
version: 1
name: he
rewards:
  - {name: pass_rate, verifier: code_tests, args: {tests: test, prefix: prompt, time_limit_s: 5}}
  - {name: no_bug, verifier: bug_detector, args: {tests: test, prefix: prompt, time_limit_s: 5}}
"""
HE_ROW = {"prompt": 'def first(xs):\n    """the first item, or None"""\n', "entry_point": "first",
          "test": "def check(candidate):\n    assert candidate([1, 2]) == 1\n    assert candidate([]) is None\n",
          "completion": "```python\ndef first(xs):\n    return xs[0] if xs else None\n```"}


def test_assert_style_tests_resist_the_judge_tampering_probes() -> None:
    """HumanEval-style: an __eq__ that always agrees, disabled asserts, patched builtins, an
    overwritten harness, hidden crashes: none passes a test (the judge runs apart from the program)."""
    spec = load_spec_text(HE_SPEC)
    try:
        report = run_audit(spec, [HE_ROW], rules=["pass"],
                           probes=[p for p in all_probes() if p.family == "code"])
    finally:
        spec.close()
    passed = {(f.probe, f.variant) for f in report.findings if any(e.reward == "pass_rate" for e in f.earned)}
    assert passed == set(), passed
    assert {"__eq__ always true", "assert disabled"} <= {f.variant for f in report.findings}  # they ran...
    # ...and earned only no_bug: a wrong answer (a failing assertion of the test) is not a bug
    assert {e.reward for f in report.findings for e in f.earned} == {"no_bug"}


def test_an_accept_entry_naming_an_unknown_reward_is_a_load_error(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(LENIENT + "audit:\n  accept:\n    - {probe: '*', rewards: [corect], reason: r}\n")
    assert main(["validate", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "audit.accept[0].rewards[0]: unknown reward 'corect'; did you mean 'correct'?" in err
