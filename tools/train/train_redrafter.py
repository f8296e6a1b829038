#!/usr/bin/python3
# Trains the ReDrafter drafter (spec ../shared/docs/methods/redrafter.md §2, §7.1) on stories260K and exports
# it as the specd-redrafter GGUF that the ReDrafter decoder plugin loads.
"""ReDrafter drafter training and export.

    train_redrafter.py --out PATH [--smoke] [--model GGUF] [--minutes 12] [--kd-weight 0]
    train_redrafter.py --out PATH --random [--seed S]      # same format, random weights (for tests)
    train_redrafter.py --eval PATH                           # held-out metrics + simulated TPF of a drafter GGUF
    train_redrafter.py --beams PATH --ids 1,403 --width 4 --length 5   # reference beams (for C++ parity)

Drafter (H = target dim, E = 2H, D = 2 residual SiLU blocks, own V x E head, the target's frozen token
embeddings):  s_0 = 0;  s_t = SiLU(rnn_w e(y_{t-1}) + rnn_u s_{t-1} + b);  a = [h ; s_t];
a <- a + SiLU(block_j a + c_j);  logits = head a.   h = the target's final-norm hidden state.

Training (§7.1, K = 5 recurrent steps, teacher forcing, every position in parallel) on frozen hidden
states cached once per data set. Step k at position t: inputs x_{t+1..t+k}, h = h_t, predicts x_{t+k+1}.
Loss per step = kd * softCE(softmax(target logits at t+k), drafter) + (1 - kd) * CE(data token x_{t+k+1}),
summed over k. Reported on held-out rows: per-k top-1 agreement with the target's greedy argmax (what
greedy verification accepts), with the data token, loss; and a simulated greedy TPF with the beam search
of §3 (top-50 truncation, score trick) at W = 1 and W = 4, L = 5.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import specd_torch as st  # noqa: E402
import data  # noqa: E402

specd_gguf = st.specd_gguf
K_STEPS = 5


class Drafter(nn.Module):
    def __init__(self, vocab, input_dim, state_dim, exit_dim, n_blocks):
        super().__init__()
        self.vocab, self.input_dim, self.state_dim, self.exit_dim, self.n_blocks = \
            vocab, input_dim, state_dim, exit_dim, n_blocks
        self.rnn_w = nn.Linear(input_dim, state_dim, bias=False)
        self.rnn_u = nn.Linear(state_dim, state_dim, bias=True)
        self.input_proj = nn.Linear(input_dim + state_dim, exit_dim) if exit_dim != input_dim + state_dim else None
        self.blocks = nn.ModuleList([nn.Linear(exit_dim, exit_dim) for _ in range(n_blocks)])
        self.head = nn.Linear(exit_dim, vocab, bias=False)

    def step(self, s, e):
        """s [..., H], e = e(y_{t-1}) [..., input_dim] -> next state."""
        return F.silu(self.rnn_w(e) + self.rnn_u(s))

    def logits(self, h, s):
        a = torch.cat([h, s], -1)
        if self.input_proj is not None:
            a = self.input_proj(a)
        for blk in self.blocks:
            a = a + F.silu(blk(a))
        return self.head(a)


# ----------------------------------------------------------------------------------------------------
# Export / import (format read by the C plugin; see tools/train/README.md)
# ----------------------------------------------------------------------------------------------------

def export_gguf(d, out_path, target_path, top1_k1, k_trained=K_STEPS):
    w = specd_gguf.GgufWriter()
    I32 = specd_gguf.GGUF_INT32
    w.add("general.architecture", "specd-redrafter", specd_gguf.GGUF_STRING)
    w.add("specd.redrafter.vocab", d.vocab, I32)
    w.add("specd.redrafter.input_dim", d.input_dim, I32)
    w.add("specd.redrafter.state_dim", d.state_dim, I32)
    w.add("specd.redrafter.exit_dim", d.exit_dim, I32)
    w.add("specd.redrafter.n_blocks", d.n_blocks, I32)
    w.add("specd.redrafter.k_trained", int(k_trained), I32)
    w.add("specd.redrafter.target_digest", st.engine_digest(target_path), specd_gguf.GGUF_STRING)
    w.add("specd.redrafter.top1_greedy_k1", float(top1_k1), specd_gguf.GGUF_FLOAT32)
    t = lambda x: x.detach().cpu().float().numpy()  # noqa: E731
    w.add_tensor("redrafter.rnn_w.weight", t(d.rnn_w.weight))
    w.add_tensor("redrafter.rnn_u.weight", t(d.rnn_u.weight))
    w.add_tensor("redrafter.rnn_u.bias", t(d.rnn_u.bias))
    if d.input_proj is not None:
        w.add_tensor("redrafter.input_proj.weight", t(d.input_proj.weight))
        w.add_tensor("redrafter.input_proj.bias", t(d.input_proj.bias))
    for j, blk in enumerate(d.blocks):
        w.add_tensor("redrafter.block.%d.weight" % j, t(blk.weight))
        w.add_tensor("redrafter.block.%d.bias" % j, t(blk.bias))
    w.add_tensor("redrafter.head.weight", t(d.head.weight))
    st.write_atomic(w, out_path)


def load_gguf(path):
    f = specd_gguf.GgufFile(path)
    g = lambda k: int(f.metadata["specd.redrafter." + k])  # noqa: E731
    d = Drafter(g("vocab"), g("input_dim"), g("state_dim"), g("exit_dim"), g("n_blocks"))
    t = lambda n: torch.from_numpy(np.array(f.tensor(n)))  # noqa: E731
    with torch.no_grad():
        d.rnn_w.weight.copy_(t("redrafter.rnn_w.weight"))
        d.rnn_u.weight.copy_(t("redrafter.rnn_u.weight"))
        d.rnn_u.bias.copy_(t("redrafter.rnn_u.bias"))
        if d.input_proj is not None:
            d.input_proj.weight.copy_(t("redrafter.input_proj.weight"))
            d.input_proj.bias.copy_(t("redrafter.input_proj.bias"))
        for j, blk in enumerate(d.blocks):
            blk.weight.copy_(t("redrafter.block.%d.weight" % j))
            blk.bias.copy_(t("redrafter.block.%d.bias" % j))
        d.head.weight.copy_(t("redrafter.head.weight"))
    return d, f.metadata


# ----------------------------------------------------------------------------------------------------
# Data: token rows + cached final-norm hidden states of the target
# ----------------------------------------------------------------------------------------------------

@torch.no_grad()
def hidden_states(model, rows, tag, model_path, verbose=True):
    """[N, T, dim] float32 final-norm hidden states of rows [N, T]; cached in $SPECD_CACHE/train."""
    path = os.path.join(st.cache_dir("train"), "hidden-%s-%s-r%d-L%d.npy"
                        % (tag, st.engine_digest(model_path), rows.shape[0], rows.shape[1]))
    if os.path.exists(path):
        return np.load(path)
    with st.FileLock(path):
        if os.path.exists(path):
            return np.load(path)
        t0 = time.time()
        out = np.empty(rows.shape + (model.cfg.dim,), dtype=np.float32)
        for b in range(0, rows.shape[0], 32):
            _, h = model(torch.from_numpy(rows[b:b + 32].astype(np.int64)))
            out[b:b + 32] = h.numpy()
        st.atomic_save_npy(path, out)
        if verbose:
            print("hidden states %s: %d rows in %.0f s" % (tag, rows.shape[0], time.time() - t0), file=sys.stderr)
    return out


def load_sets(model, model_path, n_train, n_val, greedy_frac):
    tr = data.get_split("train", n_train, greedy_frac, model_path=model_path)
    va = data.get_split("val", n_val, greedy_frac, model_path=model_path)
    htr = hidden_states(model, tr, "train-g%g" % greedy_frac, model_path)
    hva = hidden_states(model, va, "val-g%g" % greedy_frac, model_path)
    return tr, htr, va, hva


# ----------------------------------------------------------------------------------------------------
# Loss and metrics
# ----------------------------------------------------------------------------------------------------

def k_step_outputs(d, embd, head_w, toks, h, K):
    """toks [B,T] int64, h [B,T,dim]. Yields (k, drafter logits [B,P,V], target probabilities [B,P,V] (None when
    head_w is None), data labels [B,P]) for k = 1..K over positions t = 0..P-1, P = T-K-1."""
    B, T = toks.shape
    P = T - K - 1
    e = F.embedding(toks, embd)                       # [B,T,dim]
    hp = h[:, :P]
    # target next-token probabilities at positions 1..T-1 (softmax once per batch)
    tgt = torch.softmax(F.linear(h[:, 1:], head_w), -1) if head_w is not None else None
    s = torch.zeros(B, P, d.state_dim)
    for k in range(1, K + 1):
        s = d.step(s, e[:, k:k + P])                  # input x_{t+k}
        yield k, d.logits(hp, s), (tgt[:, k - 1:k - 1 + P] if tgt is not None else None), toks[:, k + 1:k + 1 + P]


def loss_terms(dl, tp, lab, kd):
    """dl drafter logits, tp target probabilities, lab data labels -> (loss, hard CE, soft CE)."""
    logq = F.log_softmax(dl, -1)
    hard = F.nll_loss(logq.flatten(0, 1), lab.flatten())
    soft = -(tp * logq).sum(-1).mean() if kd > 0 else torch.zeros(())
    return kd * soft + (1 - kd) * hard, hard, soft


@torch.no_grad()
def evaluate(d, embd, head_w, toks, h, K, kd, batch=32):
    d.eval()
    n = toks.shape[0]
    agg = {k: np.zeros(5) for k in range(1, K + 1)}  # greedy-agree, data-agree, loss, hard, count
    for b in range(0, n, batch):
        tt = torch.from_numpy(toks[b:b + batch].astype(np.int64))
        hh = torch.from_numpy(h[b:b + batch])
        for k, dl, tl, lab in k_step_outputs(d, embd, head_w, tt, hh, K):
            loss, hard, _ = loss_terms(dl, tl, lab, kd)
            pred = dl.argmax(-1)
            m = lab.numel()
            agg[k] += [float((pred == tl.argmax(-1)).sum()), float((pred == lab).sum()),
                       float(loss) * m, float(hard) * m, m]
    d.train()
    res = {}
    for k, a in agg.items():
        res[k] = {"top1_greedy": a[0] / a[4], "top1_data": a[1] / a[4], "loss": a[2] / a[4], "ce_data": a[3] / a[4]}
    return res


def fmt_eval(res):
    ks = sorted(res)
    return ("top1 vs greedy %s | vs data %s | loss sum %.3f (per k %s) | CE(data) sum %.3f"
            % (" / ".join("%.1f" % (100 * res[k]["top1_greedy"]) for k in ks),
               " / ".join("%.1f" % (100 * res[k]["top1_data"]) for k in ks),
               sum(res[k]["loss"] for k in ks), " ".join("%.2f" % res[k]["loss"] for k in ks),
               sum(res[k]["ce_data"] for k in ks)))


# ----------------------------------------------------------------------------------------------------
# Beam search (§3) and simulated greedy TPF
# ----------------------------------------------------------------------------------------------------

@torch.no_grad()
def beam_search(d, embd, h, g0, W, C, topk=50):
    """h [dim], g0 int -> beams [W, 1+C] (column 0 = g0). Top-50 truncation, score trick."""
    V = d.vocab
    beams = torch.full((W, 1), g0, dtype=torch.long)
    s = torch.zeros(W, d.state_dim)
    score = torch.full((W,), -50000.0)
    score[0] = 0.0
    hw = h.expand(W, -1)
    for _ in range(C):
        s = d.step(s, embd[beams[:, -1]])
        lg = d.logits(hw, s)
        lg = lg - lg.max(-1, keepdim=True).values
        if topk < V:
            kth = lg.topk(topk, -1).values[:, -1:]
            lg = torch.where(lg >= kth, lg, torch.full_like(lg, -50000.0))
        logq = F.log_softmax(lg, -1)
        cand = (score[:, None] + logq).flatten()
        vals, idx = cand.topk(W)
        parent, tok = idx // V, idx % V
        beams = torch.cat([beams[parent], tok[:, None]], 1)
        s = s[parent]
        score = vals
    return beams


@torch.no_grad()
def simulate_tpf(d, model, prompts, W, L, n_new=128):
    """Greedy speculative decoding simulated exactly: the target's greedy continuation is computed once per
    prompt; every step drafts from (h of the last committed token, g0 = next greedy token), accepts the
    longest matching beam prefix, commits n + 1 tokens. Returns (TPF, histogram of n)."""
    embd = model.tok_embd.detach()
    C = L - 1
    steps = emitted = 0
    hist = np.zeros(C + 1, dtype=np.int64)
    for p in prompts:
        P = len(p)
        seq = st.sample(model, prompts=torch.tensor([p]), n_tokens=n_new + C + 1, temperature=0.0, batch=1)[0]
        _, hid = model(seq[None])
        hid = hid[0]
        pos = P - 1                      # last committed token; seq[pos+1] is g0
        done = 0
        while done < n_new:
            beams = beam_search(d, embd, hid[pos], int(seq[pos + 1]), W, C)
            truth = seq[pos + 2:pos + 2 + C]
            match = (beams[:, 1:] == truth[None]).long().cumprod(1).sum(1)
            n = int(match.max())
            hist[n] += 1
            steps += 1
            done += n + 1
            pos += n + 1
        emitted += done
    return emitted / steps, hist


# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------

def train(args, model, tr, htr, va, hva):
    torch.manual_seed(args.seed)
    dim = model.cfg.dim
    H = args.state_dim or dim
    d = Drafter(model.vocab, dim, H, 2 * H, args.blocks)
    embd = model.tok_embd.detach()
    head_w = model.head_weight().detach()
    opt = torch.optim.AdamW(d.parameters(), lr=args.lr, weight_decay=0.0)
    rng = np.random.RandomState(args.seed)
    budget = args.minutes * 60.0
    trained = 0.0
    step = 0
    perm, pi = rng.permutation(tr.shape[0]), 0
    next_eval = args.eval_every * 60.0
    va_small = slice(0, min(64, va.shape[0]))
    t_last = time.time()
    run_loss = None
    while trained < budget:
        if pi + args.batch > len(perm):
            perm, pi = rng.permutation(tr.shape[0]), 0
        idx = np.sort(perm[pi:pi + args.batch])
        pi += args.batch
        for gparam in opt.param_groups:
            gparam["lr"] = st.lr_at(trained / budget, args.lr, start=0.01)
        tt = torch.from_numpy(tr[idx].astype(np.int64))
        hh = torch.from_numpy(htr[idx])
        total = 0.0
        hw = head_w if args.kd_weight > 0 else None
        for k, dl, tl, lab in k_step_outputs(d, embd, hw, tt, hh, K_STEPS):
            loss, _, _ = loss_terms(dl, tl, lab, args.kd_weight)
            total = total + loss
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(d.parameters(), 1.0)
        opt.step()
        step += 1
        run_loss = float(total) if run_loss is None else 0.98 * run_loss + 0.02 * float(total)
        now = time.time()
        trained += now - t_last
        t_last = now
        if trained >= next_eval and trained < budget:
            res = evaluate(d, embd, head_w, va[va_small], hva[va_small], K_STEPS, args.kd_weight)
            print("[%5.1f min, step %d, %.2f it/s] train loss %.3f | val64 %s"
                  % (trained / 60, step, step / trained, run_loss, fmt_eval(res)), flush=True)
            next_eval += args.eval_every * 60.0
            t_last = time.time()
    print("trained %.1f min, %d steps (%.2f it/s, batch %d x %d positions x %d steps)"
          % (trained / 60, step, step / trained, args.batch, tr.shape[1] - K_STEPS - 1, K_STEPS), flush=True)
    return d, {"steps": step, "minutes": trained / 60}


def n_greedy_rows(n_tokens, greedy_frac, seq_len=256):
    """Rows of data.get_mix(n_tokens, ...) that are greedy-continuation rows (they come first)."""
    n_g = int(round(n_tokens * greedy_frac))
    return -(-n_g // seq_len) if n_g > 0 else 0


def report(d, model, va, hva, kd, n_prompts, tpf, n_greedy):
    """Held-out metrics on the whole mix, on its sampled-stories rows and on its greedy rows; then the
    simulated TPF. Returns (metrics on the stories rows, or the mix when it has none; dict for --json)."""
    embd = model.tok_embd.detach()
    hw = model.head_weight().detach()
    res = evaluate(d, embd, hw, va, hva, K_STEPS, kd)
    print("held-out, all %d rows:       %s" % (va.shape[0], fmt_eval(res)), flush=True)
    out = {"eval_all": {str(k): v for k, v in res.items()}}
    if 0 < n_greedy < va.shape[0]:
        rs = evaluate(d, embd, hw, va[n_greedy:], hva[n_greedy:], K_STEPS, kd)
        rg = evaluate(d, embd, hw, va[:n_greedy], hva[:n_greedy], K_STEPS, kd)
        print("held-out, %4d stories rows: %s" % (va.shape[0] - n_greedy, fmt_eval(rs)), flush=True)
        print("held-out, %4d greedy rows:  %s" % (n_greedy, fmt_eval(rg)), flush=True)
        out["eval_stories"] = {str(k): v for k, v in rs.items()}
        out["eval_greedy"] = {str(k): v for k, v in rg.items()}
        res = rs
    if tpf and n_prompts > 0:
        # Prompts: 32-token prefixes of held-out sampled stories rows (the tail of the val set).
        prompts = [list(map(int, r[:32])) for r in va[-n_prompts:]]
        for W in (1, 4):
            t0 = time.time()
            v, hist = simulate_tpf(d, model, prompts, W, 5)
            out["tpf_W%d_L5" % W] = v
            print("simulated greedy TPF W=%d L=5 over %d prompts: %.3f  (accepted n=0..4: %s)  [%.0f s]"
                  % (W, len(prompts), v, " ".join("%.1f%%" % (100 * x / hist.sum()) for x in hist),
                     time.time() - t0), flush=True)
    return res, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output drafter GGUF")
    ap.add_argument("--model", help="target GGUF (default stories260K)")
    ap.add_argument("--smoke", action="store_true", help="64k-token data + 45 s of training: the test set-up's quick drafter")
    ap.add_argument("--random", action="store_true", help="export random weights (seeded), no training")
    ap.add_argument("--eval", metavar="GGUF", help="evaluate an exported drafter and exit")
    ap.add_argument("--minutes", type=float, help="training wall-clock budget (default 12, smoke 0.75)")
    ap.add_argument("--train-tokens", type=int, help="default 1M (smoke 64k)")
    ap.add_argument("--val-tokens", type=int, help="default 64k (smoke 16k)")
    ap.add_argument("--greedy-frac", type=float, default=0.75, help="share of greedy-continuation rows")
    ap.add_argument("--kd-weight", type=float, default=0.0,
                    help="weight of soft-target KD (target softmax) vs hard CE on the data token (0: measured best)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=8, help="rows of 256 tokens per step")
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--state-dim", type=int, default=0, help="H (default: the target's dim)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=float, default=3.0, help="minutes between quick evals")
    ap.add_argument("--tpf-prompts", type=int, help="prompts for the simulated TPF (default 32, smoke 8; 0 = skip)")
    ap.add_argument("--json", help="write the final metrics here")
    ap.add_argument("--beams", metavar="GGUF", help="print the beams a drafter GGUF drafts after --ids, and exit")
    ap.add_argument("--ids", default="1", help="prompt ids for --beams (default: BOS)")
    ap.add_argument("--width", type=int, default=4, help="W for --beams")
    ap.add_argument("--length", type=int, default=5, help="L (g0 included) for --beams")
    a = ap.parse_args()
    st.env_setup(seed=a.seed)
    mp = a.model or st.default_model()
    model = st.Llama.from_gguf(mp)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    if a.minutes is None:
        a.minutes = 0.75 if a.smoke else 12.0
    n_train = a.train_tokens or (1 << 16 if a.smoke else 1 << 20)
    n_val = a.val_tokens or (1 << 14 if a.smoke else 1 << 16)
    n_prompts = a.tpf_prompts if a.tpf_prompts is not None else (8 if a.smoke else 32)

    if a.random:
        if not a.out:
            ap.error("--out is required")
        torch.manual_seed(a.seed)
        dim = model.cfg.dim
        H = a.state_dim or dim
        d = Drafter(model.vocab, dim, H, 2 * H, a.blocks)
        export_gguf(d, a.out, mp, 0.0)
        print("wrote random drafter %s (seed %d)" % (a.out, a.seed))
        return 0
    if a.beams:
        # Reference drafts for checking a C++ port: h and g0 come from the target's forward over --ids.
        d, _ = load_gguf(a.beams)
        ids = [int(x) for x in a.ids.split(",") if x.strip()]
        with torch.no_grad():
            logits, hid = model(torch.tensor([ids]))
            g0 = int(logits[0, -1].argmax())
            beams = beam_search(d, model.tok_embd.detach(), hid[0, -1], g0, a.width, a.length - 1)
            s1 = d.step(torch.zeros(d.state_dim), model.tok_embd[g0])
            lg1 = d.logits(hid[0, -1], s1)
        print("g0 %d" % g0)
        print("step-1 drafter logits[0:4] %s" % " ".join("%.6f" % float(x) for x in lg1[:4]))
        for row in beams.tolist():
            print(" ".join(str(x) for x in row))
        return 0
    if a.eval:
        d, meta = load_gguf(a.eval)
        va = data.get_split("val", n_val, a.greedy_frac, model_path=mp)
        hva = hidden_states(model, va, "val-g%g" % a.greedy_frac, mp)
        report(d, model, va, hva, a.kd_weight, n_prompts, True, n_greedy_rows(n_val, a.greedy_frac))
        return 0
    if not a.out:
        ap.error("--out is required")
    t0 = time.time()
    tr, htr, va, hva = load_sets(model, mp, n_train, n_val, a.greedy_frac)
    print("data: train %d x %d, val %d x %d (greedy share %.2f), ready in %.0f s"
          % (tr.shape + va.shape + (a.greedy_frac, time.time() - t0)), flush=True)
    d, info = train(a, model, tr, htr, va, hva)
    res, out = report(d, model, va, hva, a.kd_weight, n_prompts, n_prompts > 0, n_greedy_rows(n_val, a.greedy_frac))
    export_gguf(d, a.out, mp, res[1]["top1_greedy"])
    out.update(info)
    out.update({"kd_weight": a.kd_weight, "train_tokens": int(tr.size), "val_tokens": int(va.size),
                "total_s": time.time() - t0})
    print("wrote %s (%.0f s in all)" % (a.out, time.time() - t0))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
