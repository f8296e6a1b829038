#!/usr/bin/env bash
# Installs the Debian packages specd needs (only those missing), so a fresh Debian 12 machine can build and test.
set -euo pipefail
pkgs=(meson ninja-build pkg-config g++ libuv1-dev libflatbuffers-dev flatbuffers-compiler libsqlite3-dev
      doctest-dev libsystemd-dev nlohmann-json3-dev libtomlplusplus-dev libelf-dev libpcre2-dev systemd python3 python3-numpy python3-jinja2
      curl ca-certificates make python3-torch libopenblas0-pthread libjemalloc2 clang libclang-rt-14-dev
      libh2o-dev libssl-dev prometheus
      debhelper dpkg-dev lintian scdoc)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
