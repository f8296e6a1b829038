#!/usr/bin/python3
# Turns stories260K into a small D2F-style diffusion LM (spec ../shared/docs/methods/lopa.md §6, measured
# recipe TRAINING.md §4) and exports the GGUF the lopa decoder plugin runs.
"""D2F training (block-causal masked diffusion with logit shift; optionally distilled from a bidirectional teacher) and export.

    train_d2f.py --out PATH [--smoke] [--model GGUF] [--data-model GGUF] [--minutes 50] [--teacher-minutes 0]
                 [--block-len 8] [--teacher-out PATH]
    train_d2f.py --eval PATH [--full-attention]               # held-out metrics of an exported model

Model: the AR target with one extra token, [MASK] (vocab 513, MASK embedding = the mean row).
Teacher (§6.1 (a), Dream-style): from the AR weights, bidirectional attention over the whole row, logit
shift, the masked-diffusion loss below on the same noise. Student (§6.1 (b), D2F): starts from the
teacher's weights, block-causal attention, loss KL(teacher || student) at the masked positions (the
teacher sees the same noisy row with full attention, so it knows the right context the student must
learn to do without). --teacher-minutes 0 (the default) gives the cheaper self_align=false variant: the
student starts from the AR weights and learns CE to the true tokens (what TRAINING.md §4 measured). The
teacher did not pay within this machine's budget: 12 + 18 minutes gave a student with lower TPF and
higher output loss than 15 minutes of self_align=false (tools/train/README.md). Nor did growing the
model first (specd-inflate to dim 128, then --model GROWN --data-model stories260K): at 50 minutes it
made half the steps and decoded worse than the plain model.
Layout per batch: a clean prompt of P0 ~ U[8, 64] tokens, then blocks of B (8) tokens. Attention: prompt
rows causal over the prompt (the lopa decoder prefills prompts causally, like every specd decoder);
a row in block j sees the whole prompt, blocks < j and all of block j (block-causal, §1.4 mode 2).
Noise (§6.1): per row monotone per-block mask ratios p_1 = 0.2 + u_0/2, p_j = p_1 + Σ_{m<j} u_m (0.7 - p_1)/(N-1);
each token of block j masked with probability p_j. Logit shift (§1.3): row i-1 predicts token i.
Loss: mean over masked positions of CE(shifted logits, true token) / p_block (teacher, and the student
without one) or KL(teacher || student) / p_block. AdamW (0.9, 0.95), wd 0, lr 1e-3 cosine over each
wall-clock budget (5% warm-up), clip 1.0, batch 32 x 256, 50 minutes on 2M tokens (3/4 greedy continuations).
Reported on held-out rows: masked CE and top-1 (with the same noise), and the share of first masks after
clean text whose argmax equals the true token (what makes D2F's first mask confident).
Export metadata: specd.mask_token_id, specd.dllm.logit_shift = 1, specd.dllm.block_len,
specd.dllm.attention = "block-causal", specd.dllm.train_steps, specd.dllm.teacher_steps (0: none).
The teacher file (--teacher-out) has specd.dllm.attention = "full".
"""

import copy
import functools
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import specd_torch as st  # noqa: E402


@functools.lru_cache(maxsize=None)
def d2f_mask(S, P0, B):
    """bool [S, S] (True = may attend): causal prompt [0, P0), block-causal blocks of B after it. Cached:
    read-only."""
    q = torch.arange(S)[:, None]
    k = torch.arange(S)[None, :]
    prompt_q = q < P0
    causal = k <= q
    blk_q = (q - P0).clamp(min=0) // B
    blk_k = (k - P0).clamp(min=0) // B
    gen = (k < P0) | (blk_k <= blk_q)
    return torch.where(prompt_q, causal & (k < P0), gen)


@functools.lru_cache(maxsize=None)
def full_mask(S):
    """bool [S, S]: every row sees every row (the bidirectional teacher). Cached: read-only."""
    return torch.ones(S, S, dtype=torch.bool)


def noise(x, P0, B, mask_id, rng):
    """Noisy copy of x [b, S], the bool mask of noised positions and the per-position ratio p."""
    b, S = x.shape
    N = max(1, -(-(S - P0) // B))
    u0 = rng.uniform(size=(b, 1))
    p1 = 0.2 + u0 / 2
    u = rng.uniform(size=(b, N - 1)) if N > 1 else np.zeros((b, 0))
    steps = np.cumsum(u * (0.7 - p1) / max(1, N - 1), axis=1)
    p_blk = np.concatenate([p1, p1 + steps], 1)                       # [b, N], non-decreasing
    p_pos = np.zeros((b, S))
    p_pos[:, P0:] = np.repeat(p_blk, B, axis=1)[:, :S - P0]
    m = rng.uniform(size=(b, S)) < p_pos
    m[:, :P0] = False
    m = torch.from_numpy(m)
    noisy = x.clone()
    noisy[m] = mask_id
    return noisy, m, torch.from_numpy(p_pos).float()


def masked_loss(model, x, P0, B, rng, attn=None, teacher=None):
    """Loss on one noised batch: CE to the true tokens, or with teacher KL(teacher || model) where the
    teacher sees the same noisy rows with full attention. Also counts for the metrics."""
    noisy, m, p = noise(x, P0, B, model.mask_id, rng)
    S = x.shape[1]
    pos = torch.arange(S)
    logits, _ = model(noisy, pos, attn if attn is not None else d2f_mask(S, P0, B))
    sh = logits[:, :-1]                            # row i-1 predicts token i
    tgt, mm, pp = x[:, 1:], m[:, 1:], p[:, 1:]
    V = sh.shape[-1]
    ce = F.cross_entropy(sh.reshape(-1, V), tgt.reshape(-1), reduction="none").view(tgt.shape)
    per = ce
    if teacher is not None:
        with torch.no_grad():
            t_logp = F.log_softmax(teacher(noisy, pos, full_mask(S))[0][:, :-1], -1)
        per = (t_logp.exp() * (t_logp - F.log_softmax(sh, -1))).sum(-1)
    n = mm.sum().clamp(min=1)
    loss = (per / pp.clamp(min=1e-3) * mm).sum() / n
    with torch.no_grad():
        arg = sh[..., :model.mask_id].argmax(-1)
        hit = ((arg == tgt) & mm).sum().item()
        first = mm & ~torch.cat([torch.zeros_like(mm[:, :1]), mm[:, :-1]], 1)   # a mask right after a clean token
        first[:, :P0] = False
        hit_first = ((arg == tgt) & first).sum().item()
    return loss, {"ce": (ce * mm).sum().item(), "n": n.item(), "top1": hit, "first_n": first.sum().item(),
                  "first_top1": hit_first}


@torch.no_grad()
def evaluate(model, va, B, batch=32, seed=7, full=False):
    model.eval()
    rng = np.random.RandomState(seed)
    tot = {"ce": 0.0, "n": 0.0, "top1": 0.0, "first_n": 0.0, "first_top1": 0.0}
    for i in range(0, va.shape[0], batch):
        x = torch.from_numpy(va[i:i + batch].astype(np.int64))
        _, s = masked_loss(model, x, int(rng.randint(8, 65)), B, rng, full_mask(x.shape[1]) if full else None)
        for k in tot:
            tot[k] += s[k]
    model.train()
    return {"masked_ce": tot["ce"] / max(tot["n"], 1), "masked_top1": tot["top1"] / max(tot["n"], 1),
            "first_mask_top1": tot["first_top1"] / max(tot["first_n"], 1)}


def fmt(e):
    return "masked CE %.3f, masked top-1 %.1f%%, first-mask top-1 %.1f%%" % (
        e["masked_ce"], 100 * e["masked_top1"], 100 * e["first_mask_top1"])


def train_phase(model, tr, va, a, B, name, minutes, full=False, teacher=None):
    """Train `model` for `minutes` on the D2F noise: full attention (the teacher) or block-causal,
    CE or KL to `teacher`. Returns the step count and the held-out metrics after training."""
    S = tr.shape[1]

    def step_loss(x, rng):
        P0 = int(rng.randint(8, 65))  # a random clean prompt length per batch
        loss, s = masked_loss(model, x, P0, B, rng, full_mask(S) if full else None, teacher)
        return loss, "loss %.3f, masked CE %.3f, top-1 %.1f%%" % (loss.item(), s["ce"] / s["n"], 100 * s["top1"] / s["n"])

    step, trained = st.train_for(model, tr, a.batch, a.lr, minutes, a.seed, step_loss, name,
                                 lambda: fmt(evaluate(model, va, B, full=full)), a.eval_every)
    e = evaluate(model, va, B, full=full)
    print("%s: final after %d steps (%.1f min): %s" % (name, step, trained / 60, fmt(e)), file=sys.stderr, flush=True)
    return step, e


def dllm_kv(B, attention, steps, **extra):
    """The specd.dllm.* metadata of an exported model."""
    kv = {"specd.dllm.logit_shift": 1, "specd.dllm.block_len": B, "specd.dllm.attention": attention,
          "specd.dllm.train_steps": steps}
    kv.update({"specd.dllm." + k: v for k, v in extra.items()})
    return kv


def main():
    ap = st.adaptation_parser(__doc__, "D2F", 50.0, 0.75, 1e-3, 32, train_tokens=2_000_000)
    ap.add_argument("--teacher-minutes", type=float, default=0.0,
                    help="bidirectional teacher's budget before the student (default 0: no teacher, self_align=false)")
    ap.add_argument("--teacher-out", help="also write the teacher GGUF here")
    ap.add_argument("--full-attention", action="store_true", help="with --eval: evaluate a teacher")
    a = st.adaptation_args(ap)
    mp, n_train, n_val = a.model, a.train_tokens, a.val_tokens
    B = a.block_len
    if a.eval:
        va = data.get_split("val", n_val, a.greedy_frac, model_path=a.data_model)
        m = st.Llama.from_gguf(a.eval)
        print(fmt(evaluate(m, va, B, full=a.full_attention)))
        return
    if not a.out:
        ap.error("--out is required")
    tr, va = data.train_val(n_train, n_val, a.greedy_frac, a.data_model, "d2f")
    va_eval = va[:64] if a.smoke else va
    model = st.Llama.from_gguf(mp)
    mask_id = model.add_mask_token()
    model.train()
    e0 = evaluate(model, va_eval, B)
    print("d2f: before training: " + fmt(e0), file=sys.stderr, flush=True)
    teacher, t_steps = None, 0
    if a.teacher_minutes > 0:
        t_steps, _ = train_phase(model, tr, va_eval, a, B, "d2f-teacher", a.teacher_minutes, full=True)
        if a.teacher_out:
            st.save_gguf(model, mp, a.teacher_out, dllm_kv(B, "full", t_steps))
        teacher = copy.deepcopy(model)  # the student starts from the teacher's weights
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    step, e = train_phase(model, tr, va_eval, a, B, "d2f", a.minutes, teacher=teacher)
    e.update({"steps": step, "teacher_steps": t_steps, "block_len": B, "mask_id": mask_id, "before": e0,
              "self_align": teacher is None})
    st.save_gguf(model, mp, a.out, dllm_kv(B, "block-causal", step, teacher_steps=t_steps))
    print("d2f: wrote %s" % a.out, file=sys.stderr, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(e, f, indent=1)


if __name__ == "__main__":
    main()
