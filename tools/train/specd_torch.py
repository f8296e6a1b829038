#!/usr/bin/python3
# Shared PyTorch pieces for specd's training scripts (ReDrafter, TiDAR, D2F): a LLaMA port of our GGUF
# models, a KV-cache batched sampler, a GGUF exporter and the engine's model digest.
"""specd_torch: the small, stable API the training scripts share.

    import specd_torch as st
    st.env_setup()                                   # 1 torch thread, deterministic-ish settings
    m = st.Llama.from_gguf(st.default_model())       # frozen copy of the target, float32
    logits, hidden = m(tokens)                       # tokens [B,T] int64 -> [B,T,V], [B,T,dim]
    logits, hidden = m(tokens, positions, attn_mask) # positions [T] or [B,T]; mask bool [T,S] or [B,T,S]
    mask_id = m.add_mask_token()                     # vocab V -> V+1 (MASK row = mean embedding row)
    ids = st.sample(m, n_tokens=255, temperature=1.0, seed=0, batch=512)   # [batch, 1+255] int64
    st.save_gguf(m, src_path, out_path, {"specd.tidar.block_len": 8})      # engine-loadable GGUF
    st.engine_digest(path)                           # == the engine's model digest (16 hex digits)

`python3 tools/train/specd_torch.py --check` verifies the port: 200 greedy ids from BOS, with a full
recompute and with the KV cache, equal the ids listed in ../shared/models/README.md; prints PASS/FAIL.

Conventions, ported from tests/reference/llama_ref.py (which matches the engine): RMSNorm
x / sqrt(mean(x^2) + eps) * g; RoPE on the first rope_dims of each head, adjacent pairs (x[2i], x[2i+1])
unless the file says NeoX (halves); theta ** (-2i / rope_dims); grouped-query attention where query head
h reads KV head h // (n_heads / n_kv_heads); SwiGLU FFN down(silu(gate x) * up x); scale 1/sqrt(head_dim).
"""

import argparse
import fcntl
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.normpath(os.path.join(_HERE, "..", ".."))
sys.path.insert(0, os.path.join(_REPO, "tools", "py"))
import specd_gguf  # noqa: E402

_NEOX_ARCHS = {"qwen2", "qwen3", "phi2", "phi3", "gptneox", "stablelm", "olmo2", "gemma", "gemma2"}

README_GREEDY_200 = [int(t) for t in """
403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337
410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352
266 268 388 426 338 391 266 267 337 335 312 432 398 312 286 267 414 270 333 415
426 13 438 310 439 419 357 336 432 313 438 310 432 278 316 439 419 298 414 267
265 282 295 433 426 436 317 286 296 418 269 279 292 416 439 413 409 416 327 263
415 294 267 400 426 338 336 432 313 442 391 267 337 335 364 420 268 388 432 398
359 280 303 439 413 272 417 264 312 426 436 13 438 310 286 296 418 269 279 292
416 439 413 409 416 327 263 415 294 267 400 426 338 336 432 313 442 439 423 262
304 420 422 432 317 426 359 279 292 416 439 413 409 416 327 263 415 294 267 400
426 436 13 438 310 279 292 416 439 413 391 267 281 421 427 311 357 432 384 358
""".split()]


# ----------------------------------------------------------------------------------------------------
# Environment and paths
# ----------------------------------------------------------------------------------------------------

def env_setup(threads=1, seed=None):
    """Use `threads` torch threads (1: OpenBLAS and torch's OpenMP pool fight otherwise), no autograd
    anomaly checks; seed torch/numpy when `seed` is given. The BLAS/jemalloc environment variables
    (OPENBLAS_NUM_THREADS=1, LD_PRELOAD=libjemalloc.so.2, MALLOC_CONF) are set by scripts/train.sh."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process
    torch.autograd.set_detect_anomaly(False)
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed)


def cache_dir(*parts):
    """$SPECD_CACHE (default ~/.cache/specd) joined with parts; the directory is created."""
    root = os.environ.get("SPECD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "specd")
    d = os.path.join(root, *parts)
    os.makedirs(d, exist_ok=True)
    return d


def default_model():
    """Path of stories260K.gguf: $SPECD_MODELS, then ../shared/models beside the checkout, then
    $SPECD_CACHE/models (the order of scripts/default-model.sh, without its download)."""
    cands = []
    if os.environ.get("SPECD_MODELS"):
        cands.append(os.path.join(os.environ["SPECD_MODELS"], "stories260K.gguf"))
    cands.append(os.path.join(_REPO, "..", "shared", "models", "stories260K.gguf"))
    root = os.environ.get("SPECD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "specd")
    cands.append(os.path.join(root, "models", "stories260K.gguf"))
    for c in cands:
        if os.path.isfile(c):
            return os.path.normpath(c)
    raise SystemExit("error: stories260K.gguf not found (tried %s); run scripts/default-model.sh" % ", ".join(cands))


class FileLock:
    """`with FileLock(path):` an exclusive flock on path + '.lock' (so concurrent scripts that build the
    same cache wait for each other instead of both computing it)."""

    def __init__(self, path):
        self.path = path + ".lock"
        self.fh = None

    def __enter__(self):
        self.fh = open(self.path, "a")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def atomic_save_npy(path, array):
    """np.save to a temporary name in the same directory, then rename (readers never see half a file)."""
    tmp = "%s.tmp%d.npy" % (path[:-4] if path.endswith(".npy") else path, os.getpid())
    np.save(tmp, array)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------

class Config:
    """Hyper-parameters read from a GGUF's metadata (keys as the engine reads them)."""

    def __init__(self, f):
        arch = f.get("general.architecture", "llama")
        g = lambda k, d=None: f.get("%s.%s" % (arch, k), d)  # noqa: E731
        self.arch = arch
        self.dim = int(g("embedding_length"))
        self.n_layers = int(g("block_count"))
        self.n_heads = int(g("attention.head_count"))
        self.n_kv_heads = int(g("attention.head_count_kv", self.n_heads))
        self.head_dim = int(g("attention.key_length", self.dim // self.n_heads))
        self.rope_dims = int(g("rope.dimension_count", self.head_dim))
        self.theta = float(g("rope.freq_base", 10000.0))
        self.eps = float(g("attention.layer_norm_rms_epsilon", 1e-5))
        self.ctx_len = int(g("context_length", 2048))
        self.hidden = int(g("feed_forward_length"))
        rope_type = str(g("rope.type", "neox" if arch in _NEOX_ARCHS else "norm")).lower()
        self.neox = rope_type in ("neox", "2") or f.get("specd.rope.layout") == "neox"
        self.bos = int(f.get("tokenizer.ggml.bos_token_id", 1))
        self.eos = int(f.get("tokenizer.ggml.eos_token_id", 2))


class KVCache:
    """Per-layer K/V buffers [B, n_kv_heads, max_len, head_dim]; `n` slots are filled."""

    def __init__(self, model, batch, max_len):
        c = model.cfg
        z = lambda: torch.zeros(batch, c.n_kv_heads, max_len, c.head_dim)  # noqa: E731
        self.k = [z() for _ in range(c.n_layers)]
        self.v = [z() for _ in range(c.n_layers)]
        self.n = 0
        self.max_len = max_len


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg
        self.attn_norm = nn.Parameter(torch.ones(c.dim))
        self.attn_q = nn.Linear(c.dim, c.n_heads * c.head_dim, bias=False)
        self.attn_k = nn.Linear(c.dim, c.n_kv_heads * c.head_dim, bias=False)
        self.attn_v = nn.Linear(c.dim, c.n_kv_heads * c.head_dim, bias=False)
        self.attn_output = nn.Linear(c.n_heads * c.head_dim, c.dim, bias=False)
        self.ffn_norm = nn.Parameter(torch.ones(c.dim))
        self.ffn_gate = nn.Linear(c.dim, c.hidden, bias=False)
        self.ffn_up = nn.Linear(c.dim, c.hidden, bias=False)
        self.ffn_down = nn.Linear(c.hidden, c.dim, bias=False)


class Llama(nn.Module):
    """LLaMA-family transformer in float32, weights from one of our GGUF files.

    Attributes: cfg (Config), vocab (current vocabulary incl. an added MASK), mask_id (None or int),
    tok_embd (Parameter [vocab, dim]), output (Parameter or None when tied: the head is tok_embd),
    output_norm, layers (ModuleList of Block)."""

    def __init__(self, cfg, vocab, tied):
        super().__init__()
        self.cfg = cfg
        self.vocab = vocab
        self.mask_id = None
        self.tok_embd = nn.Parameter(torch.zeros(vocab, cfg.dim))
        self.output = None if tied else nn.Parameter(torch.zeros(vocab, cfg.dim))
        self.output_norm = nn.Parameter(torch.ones(cfg.dim))
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        half = cfg.rope_dims // 2
        inv = cfg.theta ** (-torch.arange(half, dtype=torch.float64) * 2.0 / cfg.rope_dims)
        self.register_buffer("rope_inv", inv, persistent=False)
        self.src_tensor_names = []

    @classmethod
    def from_gguf(cls, path):
        """Load every weight of a GGUF (any decodable type, as float32). The head is tied when the file has
        no output.weight or one equal to token_embd.weight."""
        f = specd_gguf.GgufFile(path)
        cfg = Config(f)
        embd = f.tensor("token_embd.weight")
        tied = "output.weight" not in f.tensors or np.array_equal(f.tensor("output.weight"), embd)
        m = cls(cfg, embd.shape[0], tied)
        m.src_tensor_names = list(f.tensors)
        if "specd.mask_token_id" in f.metadata:
            m.mask_id = int(f.metadata["specd.mask_token_id"])
        t = lambda name: torch.from_numpy(np.array(f.tensor(name), dtype=np.float32))  # noqa: E731
        with torch.no_grad():
            m.tok_embd.copy_(t("token_embd.weight"))
            if not tied:
                m.output.copy_(t("output.weight"))
            m.output_norm.copy_(t("output_norm.weight"))
            for i, L in enumerate(m.layers):
                for name in ("attn_norm", "ffn_norm"):
                    getattr(L, name).copy_(t("blk.%d.%s.weight" % (i, name)))
                for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
                    getattr(L, name).weight.copy_(t("blk.%d.%s.weight" % (i, name)))
        return m

    # -- pieces ---------------------------------------------------------------------------------------
    def head_weight(self):
        return self.tok_embd if self.output is None else self.output

    def rmsnorm(self, x, g):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.eps) * g

    def rope_tables(self, positions):
        """cos, sin [..., half] (float32) for integer positions of any shape."""
        ang = positions.to(torch.float64).unsqueeze(-1) * self.rope_inv
        return torch.cos(ang).float(), torch.sin(ang).float()

    def rope(self, x, cos, sin):
        """x [B, heads, T, hd]; cos/sin [B or 1, 1, T, half]."""
        c = self.cfg
        r = c.rope_dims
        if c.neox:
            half = r // 2
            a, b = x[..., :half], x[..., half:r]
            rot = torch.cat([a * cos - b * sin, a * sin + b * cos], -1)
        else:
            a, b = x[..., 0:r:2], x[..., 1:r:2]
            rot = torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)
        return rot if r == c.head_dim else torch.cat([rot, x[..., r:]], -1)

    def add_mask_token(self):
        """Append a MASK token: a new embedding row = mean of the existing rows (an untied head gets the
        mean of its rows too). Returns mask_id = the old vocab size. Call before building the optimizer."""
        if self.mask_id is not None:
            return self.mask_id
        with torch.no_grad():
            self.tok_embd = nn.Parameter(torch.cat([self.tok_embd, self.tok_embd.mean(0, keepdim=True)], 0))
            if self.output is not None:
                self.output = nn.Parameter(torch.cat([self.output, self.output.mean(0, keepdim=True)], 0))
        self.mask_id = self.vocab
        self.vocab += 1
        return self.mask_id

    # -- forward --------------------------------------------------------------------------------------
    def forward(self, tokens, positions=None, attn_mask=None, cache=None):
        """tokens [B,T] int -> (logits [B,T,vocab], hidden [B,T,dim] after the final RMSNorm).

        positions: [T] or [B,T] absolute RoPE positions (default: arange(T), or cache.n + arange(T)).
        attn_mask: bool [T,S] or [B,T,S], True = may attend, S = T (or cache.n + T with a cache);
          default causal (query i sees keys 0..i, with a cache slots 0..cache.n+i). A row with no True
          gives NaN. cache: a KVCache; the new K/V are written at slots cache.n.. and cache.n advances."""
        c = self.cfg
        B, T = tokens.shape
        start = cache.n if cache is not None else 0
        if positions is None:
            positions = torch.arange(start, start + T)
        positions = positions.reshape(-1, T) if positions.dim() == 1 else positions  # [1 or B, T]
        cos, sin = self.rope_tables(positions)
        cos, sin = cos[:, None], sin[:, None]                                    # [1|B, 1, T, half]
        S = start + T
        if attn_mask is None:
            add = None if T == 1 else torch.full((T, S), float("-inf")).triu(start + 1)
            if add is not None:
                add = add[None, None, None]
        else:
            m = attn_mask if attn_mask.dim() == 3 else attn_mask[None]
            add = torch.zeros(m.shape, dtype=torch.float32).masked_fill(~m.bool(), float("-inf"))
            add = add[:, None, None]                                             # [1|B, 1, 1, T, S]
        group = c.n_heads // c.n_kv_heads
        scale = 1.0 / float(np.sqrt(c.head_dim))
        x = F.embedding(tokens, self.tok_embd)
        for li, L in enumerate(self.layers):
            xn = self.rmsnorm(x, L.attn_norm)
            q = L.attn_q(xn).view(B, T, c.n_heads, c.head_dim).transpose(1, 2)
            k = L.attn_k(xn).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
            v = L.attn_v(xn).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
            if cache is not None:
                cache.k[li][:, :, start:S] = k
                cache.v[li][:, :, start:S] = v
                k, v = cache.k[li][:, :, :S], cache.v[li][:, :, :S]
            qg = q.reshape(B, c.n_kv_heads, group, T, c.head_dim)
            s = torch.matmul(qg, k.unsqueeze(2).transpose(-1, -2)) * scale       # [B, kvh, g, T, S]
            if add is not None:
                s = s + add
            o = torch.matmul(torch.softmax(s, -1), v.unsqueeze(2))               # [B, kvh, g, T, hd]
            o = o.reshape(B, c.n_heads, T, c.head_dim).transpose(1, 2).reshape(B, T, -1)
            x = x + L.attn_output(o)
            h = self.rmsnorm(x, L.ffn_norm)
            x = x + L.ffn_down(F.silu(L.ffn_gate(h)) * L.ffn_up(h))
        hidden = self.rmsnorm(x, self.output_norm)
        logits = F.linear(hidden, self.head_weight())
        if cache is not None:
            cache.n = S
        return logits, hidden


# ----------------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------------

@torch.no_grad()
def sample(model, prompts=None, n_tokens=255, temperature=1.0, seed=0, batch=512, greedy_from=None,
           vocab_limit=None):
    """Generate n_tokens per row with a KV cache. Returns int64 tensor [batch, P + n_tokens] (prompt
    included). prompts: None (every row is [BOS]) or an int tensor [batch, P] (equal lengths).
    temperature 0 = greedy. greedy_from: optional int tensor [batch]; row r samples its first
    greedy_from[r] new tokens at `temperature`, then continues greedily. Deterministic for a given
    seed (torch.Generator). vocab_limit: sample only ids < vocab_limit (default: the original vocab,
    i.e. never an added MASK)."""
    model.eval()
    if prompts is None:
        prompts = torch.full((batch, 1), model.cfg.bos, dtype=torch.long)
    prompts = torch.as_tensor(prompts, dtype=torch.long)
    B, P = prompts.shape
    vl = vocab_limit or (model.mask_id if model.mask_id is not None else model.vocab)
    gen = torch.Generator().manual_seed(int(seed))
    cache = KVCache(model, B, P + n_tokens)
    out = torch.empty(B, P + n_tokens, dtype=torch.long)
    out[:, :P] = prompts
    logits, _ = model(prompts, cache=cache)
    last = logits[:, -1, :vl]
    for i in range(n_tokens):
        if temperature > 0:
            probs = torch.softmax(last / temperature, -1)
            nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
            if greedy_from is not None:
                g = greedy_from <= i
                if bool(g.any()):
                    nxt = torch.where(g, last.argmax(-1), nxt)
        else:
            nxt = last.argmax(-1)
        out[:, P + i] = nxt
        if i + 1 < n_tokens:
            logits, _ = model(nxt[:, None], cache=cache)
            last = logits[:, -1, :vl]
    return out


# ----------------------------------------------------------------------------------------------------
# GGUF export and the engine's digest
# ----------------------------------------------------------------------------------------------------

def _model_tensors(model):
    """GGUF name -> float32 numpy array for every weight of the model."""
    d = {"token_embd.weight": model.tok_embd, "output_norm.weight": model.output_norm,
         "output.weight": model.head_weight()}
    for i, L in enumerate(model.layers):
        d["blk.%d.attn_norm.weight" % i] = L.attn_norm
        d["blk.%d.ffn_norm.weight" % i] = L.ffn_norm
        for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
            d["blk.%d.%s.weight" % (i, name)] = getattr(L, name).weight
    return {k: v.detach().cpu().float().numpy() for k, v in d.items()}


def save_gguf(model, src_path, out_path, extra_kv=None):
    """Write `model` as a GGUF the engine loads: every metadata key of src_path copied (same types),
    every tensor of src_path written F32 under the same name and in the same order. When a MASK token was
    added: token_embd/output get the extra row, tokenizer.ggml.tokens/scores/token_type get "<mask>"/0/3
    (control) and specd.mask_token_id (int32) = mask id. extra_kv: {key: value} added last; Python int ->
    int32, float -> float32, str -> string, or (value, gguf_type) to force a type. Atomic (temp + rename)."""
    src = specd_gguf.GgufFile(src_path)
    w = specd_gguf.GgufWriter(alignment=src.alignment)
    grow = model.mask_id is not None and "specd.mask_token_id" not in src.metadata
    for key in src.metadata:
        if key == "general.alignment":
            continue
        if grow and key == "tokenizer.ggml.tokens":
            w.add(key, list(src.metadata[key]) + ["<mask>"], specd_gguf.GGUF_ARRAY, specd_gguf.GGUF_STRING)
        elif grow and key in ("tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
            arr = src.metadata[key]
            new = np.concatenate([arr, np.array([0 if key == "tokenizer.ggml.scores" else 3], dtype=arr.dtype)])
            w.add(key, new, specd_gguf.GGUF_ARRAY)
        else:
            w.copy_kv(src, key)
    if model.mask_id is not None:
        w.add("specd.mask_token_id", int(model.mask_id), specd_gguf.GGUF_INT32)
    for key, val in (extra_kv or {}).items():
        if isinstance(val, tuple):
            w.add(key, val[0], val[1])
        elif isinstance(val, bool):
            w.add(key, val, specd_gguf.GGUF_BOOL)
        elif isinstance(val, (int, np.integer)):
            w.add(key, int(val), specd_gguf.GGUF_INT32)
        elif isinstance(val, (float, np.floating)):
            w.add(key, float(val), specd_gguf.GGUF_FLOAT32)
        else:
            w.add(key, val)
    tensors = _model_tensors(model)
    for name in src.tensors:
        if name not in tensors:
            raise SystemExit("error: save_gguf: no weight for source tensor %s" % name)
        w.add_tensor(name, tensors[name], specd_gguf.GGML_F32)
    write_atomic(w, out_path)


def write_atomic(writer, out_path):
    """GgufWriter.write to out_path via a temporary name in the same directory + rename."""
    d = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, ".%s.tmp%d" % (os.path.basename(out_path), os.getpid()))
    writer.write(tmp)
    os.replace(tmp, out_path)


def engine_digest(path):
    """The engine's model digest (engine/model.cpp digest_of): FNV-1a 64 over the bytes [0, smallest
    absolute tensor data offset), then over the first min(nbytes, 4096) bytes of each tensor's data in
    tensor-info order; 16 lowercase hex digits."""
    f = specd_gguf.GgufFile(path)
    buf = f.buf
    header = len(buf)
    for t in f.tensors.values():
        header = min(header, t.data_offset)
    h = 0xcbf29ce484222325
    mask = (1 << 64) - 1

    def mix(h, b):
        for x in bytes(b):
            h = ((h ^ x) * 0x100000001b3) & mask
        return h

    h = mix(h, buf[:header])
    for t in f.tensors.values():
        h = mix(h, buf[t.data_offset:t.data_offset + min(t.nbytes, 4096)])
    return "%016x" % h


# ----------------------------------------------------------------------------------------------------
# Self-test
# ----------------------------------------------------------------------------------------------------

@torch.no_grad()
def adaptation_parser(doc, what, minutes, smoke_minutes, lr, batch, block_len=8, train_tokens=1 << 20):
    """The command line the MASK-model adaptations (TiDAR, D2F) share; callers add their own options
    and read it with adaptation_args. The token counts default to cached data sets (1M tokens is the
    one the other methods use too; smoke runs always take 64k)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output %s GGUF" % what)
    ap.add_argument("--model", help="source GGUF (default stories260K)")
    ap.add_argument("--data-model", help="GGUF the training data is sampled from (default --model's); give "
                    "stories260K when --model is a grown copy of it (specd-inflate): same function, cached data")
    ap.add_argument("--smoke", action="store_true", help="small data + about a minute: the test set-up's model")
    ap.add_argument("--eval", metavar="GGUF", help="evaluate an exported %s model and exit" % what)
    ap.add_argument("--minutes", type=float,
                    help="training wall-clock budget (default %g, smoke %g)" % (minutes, smoke_minutes))
    ap.add_argument("--train-tokens", type=int, help="default %d (smoke 64k)" % train_tokens)
    ap.add_argument("--val-tokens", type=int, help="default 64k (smoke 16k)")
    ap.add_argument("--greedy-frac", type=float, default=0.75, help="share of greedy-continuation rows")
    ap.add_argument("--block-len", type=int, default=block_len)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=float, default=5.0, help="minutes between held-out evals")
    ap.add_argument("--json", help="write the final metrics here")
    ap.set_defaults(default_minutes=(minutes, smoke_minutes), default_train_tokens=train_tokens)
    return ap


def adaptation_args(ap):
    """Parse ap (from adaptation_parser), set up torch, and fill in the defaults: a.model, a.data_model,
    a.minutes, a.train_tokens, a.val_tokens."""
    a = ap.parse_args()
    env_setup(threads=a.threads, seed=a.seed)
    a.model = a.model or default_model()
    a.data_model = a.data_model or a.model
    if a.minutes is None:
        a.minutes = a.default_minutes[1] if a.smoke else a.default_minutes[0]
    a.train_tokens = a.train_tokens or (1 << 16 if a.smoke else a.default_train_tokens)
    a.val_tokens = a.val_tokens or (1 << 14 if a.smoke else 1 << 16)
    return a


def lr_at(frac, base, warm=0.05, floor=0.1, start=0.02):
    """Learning rate at fraction frac of a wall-clock budget: linear warm-up over the first `warm`
    (from start*base), then cosine down to floor*base."""
    if frac < warm:
        return base * max(frac / warm, start)
    p = min(1.0, (frac - warm) / (1 - warm))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def train_for(model, rows, batch, lr, minutes, seed, loss_fn, name, evaluate=None, eval_every=5.0,
              betas=(0.9, 0.95), clip=1.0):
    """AdamW (weight decay 0) over random batches of rows [n, S] for `minutes` of wall clock, with
    lr_at's schedule and gradient clipping; the clock pauses while evaluate() runs (every eval_every
    minutes; it returns a line for the log). loss_fn(x [batch, S] int64, rng) -> (loss, log text).
    The batch order and whatever loss_fn draws come from one RandomState(seed). Returns
    (steps, seconds trained)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=0.0)
    rng = np.random.RandomState(seed)
    order, cursor = rng.permutation(rows.shape[0]), 0
    budget, trained, step = minutes * 60.0, 0.0, 0
    next_eval = eval_every * 60.0
    t_last = time.time()
    while trained < budget:
        if cursor + batch > len(order):
            order, cursor = rng.permutation(rows.shape[0]), 0
        x = torch.from_numpy(rows[order[cursor:cursor + batch]].astype(np.int64))
        cursor += batch
        cur = lr_at(trained / budget, lr)
        for g in opt.param_groups:
            g["lr"] = cur
        loss, text = loss_fn(x, rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        step += 1
        now = time.time()
        trained += now - t_last
        t_last = now
        if step % 20 == 0 or step == 1:
            print("%s: step %d, %.1f min, lr %.2e, %s" % (name, step, trained / 60, cur, text), file=sys.stderr,
                  flush=True)
        if evaluate is not None and trained >= next_eval and trained < budget:
            print("%s: %s" % (name, evaluate()), file=sys.stderr, flush=True)
            next_eval += eval_every * 60.0
            t_last = time.time()
    return step, trained


def greedy_full(model, ids, n):
    """n greedy ids after `ids`, recomputing the whole prefix every step (no cache)."""
    seq = list(ids)
    for _ in range(n):
        logits, _ = model(torch.tensor([seq]))
        seq.append(int(logits[0, -1].argmax()))
    return seq[len(ids):]


def _check(model_path):
    env_setup()
    m = Llama.from_gguf(model_path)
    ok = True
    t0 = time.time()
    full = greedy_full(m, [m.cfg.bos], 200)
    cached = sample(m, n_tokens=200, temperature=0.0, batch=2)[:, 1:].tolist()
    p = torch.softmax(m(torch.tensor([[m.cfg.bos]]))[0][0, -1], -1)
    print("p(403|BOS) = %.4f (README 0.784)" % float(p[403]))
    for name, got in (("full recompute", full), ("kv cache row 0", cached[0]), ("kv cache row 1", cached[1])):
        good = got == README_GREEDY_200
        ok &= good
        first_bad = next((i for i, (a, b) in enumerate(zip(got, README_GREEDY_200)) if a != b), None)
        print("greedy 200 (%s): %s%s" % (name, "match" if good else "MISMATCH", "" if good else " at %s" % first_bad))
    # A custom causal mask and explicit positions must reproduce the default path.
    toks = torch.tensor([[1] + README_GREEDY_200[:31]])
    a, _ = m(toks)
    b, _ = m(toks, torch.arange(32), torch.ones(32, 32, dtype=torch.bool).tril())
    good = torch.allclose(a, b, atol=1e-5)
    ok &= good
    print("explicit mask/positions == default: %s" % good)
    # Digest is stable and save_gguf round-trips, including an added MASK token.
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "m.gguf")
        m2 = Llama.from_gguf(model_path)
        mid = m2.add_mask_token()
        save_gguf(m2, model_path, out, {"specd.test.x": 3})
        f = specd_gguf.GgufFile(out)
        m3 = Llama.from_gguf(out)
        good = (m3.vocab == m.vocab + 1 and m3.mask_id == mid and len(f.metadata["tokenizer.ggml.tokens"]) == m3.vocab
                and torch.equal(m3(toks)[0][..., :m.vocab], m2(toks)[0][..., :m.vocab]))
        ok &= good
        print("save_gguf round trip with MASK: %s (vocab %d, mask %d, digest %s)" % (good, m3.vocab, mid, engine_digest(out)))
    print("digest %s  %s" % (engine_digest(model_path), model_path))
    print("(%.1f s) %s" % (time.time() - t0, "PASS" if ok else "FAIL"))
    return 0 if ok else 1


def _bench(model_path, batch, n):
    env_setup()
    m = Llama.from_gguf(model_path)
    t0 = time.time()
    sample(m, n_tokens=n, batch=batch, seed=0)
    dt = time.time() - t0
    print("sampled %d x %d tokens in %.1f s: %.0f tok/s" % (batch, n, dt, batch * n / dt))
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="parity self-test (prints PASS/FAIL)")
    ap.add_argument("--bench", action="store_true", help="time the sampler")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--n", type=int, default=255)
    ap.add_argument("--model", default=None)
    ap.add_argument("--digest", metavar="GGUF", help="print the engine digest of a GGUF")
    a = ap.parse_args()
    if a.digest:
        print(engine_digest(a.digest))
        sys.exit(0)
    mp = a.model or default_model()
    if a.bench:
        sys.exit(_bench(mp, a.batch, a.n))
    sys.exit(_check(mp))
