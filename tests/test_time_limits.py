"""Every reward is time-bounded (issue 13, part 5): a verifier that hangs on a completion makes
those cells errors with the reason, and `check`, training and the TRL bridge go on.

Two layers are tested: the engine's per-reward `timeout_s` (a plugin verifier that sleeps in the
caller's process; at most one stuck call per reward, later batches are errors until it ends) and
the `python` verifier's killable worker processes (a function that hangs on one sample costs
that sample alone, and its worker is killed and replaced).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from rewardkit.spec import load_spec, load_spec_text

ROOT = Path(__file__).resolve().parents[1]

HANGING = '''
import threading, time
from rewardkit.verifier import Score, Verifier

RELEASE = threading.Event()


class Hangs(Verifier):
    """Sleeps until released (in the caller's process: only the engine's timeout bounds it)."""

    name = "hangs"

    def score_batch(self, samples, ctx):
        RELEASE.wait(600)
        return [Score(1.0, "released")] * len(samples)


def hang_on_marker(sample):
    if "HANG" in sample["completion"]:
        time.sleep(600)
    return (1.0, "fine")


def hang_once(sample, marker):
    import os
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(600)
    return (float(len(sample["completion"]) % 2), "parity")
'''


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    module = tmp_path / "rk_hanging.py"
    module.write_text(HANGING)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _reward_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rewardkit-reward-") and t.is_alive()]


def test_a_hanging_plugin_times_out_and_stuck_calls_do_not_pile_up(plugin: Path) -> None:
    import rk_hanging  # type: ignore[import-not-found]

    rk_hanging.RELEASE.clear()
    spec = load_spec_text(textwrap.dedent("""\
        version: 1
        name: t
        rewards:
          - {name: ok, verifier: exact_match, args: {reference: answer}}
          - {name: stuck, verifier: "rk_hanging:Hangs", timeout_s: 0.5}
        """))
    samples = [{"completion": "a", "answer": "a"}, {"completion": "b", "answer": "a"}]
    before = len(_reward_threads())
    t0 = time.monotonic()
    first = spec.score(samples)
    assert time.monotonic() - t0 < 30
    assert first.column("ok").tolist() == [1.0, 0.0]
    assert all("timed out" in (row[1].error or "") and "timeout_s of 0.5 s" in (row[1].error or "")
               for row in first.cells)
    for _ in range(3):  # the stuck call still runs: no new call, no new thread
        again = spec.score(samples)
        assert all("still running" in (row[1].error or "") for row in again.cells)
    assert len(_reward_threads()) == before + 1
    rk_hanging.RELEASE.set()  # the stuck call ends: the reward is called again
    deadline = time.monotonic() + 30
    while spec.rewards[1].guard.stuck() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spec.score(samples).column("stuck").tolist() == [1.0, 1.0]
    spec.close()


def test_the_default_reward_timeout_is_set_and_documented() -> None:
    from rewardkit.spec_models import RewardConfig

    field = RewardConfig.model_fields["timeout_s"]
    assert field.default == 300.0
    assert "piles up" in (field.description or "") or "pile up" in (field.description or "")


def test_check_returns_when_a_verifier_hangs(plugin: Path) -> None:
    """The real CLI in its own process: before, `rewardkit check` never returned."""
    spec = plugin / "spec.yaml"
    spec.write_text("version: 1\nname: t\nrewards:\n"
                    "  - {name: ok, verifier: exact_match, args: {reference: answer}}\n"
                    "  - {name: stuck, verifier: 'rk_hanging:Hangs', timeout_s: 1}\n")
    samples = plugin / "s.jsonl"
    samples.write_text("".join(json.dumps({"prompt": "p", "completion": c, "answer": "a"}) + "\n" for c in "ab"))
    proc = subprocess.run([sys.executable, "-m", "rewardkit.cli", "check", str(spec), str(samples), "--json"],
                          capture_output=True, text=True, timeout=120, cwd=plugin)
    rows = json.loads(proc.stdout)
    assert proc.returncode == 3, proc.stderr  # cells errored
    assert "timed out" in proc.stderr and "stuck" in proc.stderr
    assert rows is not None


def test_a_python_function_hanging_on_one_sample_costs_that_sample_only(plugin: Path) -> None:
    spec = load_spec_text(textwrap.dedent("""\
        version: 1
        name: t
        rewards:
          - {name: r, verifier: python, args: {function: "rk_hanging:hang_on_marker", timeout_s: 1, workers: 2}}
        """))
    samples = [{"completion": c} for c in ("a", "HANG", "b", "c", "HANG too", "d")]
    t0 = time.monotonic()
    table = spec.score(samples)
    assert time.monotonic() - t0 < 60
    errors = [row[0].error for row in table.cells]
    assert [e is None for e in errors] == [True, False, True, True, False, True], errors
    assert "ran past timeout_s=1 s" in (errors[1] or "") and "killed" in (errors[1] or "")
    assert spec.score([{"completion": "e"}]).values.tolist() == [[1.0]]  # a fresh worker serves on
    spec.close()


def test_training_goes_on_when_a_verifier_hangs(plugin: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from rewardkit.cli import main
    from rewardkit.trainers.tiny_model import build_tiny_model

    model = build_tiny_model(plugin / "model")
    settings = {"model": str(model), "data": str(ROOT / "specs" / "data" / "demo_train.jsonl"),
                "prompts_per_step": 2, "group_size": 4, "max_new_tokens": 3, "steps": 2, "cpu_threads": 1,
                "progress": False, "tensorboard": False, "output_dir": str(plugin / "run")}
    marker = json.dumps(str(plugin / "hung-once"))
    spec = plugin / "train.yaml"
    spec.write_text("version: 1\nname: hang\nrewards:\n"
                    "  - {name: correct, verifier: exact_match, args: {reference: answer, extract: regex, "
                    "pattern: '(\\d)'}}\n"
                    f"  - {{name: parity, verifier: python, args: {{function: 'rk_hanging:hang_once', "
                    f"kwargs: {{marker: {marker}}}, timeout_s: 2}}}}\n"
                    f"train: {json.dumps(settings)}\n")
    t0 = time.monotonic()
    assert main(["train", str(spec)]) == 0
    assert time.monotonic() - t0 < 300
    lines = [json.loads(line) for line in (plugin / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    assert (plugin / "hung-once").exists()


def test_the_trl_bridge_returns_none_for_a_hanging_cell(plugin: Path) -> None:
    from rewardkit.integrations.trl import trl_reward_functions

    spec_file = plugin / "trl.yaml"
    spec_file.write_text("version: 1\nname: t\nrewards:\n"
                         "  - {name: r, verifier: python, args: {function: 'rk_hanging:hang_on_marker', timeout_s: 1}}\n"
                         "  - {name: stuck, verifier: 'rk_hanging:Hangs', timeout_s: 1}\n")
    import rk_hanging  # type: ignore[import-not-found]

    rk_hanging.RELEASE.clear()  # an earlier test may have released it
    spec = load_spec(spec_file)
    funcs = trl_reward_functions(spec, log_reasons=False)
    prompts, completions = ["p", "p"], ["fine", "HANG"]
    t0 = time.monotonic()
    columns = [f(prompts, completions) for f in funcs]
    assert time.monotonic() - t0 < 60
    assert columns[0] == [1.0, None]
    assert columns[1] == [None, None]
    rk_hanging.RELEASE.set()
    spec.close()


FLOODS = ["<answer>" * 20_000, "\\boxed{" * 20_000, "<a>" * 50_000, "a" * 50_000 + "!"]


def test_a_completion_cannot_make_a_parser_quadratic() -> None:
    """Floods of openings without ends used to take minutes in exact_match's tag regex (holding
    the GIL, so no deadline could fire) and math_equivalence's box search; now each is linear,
    and a user `pattern` runs with a timeout and the GIL released."""
    spec = load_spec_text(textwrap.dedent("""\
        version: 1
        name: t
        rewards:
          - {name: tag, verifier: exact_match, args: {reference: answer, extract: tag}}
          - {name: catastrophic, verifier: exact_match, args: {reference: answer, extract: regex,
             pattern: '^(a+)+$', regex_timeout_s: 0.5}}
          - {name: math, verifier: math_equivalence, args: {reference: answer, timeout_s: 2}}
        """))
    t0 = time.monotonic()
    table = spec.score([{"completion": c, "answer": "1"} for c in FLOODS])
    elapsed = time.monotonic() - t0
    spec.close()
    assert elapsed < 30, elapsed
    assert table.values[:, :2].tolist() == [[0.0, 0.0]] * len(FLOODS)
    assert "timed out after 0.5 s" in table.cells[3][1].reason
