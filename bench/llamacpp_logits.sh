#!/usr/bin/env bash
# Regenerates tests/data/arch_golden/: llama.cpp's logits, tokens and greedy continuations on the
# random-weight test models of tests/test_arch_golden.cpp (issue 14).
#
# usage: bench/llamacpp_logits.sh [BUILD_DIR]   (default build; needs specd-random-model built there)
# Builds bench/llamacpp_logits.cpp against the llama.cpp that ../shared/tools/llamacpp-anchor built
# ($SPECD_ANCHOR_DIR, default ~/.cache/specd-anchor), writes each model with the same arguments the
# test uses into a temporary folder, and records llama.cpp's output. Nothing of llama.cpp is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
anchor=${SPECD_ANCHOR_DIR:-$HOME/.cache/specd-anchor}/llama.cpp
vocab=../shared/data/vocab
out=tests/data/arch_golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
libdir=$(dirname "$(find "$anchor/build" -name 'libllama.so' | head -1)")
[[ -f $libdir/libllama.so ]] || { echo "no libllama.so under $anchor/build (run llamacpp-anchor)" >&2; exit 1; }
c++ -std=c++17 -O2 bench/llamacpp_logits.cpp -I"$anchor/include" -I"$anchor/ggml/include" \
  -L"$libdir" -lllama -Wl,-rpath,"$libdir" -o "$tmp/llamacpp_logits"
commit=$(git -C "$anchor" rev-parse --short HEAD 2>/dev/null || echo unknown)
mkdir -p "$out"
# arch, vocabulary: keep in step with kCases in tests/test_arch_golden.cpp.
for pair in llama:llama-bpe qwen2:qwen2 qwen3:qwen2; do
  arch=${pair%%:*}
  "$build/tools/specd-random-model" --arch "$arch" --vocab "$vocab/ggml-vocab-${pair#*:}.gguf" \
    --shape small --type f32 --seed 14 --out "$tmp/$arch.gguf"
  { echo "# llama.cpp $commit: bench/llamacpp_logits.sh, specd-random-model --arch $arch --shape small --type f32 --seed 14"
    "$tmp/llamacpp_logits" "$tmp/$arch.gguf" "$out/prompt.txt" 16 8; } > "$out/$arch.txt"
  echo "wrote $out/$arch.txt"
done
# llama-perplexity's final estimate on tests/data/arch_golden/ppl.txt (n_ctx 128), when it is built.
ppl_bin=$(find "$anchor/build/bin" -name llama-perplexity | head -1)
# "PPL ERR" of llama-perplexity's final estimate (F32 KV cache, no flash attention, n_ctx 128). Its log
# goes through a thread that a pipe can cut short at exit, so it is read from a file.
final_estimate() {
  "$ppl_bin" -m "$1" -f "$out/ppl.txt" -c 128 -b 128 -t 2 -ctk f32 -ctv f32 -fa off > "$tmp/ppl.log" 2>&1
  sed -n 's/.*Final estimate: PPL = \([0-9.]*\) +\/- \([0-9.]*\).*/\1 \2/p' "$tmp/ppl.log"
}
if [[ -x $ppl_bin ]]; then
  : > "$out/perplexity.txt"
  for arch in llama qwen2 qwen3; do  # the models the loop above wrote
    echo "$arch 128 $(final_estimate "$tmp/$arch.gguf")" >> "$out/perplexity.txt"
  done
  # And a trained model: stories260K (../shared/models, as the tests find it).
  stories=${SPECD_MODELS:-../shared/models}/stories260K.gguf
  if [[ -f $stories ]]; then
    echo "stories260K 128 $(final_estimate "$stories")" >> "$out/perplexity.txt"
  fi
  echo "wrote $out/perplexity.txt"
else
  echo "no llama-perplexity under $anchor/build/bin: $out/perplexity.txt left as it is" >&2
fi
