#!/usr/bin/python3
# An independent float64 numpy forward of a LLaMA-family GGUF, the oracle the C++ tests compare against.
"""Reference LLaMA forward in float64 (numpy only; shares no code with the C++ engine).

    llama_ref.py MODEL.gguf --ids 1,403,407 --out logits.f32   # raw LE float32 [n_ids][vocab]
    llama_ref.py MODEL.gguf --ids 1 --greedy 200                # prints 200 greedy ids
    llama_ref.py MODEL.gguf --ids 1 --top 3                     # top-3 probabilities at the last position

It is deliberately plain: RMSNorm, RoPE (adjacent pairs, or NeoX halves when the file says so),
grouped-query attention, SwiGLU FFN, tied or untied output head. Weights are dequantized to
float64 once, so results show the stored weights' function without kernel rounding.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "py"))
import specd_gguf  # noqa: E402

# Architectures llama.cpp runs with rope type NEOX (rotate halves); everything else here is NORM (pairs).
_NEOX_ARCHS = {"qwen2", "qwen3", "phi2", "phi3", "gptneox", "stablelm", "olmo2", "gemma", "gemma2"}


class Config:
    def __init__(self, f, rope_override=None):
        arch = f.get("general.architecture", "llama")
        g = lambda k, d=None: f.get("%s.%s" % (arch, k), d)  # noqa: E731
        self.dim = int(g("embedding_length"))
        self.n_layers = int(g("block_count"))
        self.n_heads = int(g("attention.head_count"))
        self.n_kv_heads = int(g("attention.head_count_kv", self.n_heads))
        self.head_dim = int(g("attention.key_length", self.dim // self.n_heads))
        self.rope_dims = int(g("rope.dimension_count", self.head_dim))
        self.theta = float(g("rope.freq_base", 10000.0))
        self.eps = float(g("attention.layer_norm_rms_epsilon", 1e-5))
        rope_type = str(g("rope.type", "neox" if arch in _NEOX_ARCHS else "norm")).lower()
        self.neox = (rope_override or rope_type) in ("neox", "2")
        if self.n_heads % self.n_kv_heads:
            raise SystemExit("error: head_count %d not a multiple of head_count_kv %d"
                             % (self.n_heads, self.n_kv_heads))


class Model:
    def __init__(self, path, rope_override=None, dtype=np.float64):
        f = specd_gguf.GgufFile(path)
        self.cfg = Config(f, rope_override)
        w = lambda name: f.tensor(name, dtype)  # noqa: E731
        self.embd = w("token_embd.weight")
        self.out_norm = w("output_norm.weight")
        self.head = w("output.weight") if "output.weight" in f.tensors else self.embd
        names = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
        self.layers = [{n: w("blk.%d.%s.weight" % (i, n)) for n in names}
                       for i in range(self.cfg.n_layers)]
        self.vocab = self.embd.shape[0]

    def rmsnorm(self, x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.cfg.eps) * g

    def rope(self, x, pos):
        """Rotate x [n, heads, head_dim] at absolute positions pos [n]."""
        c = self.cfg
        half = c.rope_dims // 2
        inv = c.theta ** (-np.arange(half, dtype=np.float64) * 2.0 / c.rope_dims)
        ang = pos[:, None].astype(np.float64) * inv[None, :]  # [n, half]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        y = x.copy()
        if c.neox:
            a, b = x[..., :half], x[..., half:c.rope_dims]
            y[..., :half], y[..., half:c.rope_dims] = a * cos - b * sin, a * sin + b * cos
        else:
            a, b = x[..., 0:c.rope_dims:2], x[..., 1:c.rope_dims:2]
            y[..., 0:c.rope_dims:2], y[..., 1:c.rope_dims:2] = a * cos - b * sin, a * sin + b * cos
        return y

    def attention(self, L, xn, pos, cache):
        c = self.cfg
        n = xn.shape[0]
        q = self.rope((xn @ L["attn_q"].T).reshape(n, c.n_heads, c.head_dim), pos)
        k = self.rope((xn @ L["attn_k"].T).reshape(n, c.n_kv_heads, c.head_dim), pos)
        v = (xn @ L["attn_v"].T).reshape(n, c.n_kv_heads, c.head_dim)
        cache["k"] = k if cache.get("k") is None else np.concatenate([cache["k"], k])
        cache["v"] = v if cache.get("v") is None else np.concatenate([cache["v"], v])
        K, V = cache["k"], cache["v"]                # [T, kv_heads, hd], T = start + n
        group = c.n_heads // c.n_kv_heads
        Kh = np.repeat(K, group, axis=1)             # query head h reads KV head h // group
        Vh = np.repeat(V, group, axis=1)
        s = np.einsum("nhd,thd->hnt", q, Kh) / np.sqrt(c.head_dim)
        t_pos = np.arange(K.shape[0])
        s = np.where(t_pos[None, None, :] <= pos[None, :, None], s, -np.inf)  # causal
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        p = s / s.sum(axis=-1, keepdims=True)
        o = np.einsum("hnt,thd->nhd", p, Vh).reshape(n, c.n_heads * c.head_dim)
        return o @ L["attn_output"].T

    def forward(self, ids, caches):
        """Logits [len(ids)][vocab] for ids continuing the sequence held in caches (one dict per layer)."""
        start = 0 if caches[0].get("k") is None else caches[0]["k"].shape[0]
        pos = np.arange(start, start + len(ids))
        x = self.embd[np.asarray(ids)]
        for L, cache in zip(self.layers, caches):
            x = x + self.attention(L, self.rmsnorm(x, L["attn_norm"]), pos, cache)
            h = self.rmsnorm(x, L["ffn_norm"])
            gate = h @ L["ffn_gate"].T
            x = x + ((gate / (1.0 + np.exp(-gate))) * (h @ L["ffn_up"].T)) @ L["ffn_down"].T
        return self.rmsnorm(x, self.out_norm) @ self.head.T

    def new_caches(self):
        return [{} for _ in range(self.cfg.n_layers)]


def parse_ids(text, vocab):
    try:
        ids = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise SystemExit("error: --ids must be comma-separated integers, got %r" % text)
    if not ids:
        raise SystemExit("error: --ids is empty")
    bad = [i for i in ids if i < 0 or i >= vocab]
    if bad:
        raise SystemExit("error: token id %d outside [0, %d)" % (bad[0], vocab))
    return ids


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--ids", default="1", help="comma-separated prompt ids (default: BOS 1)")
    ap.add_argument("--out", help="write logits of every prompt position as raw LE float32 [n][vocab]")
    ap.add_argument("--greedy", type=int, default=0, help="print N greedy ids after the prompt")
    ap.add_argument("--top", type=int, default=0, help="print the top-K probabilities at the last position")
    ap.add_argument("--rope", choices=["norm", "neox"], help="override the file's RoPE layout")
    ap.add_argument("--float32", action="store_true", help="compute in float32 (halves memory for 1B-size models)")
    a = ap.parse_args(argv)
    try:
        m = Model(a.model, a.rope, np.float32 if a.float32 else np.float64)
    except (OSError, specd_gguf.GgufError, KeyError, TypeError) as e:
        raise SystemExit("error: cannot load %s: %s" % (a.model, e))
    ids = parse_ids(a.ids, m.vocab)
    caches = m.new_caches()
    logits = m.forward(ids, caches)
    if a.out:
        logits.astype("<f4").tofile(a.out)
    if a.top:
        z = logits[-1] - logits[-1].max()
        p = np.exp(z) / np.exp(z).sum()
        for t in np.argsort(-p)[:a.top]:
            print("%d %.6f" % (t, p[t]))
    if a.greedy:
        out = []
        last = logits[-1]
        for _ in range(a.greedy):
            nxt = int(np.argmax(last))
            out.append(nxt)
            last = m.forward([nxt], caches)[-1]
        print(" ".join(str(t) for t in out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
