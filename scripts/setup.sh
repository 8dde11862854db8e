#!/usr/bin/env bash
# Create .venv with rewardkit (editable) and everything the tests and the demo need.
# Torch is pinned to the CPU wheel first: a plain `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
# Nothing to do when the venv was set up from this very pyproject.toml and script (and still imports):
# `bash scripts/demo.sh` then starts training at once instead of re-running pip for half a minute.
STAMP=.venv/.rewardkit-setup
WANT="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && python -c "import rewardkit, torch" 2>/dev/null; then
  echo "rewardkit: .venv is up to date (pyproject.toml unchanged since setup; delete $STAMP to reinstall)"
  exit 0
fi
python -m pip install -q --upgrade pip setuptools wheel
python -m pip install -q "torch==2.13.0"
# Editable: setuptools maps the name `rewardkit` to ./rewardkit, whose verifiers/, sandbox/ and trainers/
# are symlinks to the top-level folders, so modules added later import without reinstalling; re-run this
# script only when pyproject.toml changes (dependencies, entry points).
python -m pip install -q -e ".[dev,train,trl,docker,fixtures,serve]"
python -c "import rewardkit, torch; print(f'rewardkit {rewardkit.__version__} ready (torch {torch.__version__})')"
echo "$WANT" > "$STAMP"
