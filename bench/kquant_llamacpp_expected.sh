#!/usr/bin/env bash
# Regenerates tests/data/kquant/llamacpp.json: what llama.cpp (../shared/tools/llamacpp-anchor) makes
# of the test model tests/test_tools.cpp builds (stories260K inflated to dim 256 / ffn 512, BF16):
# for each of Q4_0, Q4_K_M, Q5_K_M, Q6_K, Q8_0, a hash of llama-quantize's tensors (the test checks
# specd-quantize writes the same bytes) and llama-completion's greedy continuations of a few prompts
# (the test checks specd's top-1 choice along them). CI does not need llama.cpp: only this script does.
# usage: bench/kquant_llamacpp_expected.sh   (after scripts/build.sh build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchor=$("$root/../shared/tools/llamacpp-anchor")
models=${SPECD_MODELS:-$root/../shared/models}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/build/tools/specd-inflate" --model "$models/stories260K.gguf" --out "$tmp/bf16.gguf" \
  --dim 256 --layers 6 --heads 32 --kv-heads 8 --ffn 512 --type bf16 2>/dev/null
prompts=("Once upon a time" "The dog" "Tom and Sue" "One day, a little bird" "The sun was" "Lily wanted to")
for t in Q4_0 Q4_K_M Q5_K_M Q6_K Q8_0; do
  "$anchor/llama-quantize" "$tmp/bf16.gguf" "$tmp/$t.gguf" "$t" >/dev/null 2>&1
  for i in "${!prompts[@]}"; do
    # --no-repack: the AMX repacking path dies with SIGILL on some VMs; it does not change the math.
    "$anchor/llama-completion" -m "$tmp/$t.gguf" -p "${prompts[$i]}" -n 48 --temp 0 -t 2 -no-cnv --no-repack \
      2>/dev/null > "$tmp/$t.$i.txt"
  done
done
python3 - "$tmp" "$root/tests/data/kquant/llamacpp.json" "${prompts[@]}" <<'PY'
import json, struct, sys
tmp, out, prompts = sys.argv[1], sys.argv[2], sys.argv[3:]

# ggml type -> (elements per block, bytes per block), for the types these files hold.
BLOCKS = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 8: (32, 34), 12: (256, 144), 13: (256, 176), 14: (256, 210)}

def tensors(path):
    """(name, type, bytes) of every tensor of a GGUF v3 file."""
    d = open(path, "rb").read()
    o = 24
    _, _, nt, nkv = struct.unpack_from("<IIQQ", d, 0)
    def s():
        nonlocal o
        n, = struct.unpack_from("<Q", d, o); o += 8
        v = d[o:o + n]; o += n
        return v
    size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    align = 32
    def val(t):
        nonlocal o
        if t == 8: return s()
        if t == 9:
            at, n = struct.unpack_from("<IQ", d, o); o += 12
            return [val(at) for _ in range(n)]
        v = d[o:o + size[t]]; o += size[t]
        return v
    for _ in range(nkv):
        k = s(); t, = struct.unpack_from("<I", d, o); o += 4
        v = val(t)
        if k == b"general.alignment": align = struct.unpack("<I", v)[0]
    infos = []
    for _ in range(nt):
        name = s(); nd, = struct.unpack_from("<I", d, o); o += 4
        ne = struct.unpack_from("<" + "Q" * nd, d, o); o += 8 * nd
        t, off = struct.unpack_from("<IQ", d, o); o += 12
        elems = 1
        for n in ne: elems *= n
        per, nbytes = BLOCKS[t]
        infos.append((name, t, off, elems // per * nbytes))
    base = (o + align - 1) // align * align
    return [(n, t, d[base + off: base + off + size]) for n, t, off, size in infos]

def fnv(h, data):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h

res = {"model": "stories260K inflated: --dim 256 --layers 6 --heads 32 --kv-heads 8 --ffn 512 --type bf16",
       "prompts": prompts, "types": {}}
for t in ["Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"]:
    h = 0xCBF29CE484222325
    # Name-sorted; each tensor hashed as its name, its type (4 bytes LE) and its data bytes.
    for name, ty, data in sorted(tensors(f"{tmp}/{t}.gguf")):
        h = fnv(h, name)
        h = fnv(h, struct.pack("<I", ty))
        h = fnv(h, data)
    texts = [open(f"{tmp}/{t}.{i}.txt").read() for i in range(len(prompts))]
    res["types"][t] = {"tensor_hash": f"{h:016x}", "greedy": texts}
json.dump(res, open(out, "w"), indent=1, ensure_ascii=False)
print(out)
PY
