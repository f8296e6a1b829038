#!/usr/bin/env bash
# Runs COMMAND as root inside a throwaway copy of this machine's root filesystem: an overlay over /
# in a private mount namespace, whose changes land in STATE/upper and nowhere else. Packages can be
# installed there and their services started without touching the machine; successive calls with
# the same STATE see what earlier ones installed. /run is fresh in each call (so no maintainer
# script finds a running systemd); /proc and /dev are the machine's; the rest, /tmp included, reads
# as the machine's and writes into the overlay.
#   tests/package/throwaway_root.sh STATE COMMAND [ARG…]
# Needs root and unshare(1) (util-linux); exits 77 ("skipped") when it cannot make the overlay.
set -euo pipefail
state=$(realpath -m "$1")
shift
mkdir -p "$state/upper" "$state/work" "$state/root"
[[ $(id -u) -eq 0 ]] || { echo "skipped: the throwaway root needs root" >&2; exit 77; }
exec unshare --mount --fork bash -c '
  set -euo pipefail
  state=$1; shift
  mount --make-rprivate /
  mount -t overlay overlay -o "lowerdir=/,upperdir=$state/upper,workdir=$state/work" "$state/root" || exit 77
  mount -t proc proc "$state/root/proc"
  mount --rbind /dev "$state/root/dev"
  mount -t tmpfs -o mode=0755 tmpfs "$state/root/run"
  exec chroot "$state/root" "$@"' _ "$state" "$@"
