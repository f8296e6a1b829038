#!/usr/bin/env bash
# Runs every test: set-up, a release build and an ASan+UBSan build, each with the whole suite.
# Ends with one line "N passed, N failed" summed over doctest test cases (and non-doctest tests).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
werror=()
[[ -n ${CI:-} ]] && werror=(-Dwerror=true)
scripts/build.sh build "${werror[@]}" || { echo "0 passed, 1 failed"; exit 1; }
# No CUDA under ASan (nor in build-fuzz): device code is not instrumented, the CUDA driver needs
# protect_shadow_gap=0 and LeakSanitizer would report the driver's own allocations. The host-only
# DevicePool lives in kernels_lib, so its suite runs here anyway.
scripts/build.sh build-asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false \
  -Dcuda=disabled "${werror[@]}" || { echo "0 passed, 1 failed"; exit 1; }
# The trained drafter / adapted models some suites use: cached under $SPECD_CACHE; on a machine that
# has none, a short smoke training of each (scripts/train.sh; a few minutes in all).
scripts/train.sh all --smoke --if-missing || echo "test.sh: a training failed; the suites that need its model will fail" >&2
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
status=0
for dir in build build-asan; do
  echo "== tests in $dir"
  meson test -C "$dir" --print-errorlogs --num-processes 2 ${SPECD_TEST_ARGS:-} || status=1
done
# Every libFuzzer target for a short budget (SPECD_FUZZ_SECONDS, default 30) under ASan+UBSan over its
# seed corpus and kept crash inputs (tests/fuzz/corpus/); bench/fuzz.sh runs the long campaign.
logs=(build/meson-logs/testlog.json build-asan/meson-logs/testlog.json)
echo "== fuzz targets in build-fuzz"
if [[ -f build-fuzz/build.ninja ]] || CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true -Db_lundef=false \
     -Dbenchmarks=false -Dcuda=disabled >/dev/null; then
  ninja -C build-fuzz fuzz >&2 || status=1
  SPECD_FUZZ_SECONDS=${SPECD_FUZZ_SECONDS:-30} meson test -C build-fuzz --suite fuzz --no-rebuild --print-errorlogs --num-processes 2 || status=1
  logs+=(build-fuzz/meson-logs/testlog.json)
else
  echo "test.sh: could not configure build-fuzz (clang with libFuzzer: scripts/setup.sh installs it)" >&2
  status=1
fi
python3 scripts/sum_tests.py "${logs[@]}" || status=1
exit $status
