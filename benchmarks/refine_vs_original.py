"""Refinement side by side with the original (geomagical/lama-with-refiner), same weights, same image
and mask, one process, calls alternated, one thread each (--threads): the per-iteration cost of one
refined pyramid level (rear forward + backward + Adam on the featuremap).

    git clone https://github.com/geomagical/lama-with-refiner /path/lama   # never vendored here
    pip install kornia easydict pyyaml                                      # what its refinement imports
    python benchmarks/refine_vs_original.py --original /path/lama --size 512 --iters 1,3

The original's generator is built from its big-lama.yaml arguments with random weights (torch seed 0);
its state_dict goes through this project's converter, so both sides compute with the same tensors.
Each side runs one refined level (`refinement._infer` / `fdm_jax.lama.refine.refine_scale`) at --size,
given the same lower-resolution result; per-iteration cost = (time with n_hi Adam steps - time with
n_lo) / (n_hi - n_lo), which cancels the front and the last forward. Ratio = original / ours (> 1:
ours is faster). Writes benchmarks/results/refine_vs_original_<size>_<threads>t.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--original", required=True, help="a checkout of geomagical/lama-with-refiner")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iters", default="1,3", help="n_lo,n_hi Adam steps")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads per side (torch and XLA)")
    ap.add_argument("--out", default=None)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    # Thread counts must be fixed before either library starts its pools.
    from machine import pin_xla_threads  # benchmarks/machine.py

    pin_xla_threads(args.threads)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(args.original).resolve()))
    if "pytorch_lightning" not in sys.modules:  # saicinpainting.utils imports it for seed_everything only
        try:
            import pytorch_lightning  # noqa: F401
        except ImportError:
            sys.modules["pytorch_lightning"] = types.SimpleNamespace(seed_everything=lambda *a, **k: None)
    # The evaluation package's __init__ imports its metrics (sklearn, lpips, ...): load the package
    # without it, then refinement.py itself.
    import saicinpainting

    evaluation = types.ModuleType("saicinpainting.evaluation")
    evaluation.__path__ = [str(Path(saicinpainting.__path__[0]) / "evaluation")]
    sys.modules["saicinpainting.evaluation"] = evaluation
    from saicinpainting.evaluation import refinement as orig_ref
    from saicinpainting.training.modules.ffc import FFCResNetGenerator as TorchGenerator

    sys.path.insert(0, str(REPO))
    import jax
    import jax.numpy as jnp

    from fdm_jax.cli.config_loading import load_config
    from fdm_jax.convert.lama import load_generator
    from fdm_jax.lama.generator import FFCResNetGenerator, front_rear
    from fdm_jax.lama.refine import refine_scale
    from fdm_jax.nn.layout import to_nchw

    n_lo, n_hi = (int(v) for v in args.iters.split(","))
    torch.manual_seed(0)
    ffc = dict(enable_lfu=False)
    tg = TorchGenerator(input_nc=4, output_nc=3, ngf=64, n_downsampling=3, n_blocks=18, add_out_act="sigmoid",
                        init_conv_kwargs=dict(ratio_gin=0, ratio_gout=0, **ffc),
                        downsample_conv_kwargs=dict(ratio_gin=0, ratio_gout=0, **ffc),
                        resnet_conv_kwargs=dict(ratio_gin=0.75, ratio_gout=0.75, **ffc)).eval()
    model = FFCResNetGenerator(**load_config(str(REPO / "configs/big_lama.py")).model)
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(tg.state_dict(), Path(tmp) / "g.pth")
        variables = load_generator(Path(tmp) / "g.pth", model)
    # The original splits at its first resnet block (refine_predict).
    first = next(i for i, m in enumerate(tg.model) if type(m).__name__ in ("FFCResnetBlock", "ResnetBlock"))
    t_front, t_rear = tg.model[:first], tg.model[first:]

    s = args.size
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (1, s, s, 3)).astype(np.float32)
    hole = np.zeros((1, s, s, 1), np.float32)
    hole[:, s // 4:s // 2, s // 4:3 * s // 4] = 1.0
    prev = rng.uniform(0, 1, (1, s // 2, s // 2, 3)).astype(np.float32)
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(to_nchw(a)))  # noqa: E731
    fr = front_rear(model)
    cpu = [torch.device("cpu")]

    def ours(n):
        out, _ = refine_scale(fr, variables, jnp.asarray(image), jnp.asarray(hole), jnp.asarray(prev),
                              n_iters=n + 1, lr=0.002, orig_hw=(s, s))
        return jax.block_until_ready(out)

    def original(n):
        return orig_ref._infer(nchw(image), nchw(hole), t_front, [t_rear], nchw(prev), (s, s), cpu, 1, n + 1, 0.002)

    def timed(fn, n):
        t = time.perf_counter()
        fn(n)
        return time.perf_counter() - t

    first_call = {"ours": timed(ours, n_lo), "original": timed(original, n_lo)}  # ours includes compilation
    timed(ours, n_hi)
    times = {(side, n): [] for side in ("ours", "original") for n in (n_lo, n_hi)}
    for _ in range(args.repeats):
        for n in (n_lo, n_hi):
            for side, fn in (("original", original), ("ours", ours)):
                times[(side, n)].append(timed(fn, n))
    med = {k: statistics.median(v) for k, v in times.items()}
    per_iter = {side: (med[(side, n_hi)] - med[(side, n_lo)]) / (n_hi - n_lo) for side in ("ours", "original")}
    result = {
        "what": "one refined level of Big-LaMa (random weights, the same on both sides): per Adam iteration",
        "size": s, "threads_per_side": args.threads, "iters": [n_lo, n_hi], "repeats": args.repeats,
        "median_s": {f"{side}_{n}": v for (side, n), v in med.items()}, "first_call_s": first_call,
        "per_iteration_s": per_iter, "ratio_original_over_ours": per_iter["original"] / per_iter["ours"],
        "torch": torch.__version__, "jax": jax.__version__,
        "command": "python benchmarks/refine_vs_original.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"refine_vs_original_{s}_{args.threads}t.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("per_iteration_s", "ratio_original_over_ours")}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
