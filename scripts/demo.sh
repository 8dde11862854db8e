#!/usr/bin/env bash
# The main job: set up .venv, build a tiny model locally (no download), write the demo prompts,
# and train it on CPU from specs/demo.yaml. Extra arguments go to `rewardkit train`
# (e.g. --set steps=50, --resume runs/demo/checkpoint-100).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
[ -f models/tiny/config.json ] || python -m rewardkit.trainers.tiny_model models/tiny
[ -f specs/data/demo_train.jsonl ] || python -m rewardkit.trainers.demo_data specs/data
rewardkit train specs/demo.yaml "$@"
