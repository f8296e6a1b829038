#!/usr/bin/env bash
# Prints the path of the default model (stories260K.gguf): $SPECD_MODELS, then ../shared/models,
# else downloads karpathy's tinyllamas stories260K (checksum-checked) and converts it into $SPECD_CACHE/models.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SPECD_CACHE:-$HOME/.cache/specd}
name=stories260K.gguf
if [[ -n ${SPECD_MODELS:-} && -f $SPECD_MODELS/$name ]]; then
  echo "default model: $SPECD_MODELS/$name (from \$SPECD_MODELS)" >&2
  echo "$SPECD_MODELS/$name"; exit 0
fi
if [[ -f $root/../shared/models/$name ]]; then
  p=$(cd "$root/../shared/models" && pwd)/$name
  echo "default model: $p (from ../shared/models)" >&2
  echo "$p"; exit 0
fi
if [[ -f $cache/models/$name ]]; then
  echo "default model: $cache/models/$name (downloaded earlier)" >&2
  echo "$cache/models/$name"; exit 0
fi
# Its public home: llama2.c's tinyllamas (MIT). Checksums as pinned in ../shared/models/README.md.
base=https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K
mkdir -p "$cache/models"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "default model: downloading stories260K from $base" >&2
curl -fsSL -o "$tmp/stories260K.bin" "$base/stories260K.bin"
curl -fsSL -o "$tmp/tok512.bin" "$base/tok512.bin"
sha256sum -c - >&2 <<SUMS
b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696  $tmp/stories260K.bin
037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312  $tmp/tok512.bin
SUMS
"$root/scripts/build.sh" >/dev/null
"$root/build/tools/specd-convert" --model "$tmp/stories260K.bin" --tokenizer "$tmp/tok512.bin" --out "$cache/models/$name" >&2
echo "default model: $cache/models/$name (downloaded and converted)" >&2
echo "$cache/models/$name"
