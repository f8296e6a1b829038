#!/usr/bin/env python3
"""A PyTorch eager reference for specd's LLaMA forward, and the device facts scripts/gpu-check.sh needs.

Reads a GGUF v3 file itself with numpy (F32, F16 and BF16 tensors; no `gguf` package), builds the
LLaMA forward in torch (RMSNorm, RoPE in llama.cpp's NORM layout unless `specd.rope.layout` says
neox, GQA, SwiGLU, the head tied to token_embd when output.weight is absent) and greedy-decodes
with a KV cache. Every mode prints one JSON line on stdout.

  torch_reference.py info --model M.gguf                 config and weight bytes (bytes read per token)
  torch_reference.py decode --model M.gguf [--device cuda] [--tokens 128] [--prompt-ids 1] [--dtype auto]
                                                          greedy decode tok/s and the first greedy ids
  torch_reference.py bandwidth [--device cuda] [--mib 1024]   device-to-device copy GB/s (read + write)

`info` needs numpy only; the other modes need torch.
"""
import argparse
import json
import struct
import sys
import time

import numpy as np

GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30
TYPE_NAMES = {GGML_F32: "f32", GGML_F16: "f16", GGML_BF16: "bf16"}
TYPE_BYTES = {GGML_F32: 4, GGML_F16: 2, GGML_BF16: 2}


class Gguf:
    """A minimal GGUF v2/v3 reader: metadata, and tensors as numpy arrays mapped from the file."""

    _SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def __init__(self, path):
        self.path = path
        self.buf = np.memmap(path, dtype=np.uint8, mode="r")
        self.pos = 0
        magic = bytes(self.buf[0:4])
        if magic != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        self.pos = 4
        version = self._scalar(4)
        if version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {version} (want 2 or 3)")
        n_tensors, n_kv = self._scalar(10), self._scalar(10)
        self.meta = {}
        for _ in range(n_kv):
            key = self._string()
            t = self._scalar(4)
            self.meta[key] = self._value(t)
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            n_dims = self._scalar(4)
            ne = [self._scalar(10) for _ in range(n_dims)]
            ggml_type, offset = self._scalar(4), self._scalar(10)
            infos.append((name, ne, ggml_type, offset))
        align = int(self.meta.get("general.alignment", 32))
        data = (self.pos + align - 1) // align * align
        self.tensors = {}
        for name, ne, ggml_type, offset in infos:
            self.tensors[name] = (ne, ggml_type, data + offset)

    def _scalar(self, t):
        fmt = self._SCALARS[t]
        n = struct.calcsize(fmt)
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return v

    def _string(self):
        n = self._scalar(10)
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return s

    def _value(self, t):
        if t == 8:
            return self._string()
        if t == 9:
            item_type, n = self._scalar(4), self._scalar(10)
            if item_type in self._SCALARS and item_type != 7:
                fmt = self._SCALARS[item_type]
                size = struct.calcsize(fmt)
                arr = np.frombuffer(self.buf, dtype=np.dtype(fmt), count=n, offset=self.pos)
                self.pos += n * size
                return arr
            return [self._value(item_type) for _ in range(n)]
        return self._scalar(t)

    def tensor_bytes(self, name):
        ne, ggml_type, _ = self.tensors[name]
        if ggml_type not in TYPE_BYTES:
            raise ValueError(f"{self.path}: tensor {name} has ggml type {ggml_type} (only f32, f16, bf16 are read)")
        return int(np.prod(ne)) * TYPE_BYTES[ggml_type]

    def array(self, name):
        """The tensor as a numpy array shaped [ne[n-1], ..., ne[0]] (row-major, ne[0] innermost).
        BF16 comes back as int16 (same bits) for torch to view as bfloat16."""
        ne, ggml_type, off = self.tensors[name]
        dtype = {GGML_F32: np.float32, GGML_F16: np.float16, GGML_BF16: np.int16}.get(ggml_type)
        if dtype is None:
            raise ValueError(f"{self.path}: tensor {name} has ggml type {ggml_type} (only f32, f16, bf16 are read)")
        count = int(np.prod(ne))
        return np.frombuffer(self.buf, dtype=dtype, count=count, offset=off).reshape(list(reversed(ne)))


def llama_config(g):
    arch = g.meta.get("general.architecture", "llama")
    if arch != "llama":
        raise ValueError(f"{g.path}: architecture {arch!r} (want llama)")

    def key(k, default=None):
        v = g.meta.get(f"{arch}.{k}", default)
        if v is None:
            raise ValueError(f"{g.path}: missing metadata {arch}.{k}")
        return v

    dim, heads = int(key("embedding_length")), int(key("attention.head_count"))
    head_dim = int(key("attention.key_length", dim // heads))
    c = {
        "dim": dim,
        "layers": int(key("block_count")),
        "heads": heads,
        "kv_heads": int(key("attention.head_count_kv", heads)),
        "head_dim": head_dim,
        "ffn": int(key("feed_forward_length")),
        "ctx": int(key("context_length", 2048)),
        "rope_dims": int(key("rope.dimension_count", head_dim)),
        "rope_theta": float(key("rope.freq_base", 10000.0)),
        "eps": float(key("attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_layout": "neox" if g.meta.get("specd.rope.layout") == "neox" else "norm",
        "vocab": int(g.tensors["token_embd.weight"][0][1]),
        "tied_head": "output.weight" not in g.tensors,
        "bos": int(g.meta.get("tokenizer.ggml.bos_token_id", 1)),
        "eos": int(g.meta.get("tokenizer.ggml.eos_token_id", 2)),
    }
    return c


def weight_bytes(g):
    total = sum(g.tensor_bytes(n) for n in g.tensors)
    embd = g.tensor_bytes("token_embd.weight")
    c = llama_config(g)
    # One decode step reads every matrix and norm once, and one row of token_embd (unless the
    # head is tied to it, then all of it).
    per_token = total if c["tied_head"] else total - embd + embd // c["vocab"]
    types = sorted({TYPE_NAMES.get(t, str(t)) for (_, t, _) in g.tensors.values()})
    return {"weight_bytes": total, "bytes_per_token": per_token, "types": types}


def cmd_info(a):
    g = Gguf(a.model)
    out = {"name": "model_info", "model": a.model}
    out.update(llama_config(g))
    out.update(weight_bytes(g))
    print(json.dumps(out))


def torch_device(torch, name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("torch_reference: --device cuda but torch.cuda.is_available() is False")
    return torch.device(name)


def sync(torch, dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class Llama:
    def __init__(self, torch, g, dev, dtype):
        self.t, self.dev, self.dtype = torch, dev, dtype
        self.c = c = llama_config(g)

        def w(name):
            ne, ggml_type, _ = g.tensors[name]
            arr = g.array(name)
            if ggml_type == GGML_BF16:
                x = torch.from_numpy(np.array(arr)).view(torch.bfloat16)
            else:
                x = torch.from_numpy(np.array(arr))
            return x.to(dev).to(dtype)

        self.embd = w("token_embd.weight")
        self.head = self.embd if c["tied_head"] else w("output.weight")
        self.out_norm = w("output_norm.weight").float()
        self.blk = []
        for l in range(c["layers"]):
            b = f"blk.{l}."
            self.blk.append({
                "attn_norm": w(b + "attn_norm.weight").float(), "ffn_norm": w(b + "ffn_norm.weight").float(),
                "wq": w(b + "attn_q.weight"), "wk": w(b + "attn_k.weight"), "wv": w(b + "attn_v.weight"),
                "wo": w(b + "attn_output.weight"), "gate": w(b + "ffn_gate.weight"),
                "up": w(b + "ffn_up.weight"), "down": w(b + "ffn_down.weight"),
            })
        half = c["rope_dims"] // 2
        i = torch.arange(half, dtype=torch.float64)
        self.inv_freq = (c["rope_theta"] ** (-2.0 * i / c["rope_dims"])).to(dev)

    def new_cache(self, max_len):
        c, t = self.c, self.t
        shape = (c["layers"], max_len, c["kv_heads"], c["head_dim"])
        self.k_cache = t.zeros(shape, dtype=self.dtype, device=self.dev)
        self.v_cache = t.zeros(shape, dtype=self.dtype, device=self.dev)

    def rmsnorm(self, x, g):
        x = x.float()
        return x * self.t.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["eps"]) * g

    def rope(self, x, pos):
        # x: [n, heads, head_dim]; angles as llama.cpp: pos * base^(-2i/rope_dims), in double.
        t, c = self.t, self.c
        ang = pos.to(t.float64)[:, None] * self.inv_freq[None, :]
        cos, sin = ang.cos().float()[:, None, :], ang.sin().float()[:, None, :]
        xf = x.float()
        r, rest = xf[..., :c["rope_dims"]], xf[..., c["rope_dims"]:]
        if c["rope_layout"] == "neox":
            a, b = r[..., :c["rope_dims"] // 2], r[..., c["rope_dims"] // 2:]
            r = t.cat([a * cos - b * sin, a * sin + b * cos], -1)
        else:
            a, b = r[..., 0::2], r[..., 1::2]
            r = t.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)
        return t.cat([r, rest], -1).to(x.dtype)

    def forward(self, tokens, start):
        """tokens: 1-D LongTensor of n tokens at positions start..start+n-1; returns the last row's logits."""
        t, c = self.t, self.c
        n = tokens.shape[0]
        pos = t.arange(start, start + n, device=self.dev)
        x = self.embd[tokens].float()
        group = c["heads"] // c["kv_heads"]
        scale = 1.0 / (c["head_dim"] ** 0.5)
        causal = t.ones(n, start + n, dtype=t.bool, device=self.dev).tril(start)
        for l, b in enumerate(self.blk):
            h = self.rmsnorm(x, b["attn_norm"]).to(self.dtype)
            q = (h @ b["wq"].T).view(n, c["heads"], c["head_dim"])
            k = (h @ b["wk"].T).view(n, c["kv_heads"], c["head_dim"])
            v = (h @ b["wv"].T).view(n, c["kv_heads"], c["head_dim"])
            q, k = self.rope(q, pos), self.rope(k, pos)
            self.k_cache[l, start:start + n] = k
            self.v_cache[l, start:start + n] = v
            K = self.k_cache[l, :start + n].float().repeat_interleave(group, dim=1)  # [T, heads, hd]
            V = self.v_cache[l, :start + n].float().repeat_interleave(group, dim=1)
            s = t.einsum("nhd,thd->hnt", q.float(), K) * scale
            s = s.masked_fill(~causal[None], float("-inf")).softmax(-1)
            o = t.einsum("hnt,thd->nhd", s, V).reshape(n, c["heads"] * c["head_dim"]).to(self.dtype)
            x = x + (o @ b["wo"].T).float()
            h = self.rmsnorm(x, b["ffn_norm"]).to(self.dtype)
            f = t.nn.functional.silu(h @ b["gate"].T) * (h @ b["up"].T)
            x = x + (f @ b["down"].T).float()
        last = self.rmsnorm(x[-1:], self.out_norm).to(self.dtype)
        return (last @ self.head.T).float()[0]


def cmd_decode(a):
    import torch
    torch.set_grad_enabled(False)
    dev = torch_device(torch, a.device)
    g = Gguf(a.model)
    types = weight_bytes(g)["types"]
    if a.dtype == "auto":
        dtype = torch.float32
        if "bf16" in types:
            dtype = torch.bfloat16
        elif "f16" in types:
            dtype = torch.float16
    else:
        dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[a.dtype]
    if dev.type == "cpu" and dtype == torch.float16:
        dtype = torch.float32  # half matmuls on CPU are missing or slow in older torch
    t0 = time.perf_counter()
    m = Llama(torch, g, dev, dtype)
    sync(torch, dev)
    load_s = time.perf_counter() - t0
    prompt = [int(x) for x in a.prompt_ids.split(",")]
    n = min(a.tokens, m.c["ctx"] - len(prompt))

    def run(n_tokens):
        m.new_cache(len(prompt) + n_tokens)
        logits = m.forward(torch.tensor(prompt, device=dev), 0)
        ids = [int(logits.argmax())]
        sync(torch, dev)
        t_start = time.perf_counter()
        for i in range(n_tokens - 1):
            logits = m.forward(torch.tensor([ids[-1]], device=dev), len(prompt) + i)
            ids.append(int(logits.argmax()))  # .item() syncs: greedy needs the id on the host
        sync(torch, dev)
        return ids, time.perf_counter() - t_start

    run(min(8, n))  # warm-up (allocator, cuBLAS handles)
    best = None
    for _ in range(a.runs):
        ids, secs = run(n)
        if best is None or secs < best[1]:
            best = (ids, secs)
    ids, secs = best
    name = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16"}[dtype]
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(json.dumps({
        "name": "torch_reference_decode", "model": a.model, "device": str(dev), "device_name": dev_name,
        "dtype": name, "torch": torch.__version__, "prompt_ids": prompt, "tokens": n, "runs": a.runs,
        "unit": "tok/s", "tok_s": (n - 1) / secs if n > 1 else 0.0, "load_s": load_s,
        "first_ids": ids[:a.show_ids],
    }))


def cmd_bandwidth(a):
    import torch
    dev = torch_device(torch, a.device)
    n = a.mib * (1 << 20) // 4
    src = torch.empty(n, dtype=torch.float32, device=dev).fill_(1.0)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    sync(torch, dev)
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        dst.copy_(src)
        sync(torch, dev)
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    nbytes = 2 * n * 4  # a copy reads and writes every byte
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(json.dumps({
        "name": "copy_bandwidth", "device": str(dev), "device_name": dev_name, "mib": a.mib, "runs": a.runs,
        "unit": "GB/s", "median": nbytes / med / 1e9, "max": nbytes / times[0] / 1e9,
        "note": "device-to-device copy; bytes read + bytes written per second",
    }))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("info")
    i.add_argument("--model", required=True)
    d = sub.add_parser("decode")
    d.add_argument("--model", required=True)
    d.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    d.add_argument("--tokens", type=int, default=128)
    d.add_argument("--prompt-ids", default="1", help="comma-separated prompt ids (default: BOS)")
    d.add_argument("--dtype", default="auto", choices=["auto", "f32", "f16", "bf16"])
    d.add_argument("--runs", type=int, default=3)
    d.add_argument("--show-ids", type=int, default=32, help="how many greedy ids to print")
    b = sub.add_parser("bandwidth")
    b.add_argument("--device", default="auto")
    b.add_argument("--mib", type=int, default=1024)
    b.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    {"info": cmd_info, "decode": cmd_decode, "bandwidth": cmd_bandwidth}[a.cmd](a)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as e:
        print(f"torch_reference: {e}", file=sys.stderr)
        sys.exit(1)
