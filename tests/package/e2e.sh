#!/usr/bin/env bash
# The installed packages, end to end, inside a throwaway root (tests/package/throwaway_root.sh):
#   e2e.sh install DEB_DIR MODEL   install every .deb of DEB_DIR as an admin would, and the model
#                                  where the packaged specd.toml expects it
#   e2e.sh serve                   the daemon as systemd would run it: socket activation, sd_notify,
#                                  a client in the specd group, SIGHUP, an out-of-tree plugin and C
#                                  client built from the SDK, SIGTERM
#   e2e.sh tools                   specd-train and specd-random-model, their files run by specd
# Prints "ok: CHECK" or "FAIL: CHECK" per check (tests/test_package.cpp reads them); exit 1 on a failure.
set -uo pipefail
failed=0
check() {  # check NAME COMMAND…: runs COMMAND, reports NAME
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then echo "ok: $name"; else echo "FAIL: $name"; printf '%s\n' "$out" | tail -20 | sed 's/^/    /'; failed=1; fi
}
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
plugins=/usr/lib/$triplet/specd/plugins
as_alice() { setpriv --reuid=alice --regid=alice --init-groups --reset-env -- "$@"; }

install_step() {
  local debs=$1 model=$2
  check "dpkg installs every package" dpkg -i "$debs"/*.deb
  check "all six packages are installed" dpkg -s specd specd-tools specd-train libspecd-client1 libspecd-client-dev \
    specd-plugin-dev
  check "sysusers made the specd user and group" bash -c 'getent passwd specd && getent group specd'
  check "the socket unit is enabled" test -L /etc/systemd/system/sockets.target.wants/specd.socket
  check "the service is not enabled by itself" test ! -e /etc/systemd/system/multi-user.target.wants/specd.service
  check "the built-in plugins are in the plugin directory" test -f "$plugins/ar.so" -a -f "$plugins/redrafter.so"
  check "the config is a conffile" bash -c 'dpkg-query -W -f="\${Conffiles}" specd | grep -q /etc/specd/specd.toml'
  check "man pages are installed" man -w specd.8 specctl.1 specd.toml.5 specd-quantize.1
  check "the installed unit scores at most 2.0 in systemd-analyze security" bash -c \
    'systemd-analyze security --offline=true --threshold=20 /lib/systemd/system/specd.service'
  # What the admin does next (README "Install from the package"): a model where specd.toml points,
  # a person in the specd group. systemd would make /var/lib/specd from StateDirectory=.
  install -D -m 0644 "$model" /usr/share/specd/models/stories260K.gguf
  install -d -o specd -g specd -m 0750 /var/lib/specd
  id alice >/dev/null 2>&1 || useradd -m alice
  usermod -aG specd alice
}

wait_for() {  # wait_for SECONDS COMMAND…
  local deadline=$((SECONDS + $1)); shift
  until "$@" 2>/dev/null; do ((SECONDS < deadline)) || return 1; sleep 0.1; done
}

prompt="Once upon a time"
socket=/run/specd/specd.sock
specctl_as_alice() { as_alice /usr/bin/specctl --socket "$socket" "$@"; }
generate_as_alice() {  # generate_as_alice DECODER OUT: 24 greedy tokens; stats go to stderr
  specctl_as_alice generate --decoder "$1" --prompt "$prompt" --max-tokens 24 >"$2" && test -s "$2"
}
refused_for_bob() {  # specctl's exit status 4: access denied
  setpriv --reuid=bob --regid=bob --init-groups --reset-env -- /usr/bin/specctl --socket "$socket" status
  [[ $? -eq 4 ]]
}
c_client_matches_ar() { [[ $(as_alice /run/client "$socket" "$prompt") == "$(cat /run/ar.txt)" ]]; }
run_rows_are() { [[ $(specctl_as_alice --json runs --last 10 | grep -o '"decoder"' | wc -l) -eq $1 ]]; }

serve_step() {
  # A notify socket like systemd's: every datagram the daemon sends, one per line.
  python3 -c '
import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind("/run/notify.sock"); os.chmod("/run/notify.sock", 0o666)
with open("/run/notify.log", "a", buffering=1) as f:
    while True: f.write(s.recv(4096).decode() + "\n")' &
  local notify_pid=$!
  wait_for 5 test -S /run/notify.sock
  mkdir -p -m 0755 /run/specd
  # systemd-socket-activate binds and listens as root and starts the daemon (as specd, dropping
  # privileges the way User=/Group= do) on the first connection, with the socket as fd 3. It passes
  # on only the variables named with -E, as systemd gives a service only its own.
  NOTIFY_SOCKET=/run/notify.sock WATCHDOG_USEC=1000000 systemd-socket-activate -l /run/specd/specd.sock \
    -E NOTIFY_SOCKET -E WATCHDOG_USEC -- \
    setpriv --reuid=specd --regid=specd --init-groups -- /usr/bin/specd serve --config /etc/specd/specd.toml \
    2>/run/specd.log &
  local daemon_pid=$!
  wait_for 5 test -S /run/specd/specd.sock
  chgrp specd /run/specd/specd.sock && chmod 0660 /run/specd/specd.sock  # SocketGroup=, SocketMode=
  check "a first client in the specd group is answered (socket activation)" generate_as_alice ar /run/ar.txt
  check "the daemon said READY=1" wait_for 10 grep -qx READY=1 /run/notify.log
  check "the daemon pings the watchdog (WATCHDOG=1)" wait_for 5 grep -qx WATCHDOG=1 /run/notify.log
  id bob >/dev/null 2>&1 || useradd bob
  check "a user outside the group is refused" refused_for_bob

  # An out-of-tree plugin built with only the installed SDK, dropped in, picked up by SIGHUP.
  cp -r /usr/share/doc/specd-plugin-dev/examples/c_decoder /run/plugin-src
  find /run/plugin-src -name '*.gz' -exec gunzip {} +
  check "the example plugin builds with pkg-config specd-decoder" make -s -C /run/plugin-src OUT="$plugins"
  kill -HUP "$daemon_pid"
  check "SIGHUP rescans the plugin directories" wait_for 10 grep -q "plugin rescan" /run/specd.log
  check "the new decoder serves a request" generate_as_alice example-greedy /run/greedy.txt
  check "its greedy text equals ar's" cmp /run/ar.txt /run/greedy.txt

  # A C client built with only pkg-config specd-client.
  cat >/run/client.c <<'C'
#include <specd/client.h>
#include <stdio.h>
int main(int argc, char **argv) {
  if (argc != 3) return 2;
  specd_client_opts o; specd_client_opts_init(&o); o.socket_path = argv[1];
  specd_client *c; specd_error err; specd_error_init(&err);
  if (specd_client_connect(&o, &c, &err) != SPECD_OK) { fprintf(stderr, "connect: %s\n", err.message); return 1; }
  specd_gen_params p; specd_gen_params_init(&p); p.prompt_text = argv[2]; p.max_tokens = 24; p.flags = 0;
  specd_gen_result *r;
  if (specd_generate_sync(c, &p, &r, &err) != SPECD_OK) { fprintf(stderr, "generate: %s\n", err.message); return 1; }
  fputs(r->text, stdout);
  specd_gen_result_free(r); specd_client_close(c); return 0;
}
C
  check "a C client builds with pkg-config specd-client" bash -c \
    'cc -std=c11 -Wall -Werror /run/client.c $(pkg-config --cflags --libs specd-client) -o /run/client'
  check "the C client talks to the daemon (the same text as specctl)" c_client_matches_ar
  check "the run log has a row per request" run_rows_are 3

  kill -TERM "$daemon_pid"
  local rc=0
  wait "$daemon_pid" || rc=$?
  check "SIGTERM drains and exits 0" test "$rc" -eq 0
  check "the daemon said STOPPING=1" grep -qx STOPPING=1 /run/notify.log
  kill "$notify_pid" 2>/dev/null
  if ((failed)); then echo "--- daemon log"; tail -30 /run/specd.log; echo "--- notify"; sort -u /run/notify.log; fi
}

# The tools packages as a user would use them: a (smoke) drafter trained by specd-train and run by the
# installed specd with redrafter gives ar's text; a specd-random-model model generates.
model=/usr/share/specd/models/stories260K.gguf
generate_local() {  # generate_local OUT ARGS…: 24 greedy tokens in-process
  local out=$1; shift
  /usr/bin/specd generate --model "$model" --prompt "$prompt" --max-tokens 24 "$@" >"$out" 2>/dev/null && test -s "$out"
}
tools_step() {
  check "specd-train trains a drafter" specd-train redrafter --smoke --minutes 0.05 --train-tokens 4096 \
    --val-tokens 1024 --model "$model" --out /run/drafter.gguf
  check "ar generates in-process" generate_local /run/ar-local.txt
  check "redrafter with the trained drafter generates" generate_local /run/redrafter-local.txt \
    --decoder redrafter --decoder-opt drafter=/run/drafter.gguf --side-file-dir /run
  check "redrafter's text equals ar's" cmp /run/ar-local.txt /run/redrafter-local.txt
  check "specd-random-model writes a qwen2 model" specd-random-model --arch qwen2 --vocab "$model" \
    --out /run/random.gguf --seed 7
  check "the random model generates" bash -c \
    '/usr/bin/specd generate --model /run/random.gguf --prompt "$0" --max-tokens 8 >/run/random.txt 2>&1' "$prompt"
  check "the trainers' man page is installed" man -w specd-train.1 specd-random-model.1
}

case ${1:-} in
  install) install_step "$2" "$3" ;;
  serve) serve_step ;;
  tools) tools_step ;;
  *) echo "usage: e2e.sh install DEB_DIR MODEL | serve | tools" >&2; exit 2 ;;
esac
exit $failed
