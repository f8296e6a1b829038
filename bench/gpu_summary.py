#!/usr/bin/env python3
"""Reads the results.jsonl that scripts/gpu-check.sh wrote and prints summary.md: each figure the
issue sets a goal for, measured vs goal, and "not measured" (with why) for what was not.
usage: gpu_summary.py results.jsonl > summary.md"""
import json
import sys


def load(path):
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


def main():
    rows = load(sys.argv[1])
    info = next((r for r in rows if r.get("name") == "device_info"), {})
    gpu = bool(info.get("have_gpu"))
    steps = {r["step"]: r for r in rows if r.get("name") == "step"}
    big_label = next((r.get("label") for r in rows if r.get("name") == "big_model"), "1B BF16")

    def step_note(name):
        s = steps.get(name)
        if s is None:
            return "not run in --quick" if info.get("quick") else "step not run"
        if s.get("status") == "skipped":
            return "skipped: " + str(s.get("reason", ""))
        if s.get("status") != "ok":
            return f"step {name} {s.get('status')} (rc {s.get('rc')}, see logs/{name}.err)"
        return ""

    def pick(step, name, **kw):
        for r in rows:
            if r.get("step") == step and r.get("name") == name and all(r.get(k) == v for k, v in kw.items()):
                return r
        return None

    out = []
    w = out.append
    w("# specd GPU check")
    w("")
    if gpu:
        w(f"Device: **{info.get('gpu')}** (quick: {bool(info.get('quick'))}).")
    else:
        w("**NO GPU: a dry run on the CPU.** Every figure below comes from the CPU path and says nothing about")
        w("the GPU goals; the verdicts say 'not a GPU figure'.")
    w("")
    w(f"Build: `{info.get('build')}`; models: `{info.get('models')}`; python: `{info.get('python')}` (torch: {bool(info.get('torch'))}).")
    w("")

    verdict_rows = []

    def goal(what, measured, target, ok, note="", device=None):
        # device: the backend the figure's own line names (specd-bench prints it): a GPU verdict
        # needs a GPU there, not only in the machine.
        if measured is None:
            v = "not measured" + (f" ({note})" if note else "")
            m = "—"
        else:
            m = measured
            if not gpu:
                v = "not a GPU figure (dry run)"
            elif device is not None and not str(device).startswith("cuda"):
                v = f"not a GPU figure (ran on {device})"
            else:
                v = "met" if ok else "NOT met"
            if note:
                v += f"; {note}"
        verdict_rows.append((what, m, target, v))

    # Bandwidth and ar vs its limit on the big model.
    bw = pick("bandwidth", "copy_bandwidth")
    big_info = pick("info_big", "model_info")
    ar_big = pick("bench_big_decode", "decode_tok_s", decoder="ar")
    if bw and big_info and ar_big:
        limit = bw["median"] * 1e9 / big_info["bytes_per_token"]
        frac = ar_big["median"] / limit
        goal(f"ar decode on {big_label} vs bandwidth limit",
             f"{ar_big['median']:.1f} tok/s = {100 * frac:.0f} % of {limit:.0f} tok/s "
             f"({bw['median']:.0f} GB/s copy, {big_info['bytes_per_token'] / 1e6:.0f} MB/token)",
             "≥ 70 %", frac >= 0.70, device=ar_big.get("device"))
    else:
        why = step_note("bandwidth") or step_note("info_big") or step_note("bench_big_decode") or "missing figure"
        if ar_big:  # the speed without its limit: say so, judge nothing
            verdict_rows.append((f"ar decode on {big_label} vs bandwidth limit", f"{ar_big['median']:.1f} tok/s",
                                 "≥ 70 %", f"not measured (no limit: {why})"))
        else:
            goal(f"ar decode on {big_label} vs bandwidth limit", None, "≥ 70 %", False, why)

    # Verify curve.
    for depth, st in ((512, "bench_big_verify512"), (4096, "bench_big_verify4096")):
        for k, target in ((16, 1.1), (64, 1.3)):
            r = pick(st, "verify_ms", k=k, depth=depth)
            if r:
                goal(f"L({k})/L(1) at depth {depth}, {big_label}", f"{r['ratio_vs_k1']:.2f}", f"≤ {target}",
                     r["ratio_vs_k1"] <= target, device=r.get("device"))
            else:
                goal(f"L({k})/L(1) at depth {depth}, {big_label}", None, f"≤ {target}", False,
                     step_note(st) or "no figure")

    # Rows bit-identical at every m: the CUDA backend suite's batch-invariance cases.
    t = next((r for r in rows if r.get("name") == "test_suite" and r.get("suite") == "cuda_backend"), None)
    if t is None:
        goal("rows bit-identical at every m (test_cuda_backend)", None, "pass on a GPU", False, "suite not run")
    elif int(t.get("gpu_skips", 0)) > 0:
        goal("rows bit-identical at every m (test_cuda_backend)", None, "pass on a GPU", False,
             "the suite said skipped: no GPU")
    else:
        goal("rows bit-identical at every m (test_cuda_backend)", f"rc {t.get('rc')}: {t.get('summary')}",
             "pass on a GPU", t.get("rc") == 0)

    # Decoders vs ar.
    def decoder_goal(dec, step, model_label, target_fn, target_text):
        r = pick(step, "decode_tok_s", decoder=dec)
        what = f"{dec} vs ar on {model_label}"
        if not r:
            goal(what, None, target_text, False, step_note(step) or "no figure")
            return
        sp, tpf = r.get("speedup_vs_ar", 0.0), r.get("tokens_per_forward", 0.0)
        ident = r.get("identical_to_ar")
        m = f"{sp:.2f}× ar ({r['median']:.1f} tok/s), TPF {tpf:.2f}, identical to ar: {ident}"
        if "nll_per_token" in r:
            m += f", NLL {r['nll_per_token']:.3f}"
        goal(what, m, target_text, target_fn(sp, tpf), device=r.get("device"))

    for model_label, dstep, tstep, lstep in ((big_label, "bench_big_decode", "bench_big_tidar", "bench_big_lopa"),
                                             ("stories260K", "bench_base_decode", "bench_base_tidar", "bench_base_lopa")):
        decoder_goal("redrafter", dstep, model_label, lambda s, t: s >= 2.0, "≥ 2× ar")
        decoder_goal("tidar", tstep, model_label, lambda s, t: s >= 0.8 * t, "speed-up ≥ 0.8 × TPF")
        decoder_goal("lopa", lstep, model_label, lambda s, t: s >= 1.5, "≥ 1.5× ar")
    w("## Goals (issue 13)")
    w("")
    w("| figure | measured | goal | verdict |")
    w("|---|---|---|---|")
    for what, m, target, v in verdict_rows:
        w(f"| {what} | {m} | {target} | {v} |")
    w("")

    # Everything else measured.
    w("## Other figures")
    w("")
    w("| figure | value |")
    w("|---|---|")
    for r in rows:
        if r.get("name") == "decode_tok_s" and r.get("decoder") in ("ar", "ngram"):
            w(f"| {r['decoder']} decode, {r.get('step')} ({r.get('device')}) | {r['median']:.1f} tok/s "
              f"(TPF {r.get('tokens_per_forward', 0):.2f}, identical: {r.get('identical_to_ar')}) |")
    for st in ("bench_big_verify512", "bench_big_verify4096"):
        curve = [r for r in rows if r.get("step") == st and r.get("name") == "verify_ms"]
        if curve:
            w(f"| L(k)/L(1), depth {curve[0].get('depth')} ({curve[0].get('device')}) | "
              + ", ".join(f"k={r['k']}: {r['ratio_vs_k1']:.2f}" for r in curve)
              + f" (L(1) = {curve[0]['median']:.3f} ms) |")
    for st, label in (("torch_ref_base", "stories260K"), ("torch_ref_big", big_label)):
        r = pick(st, "torch_reference_decode")
        if r:
            w(f"| PyTorch eager reference, {label} ({r['dtype']}, {r['device_name']}) | {r['tok_s']:.1f} tok/s |")
    ar_big, tr_big = pick("bench_big_decode", "decode_tok_s", decoder="ar"), pick("torch_ref_big", "torch_reference_decode")
    if ar_big and tr_big and tr_big["tok_s"] > 0:
        w(f"| specd ar / PyTorch eager, {big_label} | {ar_big['median'] / tr_big['tok_s']:.2f}× |")
    bw = pick("bandwidth", "copy_bandwidth")
    if bw:
        w(f"| device copy bandwidth ({bw['device_name']}) | {bw['median']:.1f} GB/s (read + write) |")

    # Greedy ids: specd generate vs the PyTorch reference.
    gen = next((r for r in rows if r.get("step") == "generate_base" and "token_ids" in r), None)
    ref = pick("torch_ref_base", "torch_reference_decode")
    if gen and ref:
        a, b = gen["token_ids"], ref["first_ids"]
        n = min(len(a), len(b))
        same = next((i for i in range(n) if a[i] != b[i]), n)
        w(f"| greedy ids, specd generate vs PyTorch (stories260K) | {same}/{n} equal from the start"
          + ("" if same == n else f" (first difference at {same})") + " |")
    else:
        w("| greedy ids, specd generate vs PyTorch (stories260K) | not compared ("
          + (step_note("generate_base") or step_note("torch_ref_base") or "missing output") + ") |")
    w("")

    w("## Test suites")
    w("")
    w("| suite | result | doctest |")
    w("|---|---|---|")
    for r in rows:
        if r.get("name") == "test_suite":
            res = "passed" if r.get("rc") == 0 else ("timeout" if r.get("rc") in (124, 137) else f"FAILED (rc {r.get('rc')})")
            if int(r.get("gpu_skips", 0)) > 0:
                res += f", {r['gpu_skips']} case(s) skipped: no GPU"
            w(f"| {r['suite']} | {res} | {r.get('summary')} |")
    w("")
    bad = [s for s in steps.values() if s.get("status") not in ("ok", None)]
    if bad:
        w("## Steps that did not finish")
        w("")
        for s in bad:
            w(f"- {s['step']}: {s.get('status')}" + (f" ({s.get('reason')})" if s.get("reason") else f", rc {s.get('rc')}"))
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
