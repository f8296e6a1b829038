#!/usr/bin/env bash
# run_fuzz.sh TARGET NAME: runs one libFuzzer target for $SPECD_FUZZ_SECONDS (default 30) over its
# committed seeds (tests/fuzz/corpus/NAME, replayed first, so every kept crash input is a regression
# test) and a corpus it grows under $SPECD_CACHE/fuzz/NAME. Prints one line
# "fuzz NAME: N executions in S s, C crashes"; exits non-zero when the target crashed, with the input
# saved under $SPECD_BUILD_ROOT/fuzz-artifacts/NAME/.
set -uo pipefail
target=$1
name=$2
src=${SPECD_SOURCE_ROOT:?}
seconds=${SPECD_FUZZ_SECONDS:-30}
work=${SPECD_CACHE:-$HOME/.cache/specd}/fuzz/$name
artifacts=${SPECD_BUILD_ROOT:?}/fuzz-artifacts/$name
mkdir -p "$work" "$artifacts"
args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts/")
# The default model, looked up like the tests do: $SPECD_MODELS, then ../shared beside the checkout.
stories() {
  local dir
  for dir in ${SPECD_MODELS:-} "$src/../shared/models"; do
    [[ -f $dir/stories260K.gguf ]] && { echo "$dir/stories260K.gguf"; return 0; }
  done
  echo "fuzz $name: no stories260K.gguf (\$SPECD_MODELS, ../shared/models): cannot run" >&2
  exit 1
}
case $name in
  gguf) args+=(-max_len=65536) ;;
  tokenizer)
    # Every kind of vocabulary the engine loads: the default model's, llama.cpp's SPM test vocabulary and
    # two byte-level BPE ones (llama-bpe, qwen2: different pre-tokenizer regexes).
    vocabs=("$(stories)")
    for f in "$src/../shared/data/vocab/ggml-vocab-"{llama-spm,llama-bpe,qwen2}.gguf; do [[ -f $f ]] && vocabs+=("$f"); done
    export SPECD_FUZZ_VOCABS=$(IFS=:; echo "${vocabs[*]}")
    ;;
  options)
    # Every built decoder, ar first (the oracle); the model's trained drafter is found beside it.
    SPECD_FUZZ_MODEL=$(stories)
    plugins=()
    for d in ar ngram redrafter tidar lopa; do
      [[ -f $SPECD_BUILD_ROOT/plugins/$d.so ]] && plugins+=("$SPECD_BUILD_ROOT/plugins/$d.so")
    done
    export SPECD_FUZZ_MODEL SPECD_FUZZ_PLUGINS=$(IFS=:; echo "${plugins[*]}")
    args+=(-max_len=512)
    ;;
esac
seeds=("$src/tests/fuzz/corpus/$name")
if [[ $name == gguf ]]; then
  # GGUF seeds are model files, kept out of the tree: made fresh by the real writer (make_seeds).
  generated=$SPECD_BUILD_ROOT/fuzz-seeds
  "$SPECD_BUILD_ROOT/tests/fuzz/make_seeds" "$generated" || { echo "fuzz $name: make_seeds failed" >&2; exit 1; }
  seeds+=("$generated/gguf")
fi
mkdir -p "${seeds[0]}"
log=$artifacts/last-run.log
"$target" "${args[@]}" "$work" "${seeds[@]}" >"$log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
# libFuzzer stops at the first crash, leak, timeout or out-of-memory, and exits non-zero.
crashes=$((rc != 0))
echo "fuzz $name: ${execs:-0} executions in $seconds s, $crashes crashes"
if ((rc != 0)); then
  tail -60 "$log"
  exit 1
fi
exit 0
