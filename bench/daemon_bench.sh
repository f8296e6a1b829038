#!/usr/bin/env bash
# Daemon benchmarks (one JSON line each): decode tok/s through the socket + client library against
# in-process `specd generate` on the same model and prompt (overhead ratio), then aggregate tok/s
# with 1, 4 and 16 concurrent specctl clients (in-flight batching).
# usage: bench/daemon_bench.sh MODEL.gguf [tokens] [threads]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:?usage: daemon_bench.sh MODEL.gguf [tokens] [threads]}
tokens=${2:-128}
threads=${3:-2}
runs=${RUNS:-3}
state=$(mktemp -d)
sock=$state/s.sock
"$root/build/daemon/specd" serve --model "m=$model" --socket "$sock" --runlog "$state/runs.db" \
  --plugin-dir "$root/build/plugins" --threads "$threads" --max-concurrent 32 2> "$state/daemon.log" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 600); do [[ -S $sock ]] && break; sleep 0.1; done
export SPECD_SOCKET=$sock
prompt="Once upon a time"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
inproc=$(for _ in $(seq "$runs"); do
  "$root/build/daemon/specd" generate --model "$model" --prompt "$prompt" --max-tokens "$tokens" --threads "$threads" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["decode_tok_s"])'; done | median)
socket=$(for _ in $(seq "$runs"); do
  "$root/build/clients/specctl" --json generate --prompt "$prompt" --max-tokens "$tokens" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["decode_tok_s"])'; done | median)
python3 -c "import json; print(json.dumps({'name':'daemon_overhead','model':'$model','threads':$threads,'tokens':$tokens,'in_process_tok_s':$inproc,'socket_tok_s':$socket,'ratio':$socket/$inproc}))"
for clients in 1 4 16; do
  start=$(date +%s.%N)
  for i in $(seq "$clients"); do
    "$root/build/clients/specctl" --json generate --prompt "$prompt" --max-tokens "$tokens" --temperature 1 --seed "$i" \
      > "$state/c$i.json" &
  done
  wait $(jobs -p | grep -v "^$daemon\$") 2>/dev/null || true
  end=$(date +%s.%N)
  total=$(cat "$state"/c*.json | python3 -c 'import json,sys; print(sum(json.loads(l)["generated_tokens"] for l in sys.stdin if l.strip()))')
  python3 -c "import json; print(json.dumps({'name':'aggregate_tok_s','model':'$model','clients':$clients,'tokens':$total,'seconds':$end-$start,'tok_s':$total/($end-$start)}))"
  rm -f "$state"/c*.json
done
