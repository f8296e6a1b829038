#!/usr/bin/env bash
# The soak under ASan+UBSan (issue: reliability campaign): CLIENTS concurrent clients × REQUESTS requests
# each (default 64 × 100) against one daemon serving stories260K and the trained TiDAR and D2F models
# with every decoder, cancels, vanishing and slow clients, bad requests and malformed frames; loopback
# (a Unix socket) only, bounded by SECONDS (default 1200: no request starts after it).
#
#   bench/soak.sh [CLIENTS] [REQUESTS] [SECONDS]
#
# It is tests/test_soak.cpp at full size (CI runs it at 16 × 12): the last lines are its figures —
# requests by kind, errors by code, run-log rows, the daemon's RSS after warm-up and at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
clients=${1:-64} requests=${2:-100} seconds=${3:-1200}
scripts/build.sh build-asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false || exit 1
export SPECD_SOURCE_ROOT=$PWD SPECD_BUILD_ROOT=$PWD/build-asan
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1
export SPECD_SOAK_CLIENTS=$clients SPECD_SOAK_REQUESTS=$requests SPECD_SOAK_SECONDS=$seconds
start=$(date +%s)
build-asan/tests/test_soak 2>&1 | grep -E "MESSAGE|ERROR|FAILED|CHECK|test cases"
rc=${PIPESTATUS[0]}
echo "soak: exit $rc after $(( $(date +%s) - start )) s (ASan+UBSan build)"
exit "$rc"
