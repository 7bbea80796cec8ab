"""The feature sampler's dominant operations at the Paris shapes, XLA (jax.jit) beside torch, float32,
one thread per side: do the two backends run the same FLOPs at the same speed on this CPU?

    python benchmarks/matmul_xla_vs_torch.py                       # Paris shapes, batch 1 and 4
    python benchmarks/matmul_xla_vs_torch.py --tiny                # CI size, seconds

The full sampler (configs/paris.py) is 35 pre-LN blocks over 1024 tokens of width 512, 8 heads of 64,
MLP 512 -> 2048 -> 512: per block and image 2 * 1024 * (4 * 512^2 + 2 * 512 * 2048 + 2 * 1024 * 512)
= 8.6 GFLOP, so one pass is ~301 GFLOP per image. Cases (M = batch * 1024 rows):

  linear_512x512    x (M, 512) @ W (512, 512) + b        (key, query, value, proj: 4 per block)
  linear_512x1536   the same three projections as ONE matmul (fused QKV)
  linear_512x2048   mlp_fc1                     linear_2048x512  mlp_fc2
  attention         q k^T / 8, softmax, @ v over (B, 8, 1024, 64)   (4 * B * 8 * 1024^2 * 64 FLOP);
                    XLA also [token_major]: the same einsums on (B, 1024, 8, 64) operands, and
                    [dot_product]: jax.nn.dot_product_attention
  block             one whole pre-LN block (LayerNorm, attention, GELU2 MLP, residuals)

Each side runs in its own fresh process (threads fixed before the library starts its pools: torch
set_num_threads, XLA_FLAGS --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=N); XLA is
run once per entry of --xla-variants (extra XLA_FLAGS, e.g. --xla_cpu_use_onednn=true), jax also with
jax.nn.dot_product_attention for the attention case. Each case: --warmup untimed calls, then timed
calls until --min-time-s (at least --min-repeats); median seconds and GFLOP/s, the process CPU time of
every call and GFLOP per CPU second (`summary_gflop_per_cpu_s`: on a machine shared with other jobs the
wall clock also counts time the process waited for a core), and cpu_s / wall_s of the timed calls
(> 1 when a library used more threads than asked: oneDNN in XLA does). Writes
benchmarks/results/matmul_xla_vs_torch_<threads>t[_tiny].json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_model, pin_xla_threads  # benchmarks/machine.py

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = ["", "--xla_cpu_use_onednn=true", "--xla_cpu_use_xnnpack=true"]


def shapes(tiny: bool):
    # (tokens, width, heads, mlp width)
    return (64, 128, 4, 512) if tiny else (1024, 512, 8, 2048)


def cases(batch, tiny):
    t, c, h, f = shapes(tiny)
    m, hd = batch * t, c // h
    lin = lambda i, o: 2 * m * i * o  # noqa: E731
    att = 4 * batch * h * t * t * hd
    return {
        f"linear_{c}x{c}": lin(c, c), f"linear_{c}x{3 * c}": lin(c, 3 * c),
        f"linear_{c}x{f}": lin(c, f), f"linear_{f}x{c}": lin(f, c),
        "attention": att, "block": 4 * lin(c, c) + lin(c, f) + lin(f, c) + att,
    }


def timeit(fn, warmup, min_repeats, min_time):
    for _ in range(warmup):
        fn()
    samples, cpu = [], []
    t_all = time.perf_counter()
    while len(samples) < min_repeats or time.perf_counter() - t_all < min_time:
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return samples, cpu


def child(args) -> dict:
    import numpy as np

    t, c, h, f = shapes(args.tiny)
    rng = np.random.default_rng(0)
    out = {}
    for batch in args.batch_sizes:
        m, hd = batch * t, c // h
        arr = lambda *s: (rng.standard_normal(s) * 0.05).astype(np.float32)  # noqa: E731
        x, xf = arr(m, c), arr(m, f)
        w = {f"linear_{c}x{c}": (x, arr(c, c), arr(c)), f"linear_{c}x{3 * c}": (x, arr(c, 3 * c), arr(3 * c)),
             f"linear_{c}x{f}": (x, arr(c, f), arr(f)), f"linear_{f}x{c}": (xf, arr(f, c), arr(c))}
        q, k, v = (arr(batch, h, t, hd) for _ in range(3))
        blk = dict(ln1=(np.ones(c, np.float32), np.zeros(c, np.float32)), ln2=(np.ones(c, np.float32), np.zeros(c, np.float32)),
                   key=(arr(c, c), arr(c)), query=(arr(c, c), arr(c)), value=(arr(c, c), arr(c)), proj=(arr(c, c), arr(c)),
                   fc1=(arr(c, f), arr(f)), fc2=(arr(f, c), arr(c)))
        xb = arr(batch, t, c)
        fns = (torch_fns if args.side == "torch" else jax_fns)(w, (q, k, v), blk, xb, h, args)
        flops = cases(batch, args.tiny)
        for name, fn in fns.items():
            samples, cpu = timeit(fn, args.warmup, args.min_repeats, args.min_time_s)
            med, med_cpu, cpu_ratio = statistics.median(samples), statistics.median(cpu), sum(cpu) / sum(samples)
            base = name.split("[")[0]
            out[f"b{batch}/{name}"] = {"median_s": med, "gflop_per_s": flops[base] / med / 1e9,
                                       "gflop": flops[base] / 1e9, "cpu_s_per_wall_s": cpu_ratio,
                                       "median_cpu_s": med_cpu, "gflop_per_cpu_s": flops[base] / med_cpu / 1e9,
                                       "samples_s": samples, "cpu_samples_s": cpu}
            print(f"{args.side} {args.xla_extra!r} b{batch} {name}: {med * 1e3:.2f} ms "
                  f"{flops[base] / med / 1e9:.1f} GFLOP/s (cpu/wall {cpu_ratio:.2f})", file=sys.stderr)
    return out


def torch_fns(w, qkv, blk, xb, heads, args):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    tt = lambda a: torch.from_numpy(a)  # noqa: E731
    fns = {}
    for name, (x, wt, b) in w.items():
        x, wt_t, b = tt(x), tt(wt.T.copy()), tt(b)  # nn.Linear stores (out, in)
        fns[name] = (lambda x=x, wt=wt_t, b=b: F.linear(x, wt, b))
    q, k, v = (tt(a) for a in qkv)
    d = q.shape[-1]

    def attention():  # transformer_block.py FullAttention, without the projections
        att = (q @ k.transpose(-2, -1)) * (1.0 / d ** 0.5)
        return F.softmax(att, dim=-1) @ v
    fns["attention"] = attention
    p = {k_: tuple(tt(a if a.ndim == 1 else a.T.copy()) for a in v_) for k_, v_ in blk.items()}
    xb = tt(xb)

    def block():  # transformer_block.py Block (linear MLP, GELU2, no dropout)
        B, T, C = xb.shape
        y = F.layer_norm(xb, (C,), *p["ln1"])
        split = lambda n: F.linear(y, *p[n]).view(B, T, heads, C // heads).transpose(1, 2)  # noqa: E731
        k_, q_, v_ = split("key"), split("query"), split("value")
        att = F.softmax((q_ @ k_.transpose(-2, -1)) * (1.0 / (C // heads) ** 0.5), dim=-1)
        y = (att @ v_).transpose(1, 2).contiguous().view(B, T, C)
        x = xb + F.linear(y, *p["proj"])
        hdn = F.linear(F.layer_norm(x, (C,), *p["ln2"]), *p["fc1"])
        return x + F.linear(hdn * torch.sigmoid(1.702 * hdn), *p["fc2"])
    fns["block"] = block
    torch.set_grad_enabled(False)  # inference: no autograd graph
    return fns


def jax_fns(w, qkv, blk, xb, heads, args):
    import jax
    import jax.numpy as jnp

    from fdm_jax.put_fdm.feature_sampler import Block

    fns = {}

    def compiled(f, *a):
        a = tuple(jax.device_put(x) for x in a)
        exe = jax.jit(f).lower(*a).compile()
        return lambda: jax.block_until_ready(exe(*a))

    for name, (x, wt, b) in w.items():
        fns[name] = compiled(lambda x, wt, b: x @ wt + b, x, wt, b)
    q, k, v = qkv
    d = q.shape[-1]

    def attention(q, k, v):  # feature_sampler.SelfAttention "einsum", on (B, H, T, d)
        att = jax.nn.softmax(jnp.einsum("bhqd,bhkd->bhqk", q, k) * (1.0 / d ** 0.5), axis=-1)
        return jnp.einsum("bhqk,bhkd->bhqd", att, v)
    fns["attention"] = compiled(attention, q, k, v)
    tr = lambda a: a.transpose(0, 2, 1, 3)  # noqa: E731  (B, T, H, d) layout of dot_product_attention

    def token_major(q, k, v):  # the einsums on (B, T, H, d) operands (feature_sampler before head-major)
        att = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) * (1.0 / d ** 0.5), axis=-1)
        return jnp.einsum("bhqk,bkhd->bqhd", att, v)
    fns["attention[token_major]"] = compiled(token_major, tr(q), tr(k), tr(v))
    fns["attention[dot_product]"] = compiled(lambda q, k, v: jax.nn.dot_product_attention(q, k, v), tr(q), tr(k), tr(v))
    c = xb.shape[-1]
    params = {"ln1": {"scale": blk["ln1"][0], "bias": blk["ln1"][1]},
              "ln2": {"scale": blk["ln2"][0], "bias": blk["ln2"][1]},
              "attn": {n: {"kernel": blk[n][0], "bias": blk[n][1]} for n in ("key", "query", "value", "proj")},
              "mlp_fc1": {"kernel": blk["fc1"][0], "bias": blk["fc1"][1]},
              "mlp_fc2": {"kernel": blk["fc2"][0], "bias": blk["fc2"][1]}}
    for attn in ("einsum", "dot_product"):
        mod = Block(heads, mlp_ratio=blk["fc1"][0].shape[1] // c, attention=attn)
        name = "block" if attn == "einsum" else "block[dot_product]"
        fns[name] = compiled(lambda p, x, mod=mod: mod.apply({"params": p}, x)[0], params, xb)
    return fns


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", default="1,4")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tiny", action="store_true", help="CI size: 64 tokens of width 128")
    ap.add_argument("--xla-variants", default=";".join(DEFAULT_VARIANTS),
                    help="';'-separated extra XLA_FLAGS, one XLA process each ('' = defaults)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-repeats", type=int, default=5)
    ap.add_argument("--min-time-s", type=float, default=2.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--side", choices=("torch", "xla"), help=argparse.SUPPRESS)
    ap.add_argument("--xla-extra", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.batch_sizes = [int(b) for b in str(args.batch_sizes).split(",")]

    if args.side:  # child process: one backend, one flag set
        if args.side == "xla":
            pin_xla_threads(args.threads, args.xla_extra)
            os.environ["JAX_PLATFORMS"] = "cpu"
        sys.path.insert(0, str(REPO))
        print(json.dumps(child(args)))
        return 0

    base = [sys.executable, str(Path(__file__).resolve()), "--batch-sizes", ",".join(map(str, args.batch_sizes)),
            "--threads", str(args.threads), "--warmup", str(args.warmup), "--min-repeats", str(args.min_repeats),
            "--min-time-s", str(args.min_time_s)] + (["--tiny"] if args.tiny else [])
    runs = [("torch", "")] + [("xla", v.strip()) for v in args.xla_variants.split(";")]
    sides = {}
    for side, extra in runs:
        p = subprocess.run(base + ["--side", side, f"--xla-extra={extra}"], capture_output=True, text=True)
        sys.stderr.write(p.stderr[-4000:])
        if p.returncode != 0:
            sides[f"{side}[{extra}]" if extra else side] = {"error": p.stderr[-2000:]}
            continue
        sides[f"{side}[{extra}]" if extra else side] = json.loads(p.stdout.strip().splitlines()[-1])
    summary, summary_cpu = {}, {}  # op -> {side[xla flags][op variant]: GFLOP per wall / per CPU second}
    for name, res in sides.items():
        for key, r in ({} if "error" in res else res).items():
            base = key.split("[")[0]
            summary.setdefault(base, {})[name + key[len(base):]] = round(r["gflop_per_s"], 2)
            summary_cpu.setdefault(base, {})[name + key[len(base):]] = round(r["gflop_per_cpu_s"], 2)
    import jax
    import torch
    result = {
        "what": "the feature sampler's dominant ops, float32, one process per side and XLA flag set",
        "shapes": dict(zip(("tokens", "width", "heads", "mlp_width"), shapes(args.tiny))),
        "threads_per_side": args.threads, "summary_gflop_per_s": summary,
        "summary_gflop_per_cpu_s": summary_cpu, "sides": sides,
        "cpu": platform.processor() or platform.machine(), "load_average": os.getloadavg(),
        "torch": torch.__version__, "jax": jax.__version__,
        "command": "python benchmarks/matmul_xla_vs_torch.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    result["cpu_model"] = cpu_model()
    out = Path(args.out) if args.out else (REPO / "benchmarks" / "results"
                                           / f"matmul_xla_vs_torch_{args.threads}t{'_tiny' if args.tiny else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
