#!/usr/bin/env bash
# The main job: set up, build, start the daemon on the default model, generate a story through
# specctl (streamed, with its speed), show the run log's row, and stop the daemon (SIGTERM drain).
# usage: scripts/run.sh [PROMPT] [MAX_TOKENS] [DECODER]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
model=$(scripts/default-model.sh)
state=$(mktemp -d)
sock=$state/specd.sock
build/daemon/specd serve --model "stories260K=$model" --socket "$sock" --runlog "$state/runs.db" \
  --plugin-dir build/plugins 2> "$state/daemon.log" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
export SPECD_SOCKET=$sock
build/clients/specctl generate --prompt "${1:-Once upon a time}" --max-tokens "${2:-200}" --decoder "${3:-ar}"
sleep 0.3  # the run log is written asynchronously
build/clients/specctl runs --last 1
