#!/usr/bin/env bash
# Builds specd with the CUDA backend (release, in build-gpu/) and packs what scripts/gpu-check.sh
# needs into DIR (default gpu-bundle/ at the repo root), so a machine with an NVIDIA driver, the
# CUDA 13 toolkit and Python + PyTorch can run the GPU check without any of our Debian packages
# and without network. usage: scripts/gpu-bundle.sh [DIR]
#
# DIR/build/   the test suites, daemon/specd, bench/specd-bench, tools/specd-*, the decoder and
#              test plugins, laid out as the build tree (the suites find them via SPECD_BUILD_ROOT)
# DIR/build/lib/  every shared library they link except glibc's and CUDA's (libcudart, libcublas,
#              libcublasLt, libcuda come from the GPU machine's toolkit and driver). Each ELF file's
#              RUNPATH is set (patchelf) to its way to build/lib, so they run with nothing else
#              on LD_LIBRARY_PATH; gpu-check.sh puts build/lib there as well, belt and braces.
# DIR/models/  stories260K.gguf, its README (golden ids) and the trained sidecars
#              (-redrafter, -tidar, -d2f), from $SPECD_MODELS, ../shared/models or $SPECD_CACHE/models
# DIR/scripts/gpu-check.sh, DIR/bench/{torch_reference,gpu_summary}.py: the runner, the PyTorch
#              reference and the summary writer.
# Fails if the bundle exceeds 60 MiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/gpu-bundle}
build=${SPECD_GPU_BUILD:-$root/build-gpu}
limit_mib=60
say() { echo "gpu-bundle: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]] || die "no nvcc (CUDA toolkit): the CUDA backend cannot be built"
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
if ! command -v patchelf >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing patchelf (apt)"
    apt-get install -y -qq patchelf >&2 || { apt-get update -qq >&2 && apt-get install -y -qq patchelf >&2; }
  fi
  command -v patchelf >/dev/null || die "patchelf is needed to set the bundle's RUNPATH (apt-get install patchelf)"
fi

# ---- build ----
if [[ ! -f $build/build.ninja ]]; then
  meson setup "$build" "$root" --buildtype=release -Dcuda=enabled -Dtests=true -Dbenchmarks=true -Dfuzz=false >&2
else
  meson configure "$build" -Dcuda=enabled >&2
fi
ninja -C "$build" >&2
grep -q 'SPECD_HAVE_CUDA 1' "$build/kernels/build_config.h" 2>/dev/null ||
  die "$build was built without CUDA (kernels/build_config.h has no SPECD_HAVE_CUDA 1)"

# ---- models ----
find_model() {  # first of $SPECD_MODELS, ../shared/models, $SPECD_CACHE/models holding $1
  local d
  for d in ${SPECD_MODELS:+"$SPECD_MODELS"} "$root/../shared/models" "${SPECD_CACHE:-$HOME/.cache/specd}/models"; do
    [[ -f $d/$1 ]] && { echo "$d/$1"; return 0; }
  done
  return 1
}
base_model=$(find_model stories260K.gguf) || die "no stories260K.gguf in \$SPECD_MODELS, ../shared/models or \$SPECD_CACHE/models (scripts/default-model.sh fetches it)"

# ---- lay out ----
if [[ -e $out ]]; then
  [[ -f $out/.specd-gpu-bundle ]] || die "$out exists and is not a bundle made by this script; remove it or name another DIR"
  rm -rf "$out"
fi
mkdir -p "$out/build/lib" "$out/models" "$out/scripts" "$out/bench"
touch "$out/.specd-gpu-bundle"

# Suites that run on a GPU machine: the CUDA backend and its pool, and the engine suites that must
# stay bit-identical (lossless decoding, forward, runtime, kernels, the learned decoders).
suites=(cuda_backend device_pool backend_ops device_lost golden lossless forward runtime kernels redrafter tidar lopa)
files=()
for s in "${suites[@]}"; do
  [[ -x $build/tests/test_$s ]] || die "missing $build/tests/test_$s (is it still in tests/meson.build?)"
  files+=("tests/test_$s")
done
files+=(daemon/specd bench/specd-bench tools/specd-inflate tools/specd-add-mask tools/specd-convert clients/specctl)
for f in "$build"/plugins/*.so "$build"/tests/plugins/*.so; do files+=("${f#"$build"/}"); done
for f in "${files[@]}"; do
  [[ -f $build/$f ]] || die "missing $build/$f"
  mkdir -p "$out/build/$(dirname "$f")"
  cp -L "$build/$f" "$out/build/$f"
  chmod u+w "$out/build/$f"
done

# Shared libraries: everything ldd resolves except glibc's own and CUDA's.
skip_lib() {
  case $1 in
    linux-vdso.so* | ld-linux*.so* | libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | \
      libresolv.so* | libutil.so* | libmvec.so*) return 0 ;;
    libcuda.so* | libcudart.so* | libcublas.so* | libcublasLt.so* | libnvidia-*) return 0 ;;
  esac
  return 1
}
declare -A libs=()
collect() {  # $1: an ELF file; adds its resolved non-skipped libraries to libs
  local name arrow path rest
  while read -r name arrow path rest; do
    [[ $arrow == "=>" && $path == /* ]] || continue
    skip_lib "$name" && continue
    libs[$name]=$path
  done < <(LD_LIBRARY_PATH=$build/clients ldd "$1" 2>/dev/null || true)
}
for f in "${files[@]}"; do collect "$build/$f"; done
missing=$(for f in "${files[@]}"; do LD_LIBRARY_PATH=$build/clients ldd "$build/$f" 2>/dev/null | grep 'not found' | grep -v -E 'libcuda|libcublas' || true; done | sort -u)
[[ -z $missing ]] || die "unresolved libraries here: $missing"
for name in "${!libs[@]}"; do cp -L "${libs[$name]}" "$out/build/lib/$name"; chmod u+w "$out/build/lib/$name"; done
# A library the copied ones need that the executables do not name directly.
for name in "${!libs[@]}"; do collect "$out/build/lib/$name"; done
for name in "${!libs[@]}"; do
  [[ -f $out/build/lib/$name ]] || { cp -L "${libs[$name]}" "$out/build/lib/$name"; chmod u+w "$out/build/lib/$name"; }
done

# Strip, then point every ELF file at build/lib.
while IFS= read -r -d '' f; do
  file -b "$f" | grep -q '^ELF' || continue
  strip --strip-unneeded "$f" 2>/dev/null || true
  rel=$(realpath --relative-to="$(dirname "$f")" "$out/build/lib")
  if [[ $rel == . ]]; then patchelf --set-rpath "\$ORIGIN" "$f"; else patchelf --set-rpath "\$ORIGIN/$rel" "$f"; fi
done < <(find "$out/build" -type f -print0)

# ---- models, scripts, facts ----
cp "$base_model" "$out/models/"
readme=$(dirname "$base_model")/README.md
[[ -f $readme ]] && cp "$readme" "$out/models/README.md"
for side in redrafter tidar d2f; do
  if p=$(find_model "stories260K-$side.gguf"); then cp "$p" "$out/models/"
  else say "WARNING: no stories260K-$side.gguf (scripts/train.sh $side makes it): the GPU check will skip what needs it"; fi
done
cp "$root/scripts/gpu-check.sh" "$out/scripts/"
cp "$root/bench/torch_reference.py" "$root/bench/gpu_summary.py" "$out/bench/"
glibc_need=$(for f in "${files[@]}"; do objdump -T "$out/build/$f" 2>/dev/null; done | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -1)
{
  echo "specd GPU bundle"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%MZ) on $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"'), nvcc $(nvcc --version | grep -o 'release [0-9.]*')"
  echo "needs on the GPU machine: x86-64 Linux with glibc >= ${glibc_need#GLIBC_}, an NVIDIA driver, the CUDA 13 runtime libraries (libcublasLt.so.13), python3 (+ torch for the reference figures)"
  echo "run: $(basename "$out")/scripts/gpu-check.sh OUTDIR [--quick]"
  echo "bundled libraries: $(find "$out/build/lib" -type f -printf '%f ')"
  echo "CUDA libraries expected from the machine: $(for f in "${files[@]}"; do LD_LIBRARY_PATH=$build/clients ldd "$build/$f" 2>/dev/null; done | awk '{print $1}' | grep -E '^lib(cuda|cudart|cublas|cublasLt)\.so' | sort -u | tr '\n' ' ')"
} > "$out/MANIFEST"

# ---- size ----
bytes=$(du -sb "$out" | cut -f1)
mib=$(( (bytes + (1 << 20) - 1) >> 20 ))
cat "$out/MANIFEST" >&2
say "bundle: $out, $mib MiB ($bytes bytes)"
if (( bytes > limit_mib << 20 )); then
  du -sh "$out"/build/* "$out"/build/lib/* "$out"/models/* 2>/dev/null | sort -h | tail -15 >&2
  die "bundle is $mib MiB, over the $limit_mib MiB limit"
fi
echo "$out"
