#!/usr/bin/env bash
# Measures llama.cpp (../shared/tools/llamacpp-anchor) and specd on the same GGUF in one run and
# prints JSON lines: each side's decode tok/s, prefill tok/s and verify-cost curve, then the ratios.
# usage: bench/compare_llamacpp.sh MODEL.gguf [threads] [ks]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:?usage: compare_llamacpp.sh MODEL.gguf [threads] [ks]}
threads=${2:-2}
ks=${3:-1,2,4,8,16,32,64}
depth=${DEPTH:-256}
runs=${RUNS:-5}
anchor=$("$root/../shared/tools/llamacpp-anchor")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# llama.cpp: tg128, pp512, then pp-k at depth (the verify-cost curve).
"$anchor/llama-bench" -m "$model" -t "$threads" -r "$runs" -p 512 -n 128 -o jsonl > "$out/llama_main.jsonl" 2>/dev/null
"$anchor/llama-bench" -m "$model" -t "$threads" -r "$runs" -p "$ks" -n 0 -d "$depth" -o jsonl > "$out/llama_verify.jsonl" 2>/dev/null
# specd, same file, same threads, right after.
"$root/build/bench/specd-bench" --model "$model" --threads "$threads" --runs "$runs" --depth "$depth" --ks "$ks" ${BENCH_ARGS:-} \
  > "$out/specd.jsonl"

python3 - "$out" "$model" "$threads" <<'PY'
import json, sys, os
out, model, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
def lines(name):
    with open(os.path.join(out, name)) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]
llama = lines("llama_main.jsonl") + lines("llama_verify.jsonl")
specd = lines("specd.jsonl")
tg = next(r["avg_ts"] for r in llama if r["n_gen"] > 0)
pp = next(r["avg_ts"] for r in llama if r["n_prompt"] == 512 and r["n_gen"] == 0 and r.get("n_depth", 0) == 0)
# llama-bench reports tokens/s of the k-row batch; latency L(k) = k / tok/s.
lk = {r["n_prompt"]: r["n_prompt"] / r["avg_ts"] for r in llama if r.get("n_depth", 0) > 0}
s_dec = next(r["median"] for r in specd if r["name"] == "decode_tok_s")
s_pre = next(r["median"] for r in specd if r["name"] == "prefill_tok_s")
s_lk = {r["k"]: r["median"] for r in specd if r["name"] == "verify_ms"}
def emit(**kw):
    kw.update(model=model, threads=threads)
    print(json.dumps(kw))
emit(name="decode_tok_s", llamacpp=tg, specd=s_dec, ratio=s_dec / tg)
emit(name="prefill_tok_s", llamacpp=pp, specd=s_pre, ratio=s_pre / pp)
k1l, k1s = lk.get(1), s_lk.get(1)
for k in sorted(s_lk):
    emit(name="verify_cost", k=k, llamacpp=(lk[k] / k1l) if k in lk and k1l else None,
         specd=s_lk[k] / k1s if k1s else None)
PY
