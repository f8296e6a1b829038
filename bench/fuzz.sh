#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each (default 60) and prints one line per target and a
# table: executions, seconds, crashes. Builds them first in build-fuzz/ (clang, -Dfuzz=true).
#
#   bench/fuzz.sh [SECONDS] [TARGET...]     e.g. bench/fuzz.sh 1200   (the campaign's long run)
#
# Targets run two at a time (this machine kind has 2 cores); each grows its corpus under
# $SPECD_CACHE/fuzz/NAME and replays tests/fuzz/corpus/NAME first. A crash input lands in
# build-fuzz/fuzz-artifacts/NAME/; fix it, then copy it into tests/fuzz/corpus/NAME/ (it becomes a
# regression test that every later run, CI's 30-second one included, replays).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(gguf frame client_frame config tokenizer options chat_template http_request)
if [[ ! -f build-fuzz/build.ninja ]]; then
  CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true -Db_lundef=false -Dbenchmarks=false >&2 || exit 1
fi
ninja -C build-fuzz fuzz >&2 || exit 1

export SPECD_SOURCE_ROOT=$PWD SPECD_BUILD_ROOT=$PWD/build-fuzz SPECD_FUZZ_SECONDS=$seconds
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
running=0 failed=0
for t in "${targets[@]}"; do
  tests/fuzz/run_fuzz.sh "build-fuzz/tests/fuzz/${t}_fuzz" "$t" >"$out/$t" 2>&1 &
  if ((++running == 2)); then wait -n; running=$((running - 1)); fi
done
wait
printf '%-14s %14s %8s %8s\n' target executions seconds crashes
for t in "${targets[@]}"; do
  line=$(grep -m1 "^fuzz $t:" "$out/$t")
  if [[ $line =~ ^fuzz\ $t:\ ([0-9]+)\ executions\ in\ ([0-9]+)\ s,\ ([0-9]+)\ crashes ]]; then
    printf '%-14s %14s %8s %8s\n' "$t" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
    ((BASH_REMATCH[3] == 0)) || { failed=1; cat "$out/$t" >&2; }
  else
    printf '%-14s %14s %8s %8s\n' "$t" "?" "$seconds" "?"
    cat "$out/$t" >&2
    failed=1
  fi
done
exit $failed
