#!/usr/bin/env bash
# Trains specd's learned decoding components for stories260K (CPU, PyTorch) and caches them:
#
#   scripts/train.sh [redrafter|tidar|d2f|all] [--smoke] [--if-missing]
#
# Full artifacts go to $SPECD_CACHE/models/stories260K-<method>.gguf, --smoke ones (a quick, smaller
# run, ~2 minutes each) to $SPECD_CACHE/models/smoke/stories260K-<method>.gguf; SPECD_CACHE defaults to
# ~/.cache/specd. --if-missing skips a method whose trained model exists in $SPECD_MODELS, ../shared/models
# (fully trained, with provenance in its README) or the cache (full or smoke).
# Each method runs tools/train/specd-train <method> --out PATH [--smoke]; see tools/train/README.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

what=all smoke=0 if_missing=0
for arg in "$@"; do
  case "$arg" in
    redrafter|tidar|d2f|all) what=$arg ;;
    --smoke) smoke=1 ;;
    --if-missing) if_missing=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "train.sh: unknown argument '$arg' (usage: scripts/train.sh [redrafter|tidar|d2f|all] [--smoke] [--if-missing])" >&2; exit 2 ;;
  esac
done
methods=(redrafter tidar d2f)
[[ $what == all ]] || methods=("$what")

# tools/train/specd-train (installed as specd-train) checks for torch and sets the trainers' environment.
train=tools/train/specd-train

cache=${SPECD_CACHE:-$HOME/.cache/specd}
full_dir=$cache/models
smoke_dir=$cache/models/smoke
mkdir -p "$full_dir" "$smoke_dir"

failed=()
for m in "${methods[@]}"; do
  full=$full_dir/stories260K-$m.gguf
  smk=$smoke_dir/stories260K-$m.gguf
  if ((if_missing)); then
    have=
    for p in ${SPECD_MODELS:+"$SPECD_MODELS/stories260K-$m.gguf"} "$here/../shared/models/stories260K-$m.gguf" "$full" "$smk"; do
      [[ -f $p ]] && { have=$p; break; }
    done
    if [[ -n $have ]]; then
      echo "train.sh: $m: have $have, skipping" >&2
      continue
    fi
  fi
  script=tools/train/train_$m.py
  if [[ ! -f $script ]]; then
    echo "train.sh: $m: $script does not exist (yet); cannot train $m" >&2
    failed+=("$m")
    continue
  fi
  if ((smoke)); then out=$smk; flag=(--smoke); else out=$full; flag=(); fi
  echo "train.sh: $m -> $out" >&2
  start=$(date +%s)
  # The scripts write atomically (temp name + rename), so a failed run leaves no artifact behind.
  if "$train" "$m" --out "$out" "${flag[@]}"; then
    echo "train.sh: $m done in $(( $(date +%s) - start )) s: $out" >&2
  else
    echo "train.sh: $m FAILED (exit $?)" >&2
    failed+=("$m")
  fi
done
if ((${#failed[@]})); then
  echo "train.sh: failed: ${failed[*]}" >&2
  exit 1
fi
