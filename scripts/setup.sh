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
python -m pip install -q --upgrade pip setuptools wheel
python -m pip install -q "torch==2.13.0"
# Editable: setuptools maps the name `rewardkit` to ./rewardkit, whose verifiers/, sandbox/ and trainers/
# are symlinks to the top-level folders, so modules added later import without reinstalling; re-run this
# script only when pyproject.toml changes (dependencies, entry points).
python -m pip install -q -e ".[dev,train,trl,docker,fixtures,serve]"
python -c "import rewardkit, torch; print(f'rewardkit {rewardkit.__version__} ready (torch {torch.__version__})')"
