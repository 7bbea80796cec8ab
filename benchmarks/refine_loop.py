"""What one refinement iteration costs: the donated step called alone, the same step inside
`fdm_jax.lama.refine.refine_scale`'s Python loop, and the former design (a `lax.fori_loop` over the same
step inside one jitted program), on one refined level of Big-LaMa.

    python benchmarks/refine_loop.py --config configs/big_lama.py --size 512 --iters 2,6
    python benchmarks/refine_loop.py --config configs/big_lama.py:tiny --size 256     # quick

Per-iteration cost of a driver = (time with n_hi iterations - time with n_lo) / (n_hi - n_lo), which
cancels the front and the final forward. Calls alternate between the drivers; medians over --repeats.
Writes benchmarks/results/refine_loop_<config>_<size>_<device>.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from fdm_jax.cli.config_loading import load_config  # noqa: E402
from fdm_jax.lama.generator import FFCResNetGenerator, front_rear, random_variables  # noqa: E402
from fdm_jax.lama.refine import _adam, prepare_scale, refine_scale, refine_step  # noqa: E402


@functools.partial(jax.jit, static_argnames=("fr", "n"))
def fori_driver(fr, variables, z, opt_state, targets, *, n):
    """The former design: every Adam step of a level inside one program."""
    def body(_, carry):
        z, s = carry
        z, s, _, _ = refine_step.__wrapped__(fr, variables, z, s, targets)
        return z, s
    return lax.fori_loop(0, n, body, (z, opt_state))[0]


def timed(fn):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/big_lama.py:tiny")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", default="2,6", help="n_lo,n_hi Adam steps")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    n_lo, n_hi = (int(v) for v in args.iters.split(","))

    config = load_config(args.config)
    model = FFCResNetGenerator(**config.model)
    variables = random_variables(model, 0)
    fr = front_rear(model)
    s = args.size
    key = jax.random.key(0)
    image = jax.random.uniform(key, (1, s, s, 3))
    hole = jnp.zeros((1, s, s, 1)).at[:, s // 4:s // 2, s // 4:3 * s // 4].set(1.0)
    prev = jax.random.uniform(key, (1, s // 2, s // 2, 3))
    z0, targets = prepare_scale(fr, variables, image, hole, prev, orig_hw=(s, s))

    def fresh():
        z = jax.tree.map(jnp.copy, z0)
        st = _adam(jnp.asarray(0.002, jnp.float32)).init(z)
        return z, st

    def step_alone():
        z, st = fresh()
        return refine_step(fr, variables, z, st, targets)[0]

    def loop(n):
        return lambda: refine_scale(fr, variables, image, hole, prev, n_iters=n + 1, lr=0.002, orig_hw=(s, s))[0]

    def fori(n):
        return lambda: fori_driver(fr, variables, *fresh(), targets, n=n)

    cases = {"step_alone": step_alone, f"loop_{n_lo}": loop(n_lo), f"loop_{n_hi}": loop(n_hi),
             f"fori_{n_lo}": fori(n_lo), f"fori_{n_hi}": fori(n_hi)}
    compile_s = {k: timed(f) for k, f in cases.items()}  # first calls: compile + run
    times = {k: [] for k in cases}
    for _ in range(args.repeats):
        for k, f in cases.items():
            times[k].append(timed(f))
    med = {k: statistics.median(v) for k, v in times.items()}
    # The lone step includes copying z and the state (fresh()); so does fori's. Both are small.
    per_iter_loop = (med[f"loop_{n_hi}"] - med[f"loop_{n_lo}"]) / (n_hi - n_lo)
    per_iter_fori = (med[f"fori_{n_hi}"] - med[f"fori_{n_lo}"]) / (n_hi - n_lo)
    result = {
        "config": args.config, "size": s, "device": jax.devices()[0].device_kind, "iters": [n_lo, n_hi],
        "repeats": args.repeats, "median_s": med, "first_call_s": compile_s,
        "step_alone_s": med["step_alone"], "per_iteration_python_loop_s": per_iter_loop,
        "per_iteration_fori_loop_s": per_iter_fori,
        "python_loop_over_step_alone": per_iter_loop / med["step_alone"],
        "fori_loop_over_step_alone": per_iter_fori / med["step_alone"],
        "command": "python benchmarks/refine_loop.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    clean = lambda t: re.sub(r"[^a-z0-9]+", "_", t.lower()).strip("_")
    out = Path(args.out) if args.out else (REPO / "benchmarks" / "results" /
                                           f"refine_loop_{clean(args.config.split('/')[-1])}_{s}_{clean(result['device'])}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("step_alone_s", "per_iteration_python_loop_s", "per_iteration_fori_loop_s",
                                             "python_loop_over_step_alone", "fori_loop_over_step_alone")}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
