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
if [[ -x $ppl_bin ]]; then
  : > "$out/perplexity.txt"
  for arch in llama qwen2 qwen3; do
    voc=llama-bpe; [[ $arch == llama ]] || voc=qwen2
    "$build/tools/specd-random-model" --arch "$arch" --vocab "$vocab/ggml-vocab-$voc.gguf" --shape small --type f32 \
      --seed 14 --out "$tmp/$arch.gguf" 2>/dev/null
    est=$("$ppl_bin" -m "$tmp/$arch.gguf" -f "$out/ppl.txt" -c 128 -b 128 -t 2 -ctk f32 -ctv f32 -fa off 2>&1 |
      sed -n 's/.*Final estimate: PPL = \([0-9.]*\) +\/- \([0-9.]*\).*/\1 \2/p')
    echo "$arch 128 $est" >> "$out/perplexity.txt"
  done
  echo "wrote $out/perplexity.txt"
else
  echo "no llama-perplexity under $anchor/build/bin: $out/perplexity.txt left as it is" >&2
fi
