#!/usr/bin/env bash
# Build the venvs of engines whose pins conflict with ours (verl needs numpy >= 2; our bfcl-eval pins 1.26).
# Idempotent: a venv is rebuilt only when its stamp (the requirement line) changed. Tests that need an
# engine run it in its venv as a subprocess and skip with the reason when the venv is absent.
#   usage: bash scripts/engine_venvs.sh [verl]      -> .cache/venv-verl
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
PYTHON=${PYTHON:-python3}

build() {  # build NAME REQUIREMENT...
  local name=$1; shift
  local dir=.cache/venv-$name stamp="torch==2.13.0 $*"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$dir up to date ($stamp)"; return
  fi
  local start=$SECONDS
  rm -rf "$dir"; mkdir -p .cache
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade pip
  # Torch first, pinned to the CPU wheel: a plain requirement would pull a multi-GB CUDA build.
  "$dir/bin/python" -m pip install -q "torch==2.13.0"
  "$dir/bin/python" -m pip install -q "$@"
  echo "$stamp" > "$dir/.stamp"
  echo "$dir built in $((SECONDS - start)) s ($stamp)"
}

with_rewardkit() {  # with_rewardkit NAME: this checkout's rewardkit (core, editable) in the engine's venv
  local py=$PWD/.cache/venv-$1/bin/python
  # Checked from / : from the checkout itself, `python -c` would find ./rewardkit through the current
  # folder and skip the install that the tests (run with other working folders) need.
  if ! (cd / && "$py" -c "import rewardkit.verifiers, sys; sys.exit(not rewardkit.__file__.startswith('$PWD/'))") 2>/dev/null; then
    "$py" -m pip install -q -e .
  fi
}

for engine in "${@:-verl}"; do
  case $engine in
    # cachetools, uvicorn, fastapi: imported by verl.trainer.ppo.ray_trainer but not in verl's requirements
    verl) build verl "verl==0.9.1" cachetools uvicorn fastapi; with_rewardkit verl ;;
    *) echo "unknown engine '$engine'; valid: verl" >&2; exit 2 ;;
  esac
done
