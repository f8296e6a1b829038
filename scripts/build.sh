#!/usr/bin/env bash
# Configures (once) and builds specd in build/ (release) — or in the folder and with the meson options given.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [[ ! -f $dir/build.ninja ]]; then
  meson setup "$dir" "$@" >&2
fi
ninja -C "$dir" >&2
