#!/usr/bin/env bash
# The main job: set up, build, find the default model and generate a story with its speed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
model=$(scripts/default-model.sh)
build/daemon/specd generate --model "$model" --prompt "${1:-Once upon a time}" --max-tokens "${2:-200}"
