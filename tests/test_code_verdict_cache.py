"""The code-verdict cache (issue 13, part 4): identical programs are run once across batches and
steps, the cache never changes a score, and it stays within its bounds."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rk_sandboxes import Counting

from rewardkit.sandbox import Sandbox
from rewardkit.spec import load_spec
from rewardkit.verifier import ScoringContext
from rewardkit.verifiers._code.runs import Outcome
from rewardkit.verifiers._code.verdicts import VERDICTS, VerdictCache
from rewardkit.verifiers.code_tests import CodeTests

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [json.loads(line) for line in (ROOT / "specs" / "samples" / "code.jsonl").read_text().splitlines()]


def _scores(spec_file: Path, sandbox: Sandbox) -> list[list[tuple[float, str]]]:
    spec = load_spec(spec_file)
    try:
        table = spec.score(SAMPLES, ScoringContext(sandbox=sandbox))
    finally:
        spec.close()
    # A busy loop under equal CPU and wall limits is stopped by either (a race, run again on every pass since
    # timeouts are never cached): the verdict is the same, only the limit's name in the reason differs.
    return [[(c.value, re.sub(r"\((CPU|wall) limit", "(time limit", c.reason)) for c in row] for row in table.cells]


def test_cached_scores_equal_uncached_scores_on_the_bundled_samples(process: Sandbox, tmp_path: Path) -> None:
    uncached_spec = tmp_path / "code.yaml"
    text = (ROOT / "specs" / "code.yaml").read_text()
    uncached_spec.write_text(text.replace("args: {tests: tests,", "args: {cache_verdicts: false, tests: tests,"))
    assert uncached_spec.read_text().count("cache_verdicts: false") == 2
    counting = Counting(process)
    uncached = _scores(uncached_spec, counting)
    assert len(VERDICTS) == 0 and counting.runs > 0
    first = counting.runs
    cached_first = _scores(ROOT / "specs" / "code.yaml", counting)  # fills the cache (same runs again)
    assert counting.runs == 2 * first
    kept = len(VERDICTS)  # every run that ended on its own; a timeout is not kept
    assert first - 2 <= kept <= first
    cached_again = _scores(ROOT / "specs" / "code.yaml", counting)  # a later step: only the timeouts run again
    assert counting.runs == 3 * first - kept
    assert VERDICTS.hits >= kept
    assert uncached == cached_first == cached_again


def test_timeouts_are_never_cached(process: Sandbox) -> None:
    verifier = CodeTests(CodeTests.Args(time_limit_s=1.0))
    sample = {"completion": "import time\ntime.sleep(30)", "tests": {"inputs": ["1\n"], "outputs": ["1\n"]}}
    counting = Counting(process)
    for _ in range(2):
        (score,) = verifier.score_batch([sample], ScoringContext(sandbox=counting))
        assert score.value == 0.0 and "timeout" in score.reason
    assert counting.runs == 2 and len(VERDICTS) == 0


def test_the_cache_is_bounded_by_entries_and_bytes() -> None:
    cache = VerdictCache(max_entries=3, max_bytes=10_000)
    for i in range(5):
        cache.put(("k", str(i)), Outcome("ok", None, "ran", stdout="x" * 100))
    assert len(cache) == 3 and cache.get(("k", "0")) is None and cache.get(("k", "4")) is not None
    cache.put(("k", "big"), Outcome("ok", None, "ran", stdout="x" * 6_000))
    cache.put(("k", "big2"), Outcome("ok", None, "ran", stdout="x" * 6_000))
    assert cache.bytes <= 10_000 and cache.get(("k", "big")) is None
    cache.put(("k", "huge"), Outcome("ok", None, "ran", stdout="x" * 20_000))
    assert cache.get(("k", "huge")) is None
    cache.put(("k", "err"), Outcome("sandbox_error", None, "sandbox error", error="boom"))
    assert cache.get(("k", "err")) is None
