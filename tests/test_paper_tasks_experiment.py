"""`experiments/paper_tasks.py --quick`: the whole pipeline (data, warm start, every method on
every task, the paper's metrics, tables and curves) in a few steps, as CI runs it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from rewardkit.sandbox import available_backends

ROOT = Path(__file__).resolve().parents[1]


def _experiment():  # the script is not a package module; load it by path
    spec = importlib.util.spec_from_file_location("paper_tasks_experiment", ROOT / "experiments" / "paper_tasks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(900)
def test_quick_mode_runs_every_task_and_method(tmp_path: Path) -> None:
    exp = _experiment()
    tasks = [t for t in exp.TASKS if t != "code" or available_backends()["bwrap"] is None]
    runs, out = tmp_path / "runs", tmp_path / "out"
    assert exp.main(["--quick", "--tasks", *tasks, "--runs", str(runs), "--out", str(out)]) == 0
    for task in tasks:
        for method in exp.METHODS:
            run = json.loads((runs / task / f"0-{method}.json").read_text())
            assert len(run["curves"]["adv/distinct"]) == 3  # --quick: 3 RL steps
            for metric in exp.TASKS[task].metrics:
                for where in ("start_heldout", "final", "heldout"):
                    assert 0 <= run[where][metric.key] <= 1 or metric.key == "correct_mean", (task, where, metric)
    tables = (out / "paper_tasks.md").read_text()
    for task in tasks:
        assert f"### {task}" in tables
    assert "GDPO − other" in tables and (out / "paper_tasks.png").stat().st_size > 10_000
    # a second call finds every run saved and only rebuilds the report
    assert exp.main(["--quick", "--tasks", *tasks, "--runs", str(runs), "--out", str(out)]) == 0


def test_rerun_replaces_only_the_tables(tmp_path: Path) -> None:
    exp = _experiment()
    doc = tmp_path / "paper_tasks.md"
    doc.write_text(f"# title\n\nreading before\n\n{exp.BEGIN}\nold tables\n{exp.END}\n\nreading after\n")
    exp.write_tables(doc, "new tables")
    assert doc.read_text() == f"# title\n\nreading before\n\n{exp.BEGIN}\nnew tables\n{exp.END}\n\nreading after\n"
