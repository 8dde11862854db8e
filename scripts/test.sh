#!/usr/bin/env bash
# The test command: set up .venv, install and start the sandbox backends (Docker engine, bubblewrap;
# needs root: without it those backends' tests skip with the reason), build the venvs of engines whose
# pins conflict with ours (verl: scripts/engine_venvs.sh, cached under .cache/; RK_SKIP_ENGINE_VENVS=1 skips
# it, and their tests then skip with the reason), then run the whole suite and the docstring examples.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -f .ci/sandbox_setup.sh ]; then
  bash .ci/sandbox_setup.sh || echo "sandbox setup incomplete: tests of missing backends will skip with the reason"
fi
if [ "${RK_SKIP_ENGINE_VENVS:-0}" != 1 ]; then
  bash scripts/engine_venvs.sh verl
fi
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
# The `Example:` blocks in the package's docstrings (rewardkit/verifiers, sandbox and trainers included:
# they are links). A separate run: --doctest-modules over tests/ would import its hostile programs.
.venv/bin/python -m pytest -q -p no:cacheprovider --doctest-modules rewardkit
