"""Compile time of one sampler fill step (`fdm_jax.put_fdm.sampling.fill_step`, the body of the
sampling loop) against the transformer's depth, with the blocks unrolled (model.sampler.scan_blocks
False, one subtree per block) and scanned (True, one `nn.scan` over stacked parameters).

    python benchmarks/scan_compile.py [--layers 4 8 16 35] [--config paris] [--out FILE.json]

The other sizes are those of the config (Paris: width 512, 8 heads, 1024 patches, the Paris codec);
batch 1, sequential schedule, top-50. For each depth and layout: `lower_s` (trace + lower to
StableHLO), `compile_s` (XLA compile), both from the fastest of `--compiles` fresh attempts, and `run_s` (the best of `--repeats` runs of the compiled step on
zero-valued parameters: the cost does not depend on the values). Lowering and compiling work on
abstract shapes, so no parameters are materialised for them. The persistent compilation cache is not
used: every compile is a fresh one.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, nargs="+", default=[4, 8, 16, 35])
    ap.add_argument("--config", default="paris")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each compiled step (0: none)")
    ap.add_argument("--compiles", type=int, default=2, help="fresh trace+lower+compile of each; the best is kept")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_compilation_cache", False)
    from fdm_jax.cli.config_loading import load_config
    from fdm_jax.put_fdm import build_models
    from fdm_jax.put_fdm.sampling import fill_step, init_state

    config = load_config(args.config)
    s = config.image_size
    image = jax.ShapeDtypeStruct((1, s, s, 3), jnp.float32)
    mask = jax.ShapeDtypeStruct((1, s, s, 1), jnp.float32)
    rows = []
    for n in args.layers:
        for scan in (False, True):
            config.model.sampler.num_layers = n
            config.model.sampler.scan_blocks = scan
            models = build_models(config.model)
            codec, sampler = models["codec"], models["sampler"]
            cv = jax.eval_shape(codec.init, jax.random.key(0), image, mask)
            sv = jax.eval_shape(sampler.init, jax.random.key(0),
                                jax.ShapeDtypeStruct((1, sampler.seq_len, sampler.feature_dim), jnp.float32))
            state = jax.eval_shape(lambda cv, im, m: init_state(codec, cv, im, m, jax.random.key(0))[0], cv, image, mask)
            best = None
            for _ in range(max(args.compiles, 1)):  # a new jit object each time: nothing is reused
                step = jax.jit(functools.partial(fill_step, codec, top_k=50), static_argnums=(1,))
                t0 = time.perf_counter()
                lowered = step.lower(cv, sampler, sv, state)
                t1 = time.perf_counter()
                compiled = lowered.compile()
                t2 = time.perf_counter()
                if best is None or t2 - t0 < best[0]:
                    best = (t2 - t0, t1 - t0, t2 - t1)
            row = {"num_layers": n, "scan_blocks": scan, "lower_s": round(best[1], 3), "compile_s": round(best[2], 3),
                   "lower_plus_compile_s": round(best[0], 3)}
            if args.repeats:
                zeros = lambda t: jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), t)  # noqa: E731
                cvz, svz = zeros(cv), zeros(sv)
                st = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype) if not jnp.issubdtype(
                    a.dtype, jax.dtypes.prng_key) else jax.random.split(jax.random.key(0), a.shape[0]), state)
                best = float("inf")
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    jax.block_until_ready(compiled(cvz, svz, st))
                    best = min(best, time.perf_counter() - t0)
                row["run_s"] = round(best, 3)
                del cvz, svz, st
            print(json.dumps(row), flush=True)
            rows.append(row)
    sm = config.model.sampler
    result = {
        "what": "jit(fill_step) of one sampler pass: trace+lower and XLA compile seconds vs depth, blocks unrolled "
                "vs nn.scan (model.sampler.scan_blocks); run_s: best of the compiled step's runs",
        "config": args.config, "width": sm.width, "num_heads": sm.num_heads, "seq_len": sm.seq_len,
        "batch": 1, "compiles": args.compiles, "repeats": args.repeats, "rows": rows, "jax": jax.__version__, "devices": [str(d) for d in jax.devices()],
        "cpu_threads": os.cpu_count(),
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
