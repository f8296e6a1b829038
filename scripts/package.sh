#!/usr/bin/env bash
# Builds specd's Debian packages from this checkout (its tracked files as they are in the working
# tree) into OUTDIR (default build-deb/), then runs lintian on them; exit status non-zero when the
# build fails or lintian reports an error or a warning.
#   scripts/package.sh [OUTDIR] [dpkg-buildpackage options…]   e.g. -Ppkg.specd.cuda for the CUDA build
# Needs debhelper, lintian and the build dependencies in packaging/debian/control (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-deb}")
shift || true
version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
stage="$out/src/specd-$version"
rm -rf "$out/src" && mkdir -p "$stage"
# The tracked files only: a build tree or a local model in the checkout never reaches the package.
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$stage"
cp -r packaging/debian "$stage/debian"
# Compiler caching across runs of this script, whichever folder the checkout is in.
export CCACHE_BASEDIR="$stage" CCACHE_NOHASHDIR=1
(cd "$stage" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -b -us -uc "$@" >&2)
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
rm -rf "$out/src"
lintian --fail-on error,warning --info "$out"/*.changes >&2
ls "$out"/*.deb
