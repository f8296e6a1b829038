#!/usr/bin/env bash
# The GPU check (issue 13 §4-5): one command on a machine with an NVIDIA GPU.
#   scripts/gpu-check.sh OUTDIR [--quick]
# Runs from a bundle made by scripts/gpu-bundle.sh (DIR/scripts/gpu-check.sh) or from a checkout
# with a CUDA build (build-gpu/, else build/; or $SPECD_GPU_BUILD). Needs: an NVIDIA driver, the
# CUDA 13 runtime libraries (libcublasLt.so.13: /usr/local/cuda*/lib64, $CUDA_HOME or ldconfig),
# python3 with numpy, and torch for the bandwidth and reference figures. No network.
# Writes OUTDIR/results.jsonl (one JSON object per measurement, each tagged with its step),
# OUTDIR/summary.md (measured vs the issue's goals), OUTDIR/logs/ (every step's output).
# Every step has its own timeout; the whole run stays within 10 minutes (--quick: 4). Without a
# GPU it says so, runs what it can on the CPU as a dry run, and exits 0; on a GPU it exits 1 when
# a test suite failed there.
set -uo pipefail
usage() { echo "usage: $0 OUTDIR [--quick]" >&2; exit 2; }
[[ $# -ge 1 && $1 != -* ]] || usage
out=$1
shift
quick=0
for a in "$@"; do
  case $a in --quick) quick=1 ;; *) usage ;; esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
if ((quick)); then budget=${GPU_CHECK_BUDGET_S:-230}; else budget=${GPU_CHECK_BUDGET_S:-580}; fi

mkdir -p "$out/logs" || exit 1
out=$(cd "$out" && pwd)
results=$out/results.jsonl
: > "$results"
# The 1B model files (2 GB each) go to $TMPDIR, or into OUTDIR when $TMPDIR has under 6 GB free.
tmp=${TMPDIR:-/tmp}
(( $(df -Pk "$tmp" | awk 'NR == 2 {print $4}') < 6 * 1024 * 1024 )) && tmp=$out
work=$(mktemp -d "$tmp/specd-gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
phase_end=0
say() { echo "gpu-check: $*" | tee -a "$out/logs/gpu-check.log" >&2; }
loud() { say "=================================================================="; say "$*"; say "=================================================================="; }

# ---- where things are ----
build=${SPECD_GPU_BUILD:-}
if [[ -z $build ]]; then
  for b in "$root/build" "$root/build-gpu"; do
    [[ -x $b/bench/specd-bench && -d $b/lib ]] && { build=$b; break; }  # a bundle
  done
fi
if [[ -z $build ]]; then
  for b in "$root/build-gpu" "$root/build"; do
    [[ -x $b/bench/specd-bench ]] && { build=$b; break; }
  done
fi
[[ -n $build ]] || { say "ERROR: no build found (bundle build/, build-gpu/ or build/ with bench/specd-bench)"; exit 1; }
models=""
for d in ${SPECD_MODELS:+"$SPECD_MODELS"} "$root/models" "$root/../shared/models" "${SPECD_CACHE:-$HOME/.cache/specd}/models"; do
  [[ -f $d/stories260K.gguf ]] && { models=$(cd "$d" && pwd); break; }
done
[[ -n $models ]] || { say "ERROR: no stories260K.gguf (bundle models/, \$SPECD_MODELS or ../shared/models)"; exit 1; }
base=$models/stories260K.gguf
sidecar() { local p=$models/stories260K-$1.gguf; [[ -f $p ]] || p=${SPECD_CACHE:-$HOME/.cache/specd}/models/stories260K-$1.gguf; [[ -f $p ]] && echo "$p"; }
redrafter=$(sidecar redrafter || true)
tidar=$(sidecar tidar || true)
d2f=$(sidecar d2f || true)

# CUDA libraries: the toolkit's lib dirs go on the search path; our bundled ones first.
cuda_dirs=""
for d in ${CUDA_HOME:+"$CUDA_HOME/lib64"} ${CUDA_PATH:+"$CUDA_PATH/lib64"} /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64; do
  [[ -d $d ]] && cuda_dirs+=${cuda_dirs:+:}$d
done
export LD_LIBRARY_PATH=${build}/lib${cuda_dirs:+:$cuda_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export SPECD_BUILD_ROOT=$build SPECD_SOURCE_ROOT=$root SPECD_MODELS=$models SPECD_PLUGIN_DIR=$build/plugins
bench=$build/bench/specd-bench
specd=$build/daemon/specd
inflate=$build/tools/specd-inflate
plugins=(--plugin-dir "$build/plugins")

# Python: the first with numpy, preferring one with torch.
PY=""
for p in ${PYTHON:+"$PYTHON"} python3 /usr/bin/python3 python; do
  command -v "$p" >/dev/null || continue
  if "$p" -c 'import numpy, torch' 2>/dev/null; then PY=$p; break; fi
  [[ -z $PY ]] && "$p" -c 'import numpy' 2>/dev/null && PY=$p
done
have_torch=0
[[ -n $PY ]] && "$PY" -c 'import torch' 2>/dev/null && have_torch=1
ref=$root/bench/torch_reference.py
summ=$root/bench/gpu_summary.py

# Appends the JSON lines of $2 to results.jsonl with "step" and "device" added.
tag() {
  [[ -n $PY ]] || { grep '^{' "$2" >> "$results" || true; return; }
  "$PY" - "$1" "$dev_label" "$2" "$results" <<'EOF'
import json, sys
step, dev, src, dst = sys.argv[1:5]
with open(src, errors="replace") as f, open(dst, "a") as o:
    for line in f:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            j = json.loads(line)
        except ValueError:
            continue
        j.setdefault("step", step)
        j.setdefault("device", dev)
        o.write(json.dumps(j) + "\n")
EOF
}
record() {  # record KEY=VALUE... as one JSON object (values: numbers, true/false/null, or strings)
  local args=() kv
  for kv in "$@"; do args+=("$kv"); done
  if [[ -n $PY ]]; then
    "$PY" -c 'import json,sys
d={}
for kv in sys.argv[1:]:
    k,v=kv.split("=",1)
    try: d[k]=json.loads(v)
    except ValueError: d[k]=v
print(json.dumps(d))' "${args[@]}" >> "$results"
  fi
}

# step NAME TIMEOUT CMD...: runs CMD under its own timeout (cut to what the budget, and the phase's
# share of it while phase_end is set, has left),
# output in logs/NAME.out/.err, JSON lines into results.jsonl, one "step" record with rc and time.
step() {
  local name=$1 limit=$2 left rc t0
  shift 2
  left=$((budget - SECONDS - 10))
  ((phase_end > 0 && phase_end - SECONDS < left)) && left=$((phase_end - SECONDS))
  ((limit > left)) && limit=$left
  if ((limit < 15)); then
    say "SKIP $name: the time budget (or the test phase's share of it) is spent"
    record name=step step="$name" status=skipped reason="time budget spent"
    return 124
  fi
  say "run  $name (timeout ${limit}s)"
  t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" > "$out/logs/$name.out" 2> "$out/logs/$name.err"
  rc=$?
  tag "$name" "$out/logs/$name.out"
  local status=ok
  ((rc == 0)) || status=failed
  ((rc == 124 || rc == 137)) && status=timeout
  record name=step step="$name" status=$status rc=$rc seconds=$((SECONDS - t0))
  if [[ $status != ok ]]; then
    say "     $name: $status (rc $rc); last lines of logs/$name.err:"
    tail -5 "$out/logs/$name.err" | sed 's/^/     | /' >&2
  fi
  return $rc
}
skip() {  # skip NAME REASON
  say "SKIP $1: $2"
  record name=step step="$1" status=skipped reason="$2"
}

# ---- 1. the device ----
have_gpu=0
if command -v nvidia-smi >/dev/null && nvidia-smi -L > "$out/logs/nvidia-smi-L.txt" 2>&1 && grep -q '^GPU ' "$out/logs/nvidia-smi-L.txt"; then
  have_gpu=1
fi
{
  echo "date: $(date -u +%FT%TZ)"; echo "host: $(uname -a)"
  echo "build: $build"; echo "models: $models"; echo "python: ${PY:-none} (torch: $have_torch)"
  [[ -f $root/MANIFEST ]] && cat "$root/MANIFEST"
  command -v nvidia-smi >/dev/null && timeout 30 nvidia-smi 2>&1
  command -v nvidia-smi >/dev/null && timeout 30 nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv 2>&1
  ((have_torch)) && timeout 60 "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available()); [print(i, torch.cuda.get_device_properties(i)) for i in range(torch.cuda.device_count())]' 2>&1
  echo "ldd specd-bench:"; ldd "$bench" 2>&1
} > "$out/logs/device.txt" 2>&1
gpu_name=$(command -v nvidia-smi >/dev/null && timeout 20 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
if ((have_gpu)); then
  dev=cuda; dev_label="cuda ($gpu_name)"
  say "GPU: $gpu_name"
else
  dev=cpu; dev_label=cpu
  if command -v nvidia-smi >/dev/null; then why="nvidia-smi lists no GPU: $(head -1 "$out/logs/nvidia-smi-L.txt")"; else why="no nvidia-smi"; fi
  loud "NO GPU FOUND ($why): DRY RUN on the CPU. No GPU figure will be measured."
fi
record name=device_info have_gpu=$((have_gpu ? 1 : 0)) gpu="${gpu_name:-none}" quick=$quick build="$build" models="$models" python="${PY:-none}" torch=$have_torch
if ldd "$bench" 2>/dev/null | grep -q 'not found'; then
  loud "specd-bench cannot start: $(ldd "$bench" | grep 'not found' | tr -s ' \t' ' ' | tr '\n' ';') (set CUDA_HOME to the CUDA 13 toolkit)"
fi

# Does specd-bench / specd generate take --device? Without it a GPU run measures nothing on the GPU.
dev_flag=()
# (--help exits 2: read its text first, pipefail would count that exit)
bench_help=$("$bench" --help 2>&1)
gen_help=$("$specd" generate --help 2>&1)
if grep -q -- '--device' <<< "$bench_help"; then
  dev_flag=(--device "$dev")
  bench_ok=1
elif ((have_gpu)); then
  bench_ok=0
  loud "specd-bench has no --device flag: the GPU decode/verify figures cannot be measured with this build"
else
  bench_ok=1  # the CPU is what it runs on anyway
  say "specd-bench has no --device flag yet: the dry run measures its CPU path"
fi
gen_dev=()
grep -q -- '--device' <<< "$gen_help" && gen_dev=(--device "$dev")

# ---- 2. test suites ----
# The suites get at most 40 % of the budget, so a slow one cannot starve the figures.
# With a GPU, SPECD_TEST_DEVICE=cuda puts the engine and runtime suites' model on it (tests/test_device.h):
# conformance of every op, forward primitive, golden ids, lossless decoding, all on the GPU.
test_device=cpu
((have_gpu)) && test_device=cuda
if ((quick)); then suites=(cuda_backend device_pool backend_ops golden lossless forward); tl=40
else suites=(cuda_backend device_pool backend_ops device_lost golden lossless forward runtime kernels redrafter tidar lopa); tl=90; fi
phase_end=$((SECONDS + budget * 2 / 5))
for s in "${suites[@]}"; do
  exe=$build/tests/test_$s
  [[ -x $exe ]] || { skip "test_$s" "no $exe"; continue; }
  step "test_$s" "$tl" env SPECD_TEST_DEVICE="$test_device" "$exe"
  rc=$?
  logs="$out/logs/test_$s.out $out/logs/test_$s.err"
  # shellcheck disable=SC2086
  line=$(cat $logs | grep -E '^\[doctest\] test cases:' | tail -1)
  # shellcheck disable=SC2086
  nogpu=$(cat $logs | grep -c -E 'skipped: (no GPU|built without CUDA)')
  record name=test_suite suite="$s" device="$test_device" rc=$rc summary="${line:-none}" gpu_skips="$nogpu"
  if ((nogpu > 0)); then
    if ((have_gpu)); then loud "test_$s: $nogpu case(s) said 'skipped: no GPU / built without CUDA' although nvidia-smi lists a GPU (see logs/test_$s.out)"
    else say "     test_$s: $nogpu case(s) said 'skipped: no GPU / built without CUDA'"; fi
  fi
done

phase_end=0

# ---- 3. device copy bandwidth, bytes per token ----
if ((have_torch)); then
  step bandwidth 60 "$PY" "$ref" bandwidth --device "$dev" --mib $((have_gpu ? 2048 : 256))
else
  skip bandwidth "no python with torch"
fi
[[ -n $PY ]] && step info_base 30 "$PY" "$ref" info --model "$base"

# ---- 4. sanity: specd's greedy ids vs the PyTorch reference on stories260K ----
if ((have_torch)); then
  step torch_ref_base 90 "$PY" "$ref" decode --model "$base" --device "$dev" --tokens 128 --runs 3 --show-ids 32
fi
step generate_base 60 "$specd" generate --model "$base" --prompt-ids 1 --max-tokens 32 --json "${gen_dev[@]}" "${plugins[@]}"
((${#gen_dev[@]} == 0 && have_gpu)) && say "     specd generate has no --device flag: its ids come from the CPU path"

# ---- 5. decode on stories260K (ar, ngram, redrafter; tidar and lopa on their models) ----
if ((quick)); then runs=2; prompts=(--prompts 4); tokens=64; else runs=3; prompts=(); tokens=128; fi
benchrun() {  # benchrun STEP TIMEOUT ARGS...
  local name=$1 limit=$2
  shift 2
  ((bench_ok)) || { skip "$name" "specd-bench has no --device flag"; return; }
  step "$name" "$limit" "$bench" "${dev_flag[@]}" "${plugins[@]}" --runs "$runs" "$@"
}
decs="ar,ngram"
[[ -n $redrafter ]] && decs+=,redrafter
benchrun bench_base_decode 90 --model "$base" --what decode --decoder "$decs" --tokens "$tokens" "${prompts[@]}"
if [[ -n $tidar ]]; then benchrun bench_base_tidar 90 --model "$tidar" --what decode --decoder ar,tidar --tokens "$tokens" "${prompts[@]}"
else skip bench_base_tidar "no stories260K-tidar.gguf"; fi
if [[ -n $d2f ]]; then benchrun bench_base_lopa 90 --model "$d2f" --what decode --decoder ar,lopa --tokens "$tokens" "${prompts[@]}" --score-model "$base"
else skip bench_base_lopa "no stories260K-d2f.gguf"; fi

# ---- 6. the 1B model (stories260K inflated to TinyLlama-1.1B shape, BF16) ----
# Without a GPU the dry run inflates to a small shape instead: same steps, seconds not minutes.
if ((have_gpu)); then shape=(); big_label="1B BF16"; else shape=(--dim 256 --layers 6 --ffn 704 --kv-heads 8); big_label="small inflated BF16 (dry run)"; fi
big=$work/big.gguf
# --ctx 8192: the model declares room for the depth-4096 verify point (RoPE computes any position).
inf_args=(--model "$base" --out "$big" --type bf16 --ctx 8192 "${shape[@]}")
[[ -n $redrafter ]] && inf_args+=(--drafter "$redrafter" --drafter-out "$work/big-redrafter.gguf")
if step inflate_big 150 "$inflate" "${inf_args[@]}"; then
  [[ -n $PY ]] && step info_big 30 "$PY" "$ref" info --model "$big"
  decs="ar"
  ((quick)) || decs+=,ngram
  [[ -f $work/big-redrafter.gguf ]] && decs+=,redrafter
  benchrun bench_big_decode 150 --model "$big" --what decode --decoder "$decs" --tokens "$tokens" "${prompts[@]}"
  benchrun bench_big_verify512 90 --model "$big" --what verify --ks 1,2,4,8,16,32,64,128 --depth 512
  if ((have_torch)); then
    step torch_ref_big 120 "$PY" "$ref" decode --model "$big" --device "$dev" --tokens $((quick ? 64 : 128)) --runs 2 --show-ids 32
  fi
  if ((!quick)); then
    benchrun bench_big_verify4096 120 --model "$big" --what verify --ks 1,2,4,8,16,32,64,128 --depth 4096
  fi
  rm -f "$big"
  if ((!quick)); then
    if [[ -n $tidar ]] && step inflate_big_tidar 150 "$inflate" --model "$tidar" --out "$work/big-tidar.gguf" --type bf16 "${shape[@]}"; then
      benchrun bench_big_tidar 120 --model "$work/big-tidar.gguf" --what decode --decoder ar,tidar --tokens "$tokens" "${prompts[@]}"
    fi
    rm -f "$work/big-tidar.gguf"
    if [[ -n $d2f ]] && step inflate_big_lopa 150 "$inflate" --model "$d2f" --out "$work/big-d2f.gguf" --type bf16 "${shape[@]}"; then
      benchrun bench_big_lopa 120 --model "$work/big-d2f.gguf" --what decode --decoder ar,lopa --tokens "$tokens" "${prompts[@]}" --score-model "$base"
    fi
  fi
fi
record name=big_model label="$big_label"

# ---- 7. summary ----
if [[ -n $PY ]]; then
  "$PY" "$summ" "$results" > "$out/summary.md" 2> "$out/logs/summary.err" || say "summary failed: $(tail -3 "$out/logs/summary.err")"
else
  echo "no python3 with numpy: no summary; see results.jsonl" > "$out/summary.md"
fi
cat "$out/summary.md" >&2
say "results: $results; summary: $out/summary.md; logs: $out/logs/ (${SECONDS}s)"
if ((!have_gpu)); then
  loud "NO GPU: this was a dry run on the CPU; nothing above is a GPU figure."
  exit 0
fi
# On a GPU, a failed suite fails the check (the figures are still written).
failed=$(grep -c '"name": "test_suite".*"rc": [1-9]' "$results")
((failed == 0)) || { say "$failed test suite(s) failed on the GPU: see summary.md"; exit 1; }
if grep -q '"suite": "cuda_backend".*"gpu_skips": "\?[1-9]' "$results"; then
  say "test_cuda_backend skipped its cases although a GPU is present: see logs/test_cuda_backend.out"
  exit 1
fi
exit 0
