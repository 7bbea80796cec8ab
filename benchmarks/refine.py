"""Cost of Big-LaMa with and without multiscale feature refinement (fdm_jax.lama.refine) on whatever device
runs it.

Per square size S (default 512, 1024, 2048) and mode:
  plain    `lama_generator.predict` (symmetric pad to 8, generator, composite), one jitted program
  refine   `refine.refine` with the config's refiner (defaults: 15 iterations, min_side 512,
           px_budget 1.8 MP, so 512 has no refined scale, 1024 refines 512 -> 1024 and 2048 is first
           reduced to 1341 x 1341 and refines 670 -> 1341; refinement.py:_get_image_mask_pyramid)
Each (S, mode) runs in its own subprocess so its peak memory is its own and an out-of-memory case is
recorded instead of ending the run: `peak_bytes` is the device's peak_bytes_in_use (accelerators) or
the process's peak resident set size (CPU; it includes the Python process and XLA itself). For refine,
`top_scale_program_memory` is XLA's buffer assignment of the top scale's jitted program
(temp_size_in_bytes: the activations kept for the backward pass and other temporaries), which is
where `--remat` would show. Measured on CPU (benchmarks/results/refine_cpu*.json): it does not shrink,
because the gradient is taken w.r.t. z only, with the weights fixed, so the backward pass needs the
ReLU masks and little else (no conv inputs); the large saved-activation figures of the PyTorch
original (~24 GB at 1.8 MP, advimman/lama PR #112) do not carry over.
Every case is first called once untimed (compiles every per-scale program), then `--repeats` timed
calls wrapped in jax.block_until_ready; `seconds_per_image` is the median, all timings are kept.
With `--repeats 0` the first call is the measurement (compile included: for cases that take many
minutes on a CPU, where compiling is a few seconds of it).

Input: a real photo (default ../shared/data/images/sun_hays80/img_001.jpg; short side resized to S with
cv2.INTER_AREA, centre crop) and a LaMa thick mask (configs/data_gen/random_thick_512.yaml via
fdm_jax.data.lama_masks, first seed from --seed whose hole covers 10-50 %). Weights are random
(lama_generator.random_variables: numpy fill of jax.eval_shape(init)); they do not change the cost. Matmul/conv precision is the
backend default (TF32-like on recent GPUs, as PyTorch's default cuDNN TF32 in the paper's timings)
unless --precision highest.

    python benchmarks/refine.py --config configs/big_lama.py --sizes 512,1024,2048 [--remat]
    python benchmarks/refine.py --config configs/big_lama.py:tiny --sizes 256 --n-iters 3 --min-side 128  # CI size

Results: benchmarks/results/refine[_<variant>]_<device kind>[_remat].json (or --out). Paper reference (Table 1,
RTX A5000, 1024 x 1024): 4.56 s refined, 0.26 s Big-LaMa alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/refine.py` without an installed package
    sys.path.insert(0, str(REPO_ROOT))

import cv2  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from fdm_jax.cli.config_loading import load_config, split_spec  # noqa: E402
from fdm_jax.data import lama_masks  # noqa: E402
from fdm_jax.lama.generator import (FFCResNetGenerator, count_parameters, front_rear, predict,  # noqa: E402
                                           random_variables)
from fdm_jax.lama.refine import RefineConfig, _adam, prepare_scale, pyramid_sizes, refine, refine_step  # noqa: E402

DEFAULT_IMAGE = REPO_ROOT.parent / "shared" / "data" / "images" / "sun_hays80" / "img_001.jpg"
PAPER_REFERENCE = {
    "source": "Kulshreshtha et al. 2022 (arXiv 2206.13644) Table 1: time per 1024x1024 image, one RTX A5000",
    "big_lama_s": 0.26,
    "big_lama_refined_s": 4.56,
}


def load_input(path: Path, size: int, seed: int):
    """(image (1, S, S, 3) in [0, 1], mask (1, S, S, 1) 1 = known, hole fraction, mask seed)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"--image {path}: cannot read the image")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    f = size / min(h, w)
    rgb = cv2.resize(rgb, (max(size, round(w * f)), max(size, round(h * f))), interpolation=cv2.INTER_AREA)
    top, left = (rgb.shape[0] - size) // 2, (rgb.shape[1] - size) // 2
    rgb = rgb[top:top + size, left:left + size]
    cfg = load_config("configs/big_lama.py").eval_masks.random_thick_512.to_dict()
    gen = lama_masks.MixedMaskGenerator(lama_masks.MaskDatasetConfig.from_original(cfg).mask_generator)
    for s in range(seed, seed + 100):
        hole = gen(np.random.RandomState(s), (size, size))
        if 0.1 <= hole.mean() <= 0.5:
            break
    image = jnp.asarray(rgb[None].astype(np.float32) / 255.0)
    return image, jnp.asarray(1.0 - hole[None, :, :, None]), float(hole.mean()), s


def device_info() -> dict:
    d = jax.devices()[0]
    return {"device_name": str(d), "device_kind": d.device_kind, "platform": d.platform,
            "device_count": jax.device_count(), "cpu_count": os.cpu_count(),
            "jax_version": jax.__version__, "numpy_version": np.__version__,
            "python_version": platform.python_version(), "machine": platform.machine()}


def peak_bytes() -> dict:
    stats = None
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001  (CPU backends may not implement it)
        stats = None
    if stats and "peak_bytes_in_use" in stats:
        return {"peak_bytes": int(stats["peak_bytes_in_use"]), "peak_kind": "device peak_bytes_in_use"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {"peak_bytes": int(rss), "peak_kind": "host peak RSS of the benchmark process"}


def run_case(args, size: int, mode: str) -> dict:
    """One (size, mode) measurement in this process."""
    if args.precision == "highest":
        jax.config.update("jax_default_matmul_precision", "highest")
    config = load_config(args.config)
    gen_kwargs = dict(config.model)
    gen_kwargs["remat"] = bool(args.remat)
    model = FFCResNetGenerator(**gen_kwargs)
    rc = dict(config.refiner)
    for key in ("n_iters", "min_side", "px_budget"):
        if getattr(args, key) is not None:
            rc[key] = getattr(args, key)
    rcfg = RefineConfig(**rc)
    variables = random_variables(model, args.seed)
    image, mask, hole_fraction, mask_seed = load_input(Path(args.image), size, args.seed)
    (bh, bw), levels = pyramid_sizes(size, size, rcfg)
    out = {"size": size, "mode": mode, "hole_fraction": hole_fraction, "mask_seed": mask_seed}
    if mode == "plain":
        fn = jax.jit(lambda v, x, m: predict(model, v, x, m))
        t0 = time.perf_counter()
        compiled = fn.lower(variables, image, mask).compile()
        out["compile_s"] = time.perf_counter() - t0

        def call():
            return compiled(variables, image, mask)
    else:
        fr = front_rear(model)
        out.update({"refiner": rc, "pyramid_low_to_high": levels, "budget_resized_to": [bh, bw],
                    "refined_scales": len(levels) - 1,
                    "rear_forwards": (len(levels) - 1) * rcfg.n_iters, "adam_steps": (len(levels) - 1) * (rcfg.n_iters - 1)})

        def call():
            return refine(fr, variables, image, mask, rcfg)
    t0 = time.perf_counter()
    jax.block_until_ready(call())  # compiles every per-scale program (refine) / warms up (plain)
    out["first_call_s"] = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
    if times:
        out.update({"seconds_per_image": statistics.median(times), "timings_s": times})
    else:  # --repeats 0: the first call is the measurement (it includes compiling; for slow cases)
        out.update({"seconds_per_image": out["first_call_s"], "timings_s": [], "timed": "first call, compile included"})
    out.update(peak_bytes())
    if mode == "refine" and len(levels) > 1:
        out["top_scale_program_memory"] = top_scale_memory(model, variables, levels, rcfg)
    return out


def top_scale_memory(model, variables, levels, rcfg: RefineConfig) -> dict | None:
    """XLA's buffer assignment for the top scale's step program (rear forward/backward + Adam, the
    largest of the level's programs): temporaries are what remat (`--remat`) shrinks. One more compile."""
    (h, w), (ph, pw) = levels[-1], levels[-2]
    hp, wp = -(-h // rcfg.modulo) * rcfg.modulo, -(-w // rcfg.modulo) * rcfg.modulo
    spec = jax.ShapeDtypeStruct
    try:
        fr = front_rear(model)
        z, targets = jax.eval_shape(lambda v, i, m, p: prepare_scale(fr, v, i, m, p, orig_hw=(h, w)), variables,
                                    spec((1, hp, wp, 3), jnp.float32), spec((1, hp, wp, 1), jnp.float32),
                                    spec((1, ph, pw, 3), jnp.float32))
        opt_state = jax.eval_shape(_adam(0.0).init, z)
        compiled = refine_step.lower(fr, variables, z, opt_state, targets).compile()
        m = compiled.memory_analysis()
    except Exception as e:  # noqa: BLE001  (not every backend implements memory_analysis)
        return {"error": f"{type(e).__name__}: {e}"}
    if m is None:
        return None
    keys = ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes", "generated_code_size_in_bytes")
    return {k: int(getattr(m, k)) for k in keys if hasattr(m, k)}


def default_out(spec: str, remat: bool) -> Path:
    """benchmarks/results/refine[_<variant>]_<device kind>[_remat].json"""
    def clean(s):
        return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")

    variant = split_spec(spec)[1]
    kind = clean(jax.devices()[0].device_kind) or "device"
    name = "refine" + (f"_{clean(variant)}" if variant else "") + f"_{kind}" + ("_remat" if remat else "")
    return REPO_ROOT / "benchmarks" / "results" / f"{name}.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/big_lama.py", help="config spec (configs/big_lama.py[:tiny])")
    ap.add_argument("--sizes", default="512,1024,2048", help="comma-separated square input sizes")
    ap.add_argument("--modes", default="plain,refine", help="plain and/or refine")
    ap.add_argument("--n-iters", type=int, default=None, help="override refiner.n_iters (default: config, 15)")
    ap.add_argument("--min-side", type=int, default=None, help="override refiner.min_side (default: config)")
    ap.add_argument("--px-budget", type=int, default=None, help="override refiner.px_budget (default: config)")
    ap.add_argument("--remat", action="store_true", help="jax.checkpoint each resblock of the rear")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed calls per case (median reported); 0: report the first call, compile included")
    ap.add_argument("--precision", choices=["default", "highest"], default="default")
    ap.add_argument("--image", default=str(DEFAULT_IMAGE))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout-s", type=float, default=3600, help="per case")
    ap.add_argument("--out", default=None)
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: 'SIZE:MODE', prints JSON
    args = ap.parse_args(argv)
    if args.case:
        size, mode = args.case.split(":")
        print("RESULT " + json.dumps(run_case(args, int(size), mode)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in ("plain", "refine") for m in modes):
        ap.error("--modes: plain and/or refine")
    config = load_config(args.config)
    model = FFCResNetGenerator(**config.model)
    report = {
        "benchmark": "Big-LaMa plain vs multiscale feature refinement (fdm_jax.lama.refine)",
        "config": args.config, "remat": bool(args.remat), "precision": args.precision,
        "image": args.image, "num_params": count_parameters(model), "device": device_info(),
        "weights": "random (numpy fill of jax.eval_shape(init)); weights do not change the cost",
        "timing_method": "one untimed call (compiles), then --repeats timed calls with "
                         "jax.block_until_ready; seconds_per_image = median; one subprocess per case",
        "repeats": args.repeats, "paper_reference": PAPER_REFERENCE, "results": [],
    }
    passthrough = sys.argv[1:] if argv is None else list(argv)
    out = Path(args.out) if args.out else default_out(args.config, args.remat)
    out.parent.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        for mode in modes:
            cmd = [sys.executable, str(Path(__file__).resolve()), *passthrough, "--case", f"{size}:{mode}"]
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=args.timeout_s)
                line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
                if proc.returncode == 0 and line:
                    res = json.loads(line[len("RESULT "):])
                else:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                    oom = any(s in (proc.stderr or "") for s in ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory"))
                    res = {"size": size, "mode": mode, "error": "out of memory" if oom else "failed",
                           "returncode": proc.returncode, "stderr_tail": tail}
            except subprocess.TimeoutExpired:
                res = {"size": size, "mode": mode, "error": f"timed out after {args.timeout_s} s"}
            res["wall_s"] = time.perf_counter() - t0
            report["results"].append(res)
            if "error" in res:
                print(f"{size:5d} {mode:6s}  {res['error']}", flush=True)
            else:
                print(f"{size:5d} {mode:6s}  {res['seconds_per_image']:9.3f} s/img  peak {res['peak_bytes'] / 2**30:7.2f} GiB"
                      f" ({res['peak_kind']})", flush=True)
            out.write_text(json.dumps(report, indent=2) + "\n")  # after every case: a partial run keeps its rows
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
