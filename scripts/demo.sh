#!/usr/bin/env bash
# The main job: set up .venv, build a tiny model locally (no download),
# and train it on CPU from specs/demo.yaml. Extra arguments go to `rewardkit train`
# (e.g. --set steps=50; --resume runs/demo continues a stopped run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
[ -f models/tiny/config.json ] || python -m rewardkit.trainers.tiny_model models/tiny
rewardkit train specs/demo.yaml "$@"
