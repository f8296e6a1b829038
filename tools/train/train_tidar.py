#!/usr/bin/python3
# Adapts stories260K to TiDAR (spec ../shared/docs/methods/tidar.md §6, measured recipe TRAINING.md §3) and
# exports the GGUF that the tidar decoder plugin (and `ar`, in pure causal mode) runs.
"""TiDAR adaptation (dual-mode backbone: AR rows + one-step block diffusion rows) and export.

    train_tidar.py --out PATH [--smoke] [--model GGUF] [--minutes 45] [--block-len 5] [--alpha 1] [--init GGUF]
    train_tidar.py --eval PATH                                # held-out metrics of an exported model

Model: the target with one extra token, [MASK] (vocab 513, MASK embedding = the mean row, tied head).
Layout (§6.1, §6.2): a clean row x[0..S) followed by S MASK tokens, positions [0..S) twice. Clean rows
attend causally among clean rows; the mask at S+t sees the clean tokens before its block
(t0 = floor(t / B)·B) and every mask of its own block (bidirectional), nothing else.
Loss (§6.3): clean row t predicts x[t+1] (AR), mask row t predicts x[t] (diffusion, t = 0 dropped);
L = (α·AR + Diff) / (1 + α). AdamW (0.9, 0.95), wd 0, lr 2e-4 -> 2e-5 cosine over the wall-clock budget,
5% warmup, clip 1.0, batch 16 x (2 x 256); defaults: block 5, 45 minutes, 2M tokens (75% greedy).

Reported on held-out rows: AR loss and top-1 of the adapted model vs the original; per in-block offset m
the diffusion top-1 agreement with the AR greedy argmax at the same position (what greedy verification
with w = 1 compares) and with the data token; and the offline TPF estimate of §9,
E[j] = 1 + Σ_{m=1}^{k-1} P(drafts 1..m all match), for k = 4 and k = block length.
Export metadata: specd.mask_token_id, specd.tidar.block_len, specd.tidar.w (default trust weight, 1 = AR),
specd.tidar.alpha, specd.tidar.train_steps.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import specd_torch as st  # noqa: E402
import specd_gguf  # noqa: E402  (tools/py, put on the path by specd_torch)


def tidar_mask(S, B):
    """bool [2S, 2S] (True = may attend) of §6.2 for clean length S and block length B."""
    q = torch.arange(2 * S)
    kv = torch.arange(2 * S)
    qc, kc = (q < S)[:, None], (kv < S)[None, :]
    causal = kv[None, :] <= q[:, None]
    t = (q - S).clamp(min=0)
    b0 = (t // B * B)[:, None]
    u = (kv - S).clamp(min=0)[None, :]
    mask_clean = kv[None, :] < b0
    own_block = (u >= b0) & (u < b0 + B)
    return (qc & kc & causal) | (~qc & kc & mask_clean) | (~qc & ~kc & own_block)


def doubled(model, x, B, attn):
    """Logits of the AR half and of the diffusion half for clean rows x [b, S]."""
    b, S = x.shape
    toks = torch.cat([x, torch.full_like(x, model.mask_id)], 1)
    pos = torch.cat([torch.arange(S), torch.arange(S)])
    logits, _ = model(toks, pos, attn)
    return logits[:, :S], logits[:, S:]


def losses(model, x, B, attn):
    ar, df = doubled(model, x, B, attn)
    V = ar.shape[-1]
    l_ar = F.cross_entropy(ar[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))
    l_df = F.cross_entropy(df[:, 1:].reshape(-1, V), x[:, 1:].reshape(-1))
    return l_ar, l_df


@torch.no_grad()
def evaluate(model, orig, va, B, ks, batch=16):
    """Held-out metrics (see the module doc)."""
    model.eval()
    S = va.shape[1]
    attn = tidar_mask(S, B)
    n = 0
    sums = {"ar": 0.0, "diff": 0.0, "orig_ar": 0.0, "ar_top1": 0.0, "orig_top1": 0.0}
    agree_ar = np.zeros(B)
    agree_x = np.zeros(B)
    count = np.zeros(B)
    est = {k: [] for k in ks}
    for i in range(0, va.shape[0], batch):
        x = torch.from_numpy(va[i:i + batch].astype(np.int64))
        ar, df = doubled(model, x, B, attn)
        V = ar.shape[-1]
        tok = x.shape[0] * (S - 1)
        sums["ar"] += F.cross_entropy(ar[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1), reduction="sum").item()
        sums["diff"] += F.cross_entropy(df[:, 1:].reshape(-1, V), x[:, 1:].reshape(-1), reduction="sum").item()
        ol, _ = orig(x)
        sums["orig_ar"] += F.cross_entropy(ol[:, :-1].reshape(-1, ol.shape[-1]), x[:, 1:].reshape(-1),
                                           reduction="sum").item()
        ar_arg = ar[..., :model.mask_id].argmax(-1)               # AR greedy argmax predicting t+1
        sums["ar_top1"] += (ar_arg[:, :-1] == x[:, 1:]).float().sum().item()
        sums["orig_top1"] += (ol.argmax(-1)[:, :-1] == x[:, 1:]).float().sum().item()
        df_arg = df[..., :model.mask_id].argmax(-1)               # diffusion argmax for position t
        # agreement per in-block offset: position t (t >= 1) vs AR argmax of row t-1 and vs x[t]
        match = (df_arg[:, 1:] == ar_arg[:, :-1])                  # [b, S-1], position t = 1..S-1
        hit = (df_arg[:, 1:] == x[:, 1:])
        off = (torch.arange(1, S) % B).numpy()
        for m in range(B):
            sel = torch.from_numpy(off == m)
            agree_ar[m] += match[:, sel].float().sum().item()
            agree_x[m] += hit[:, sel].float().sum().item()
            count[m] += match[:, sel].numel()
        # §9 estimator per block: drafts 1..k-1 of a block starting at b0 (>= 1), vs the AR argmax
        mt = torch.cat([torch.zeros(x.shape[0], 1, dtype=torch.bool), match], 1)   # [b, S] by position
        for k in ks:
            for b0 in range(B, S - B + 1, B):
                run = torch.ones(x.shape[0], dtype=torch.bool)
                j = torch.ones(x.shape[0])
                for m in range(1, min(k, B)):
                    run = run & mt[:, b0 + m]
                    j += run.float()
                est[k].append(j.mean().item())
        n += tok
    model.train()
    out = {key: v / n for key, v in sums.items()}
    out["agree_ar_by_offset"] = (agree_ar / np.maximum(count, 1)).round(4).tolist()
    out["agree_x_by_offset"] = (agree_x / np.maximum(count, 1)).round(4).tolist()
    out["tpf_estimate"] = {str(k): round(float(np.mean(v)), 4) for k, v in est.items()}
    return out


def stories_rows(n_val, greedy_frac, model_path):
    """The sampled-story rows of the val split (its last part): AR loss there is comparable to TRAINING.md's."""
    n_g = int(round(n_val * greedy_frac))
    return data.get_tokens("stories", n_val - n_g, data.SPLIT_SEEDS["val"] + 1, model_path=model_path)


def with_stories(model, orig, va, vs, B, ks):
    e = evaluate(model, orig, va, B, ks)
    s = evaluate(model, orig, vs, B, ks)
    e["stories"] = {key: s[key] for key in ("ar", "orig_ar", "ar_top1", "orig_top1", "diff")}
    return e


def fmt(e):
    s = e.get("stories")
    extra = "" if s is None else (
        "; on sampled stories only: AR loss %.4f (orig %.4f, %+.1f%%), top-1 %.1f%% (orig %.1f%%)"
        % (s["ar"], s["orig_ar"], 100 * (s["ar"] / s["orig_ar"] - 1), 100 * s["ar_top1"], 100 * s["orig_top1"]))
    return fmt_main(e) + extra


def fmt_main(e):
    return ("val AR loss %.4f (orig %.4f, %+.1f%%), diff loss %.3f, AR top-1 %.1f%% (orig %.1f%%), "
            "diff agree-with-AR by offset %s, TPF est %s"
            % (e["ar"], e["orig_ar"], 100 * (e["ar"] / e["orig_ar"] - 1), e["diff"], 100 * e["ar_top1"],
               100 * e["orig_top1"], "/".join("%.0f" % (100 * a) for a in e["agree_ar_by_offset"]),
               e["tpf_estimate"]))


def main():
    # lr 5e-4 regressed AR more; block 5 for 45 minutes on 2M tokens beat blocks 4 and 8 (README).
    ap = st.adaptation_parser(__doc__, "TiDAR", 45.0, 1.0, 2e-4, 16, block_len=5, train_tokens=2_000_000)
    ap.add_argument("--alpha", type=float, default=1.0, help="AR loss weight α (§6.3)")
    ap.add_argument("--init", metavar="GGUF", help="start from this TiDAR model of the same --model (continue a run, "
                    "e.g. with a longer --block-len) instead of the plain model")
    a = st.adaptation_args(ap)
    mp, n_train, n_val = a.model, a.train_tokens, a.val_tokens
    B = a.block_len
    ks = sorted({4, B}) if B >= 4 else [B]
    orig = st.Llama.from_gguf(mp)
    orig.eval()
    for p in orig.parameters():
        p.requires_grad_(False)

    if a.eval:
        va = data.get_split("val", n_val, a.greedy_frac, model_path=a.data_model)
        m = st.Llama.from_gguf(a.eval)
        B = int(specd_gguf.GgufFile(a.eval).metadata.get("specd.tidar.block_len", B))
        e = with_stories(m, orig, va, stories_rows(n_val, a.greedy_frac, a.data_model), B, sorted({4, B}))
        print(fmt(e))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(e, f, indent=1)
        return
    if not a.out:
        ap.error("--out is required")

    tr, va = data.train_val(n_train, n_val, a.greedy_frac, a.data_model, "tidar")

    model = st.Llama.from_gguf(a.init or mp)
    prior_steps = 0
    if a.init:
        prior_steps = int(specd_gguf.GgufFile(a.init).metadata.get("specd.tidar.train_steps", 0))
    mask_id = model.add_mask_token()  # the --init model's own MASK when it has one
    model.train()
    S = tr.shape[1]
    attn = tidar_mask(S, B)

    def step_loss(x, rng):
        l_ar, l_df = losses(model, x, B, attn)
        return (a.alpha * l_ar + l_df) / (1 + a.alpha), "AR %.4f, diff %.4f" % (l_ar.item(), l_df.item())

    step, trained = st.train_for(model, tr, a.batch, a.lr, a.minutes, a.seed, step_loss, "tidar",
                                 lambda: fmt(evaluate(model, orig, va, B, ks)), a.eval_every)
    e = with_stories(model, orig, va, stories_rows(n_val, a.greedy_frac, a.data_model), B, ks)
    e.update({"steps": step, "minutes": trained / 60, "clean_tokens": step * a.batch * S, "block_len": B,
              "alpha": a.alpha, "mask_id": mask_id})
    print("tidar: final after %d steps (%.1f min): %s" % (step, trained / 60, fmt(e)), file=sys.stderr, flush=True)
    st.save_gguf(model, mp, a.out, {
        "specd.tidar.block_len": B,
        "specd.tidar.w": 1.0,
        "specd.tidar.alpha": float(a.alpha),
        "specd.tidar.train_steps": prior_steps + step,
    })
    print("tidar: wrote %s" % a.out, file=sys.stderr, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(e, f, indent=1)


if __name__ == "__main__":
    main()
