"""Inference cost of PUT + FDM pluralistic inpainting (fdm_jax.put_fdm.sampling) on whatever device runs it.

Measures, per batch size (all jitted, AOT-compiled first, `block_until_ready` around every call):

  fdm_s            one FeatureDequantizer call on the feature grid (32x32 for 256x256 images);
                   the paper's Table 2 gives 0.004 s for FDM
  sampler_pass_s   one full feature-sampler (transformer) pass over the sequence; the original
                   pays one such pass per masked patch (num_token_per_iter = 1)
  encode_s         codec.get_features (encoder + quantizer) and
  decode_s         codec.decode_with_feature, the fixed cost around the fill loop
  e2e_s            `fdm_jax.put_fdm.sampling.inpaint` (top_k=50) on real 256x256 images and masks from
                   ../shared/data/images/places2_256_freeform, jitted once

Weights are random (numpy fill of `jax.eval_shape(module.init)`): they do not change the cost.
Every number is the median of the timed calls; all calls are kept in the JSON.

`--max-masked-patches N` keeps only the holes of each image's first N masked patches (row-major;
every other patch is set to known, patch-aligned) so a CPU run of the full model finishes. The
report then gives seconds per fill step and ESTIMATES (keys `estimated_*`, never measurements) for
the paper's mask ratios: fill steps x measured net seconds per step + encode + FDM + decode.

  python benchmarks/sampling.py --config configs/paris.py --batch-sizes 1,16
  python benchmarks/sampling.py --config configs/paris.py:tiny --batch-sizes 1,2   # CI size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/sampling.py` without an installed package
    sys.path.insert(0, str(REPO_ROOT))

import cv2  # noqa: E402
import flax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from fdm_jax.cli.config_loading import load_config, resolve_config_path, split_spec  # noqa: E402
from fdm_jax.io.images import fit_mask, read_image, read_mask, resize_and_center_crop  # noqa: E402
from fdm_jax.nn.params import abstract_variables, count_params  # noqa: E402
from fdm_jax.put_fdm import build_models, masked_patch_index  # noqa: E402
from fdm_jax.put_fdm.codec import PatchVQVAE  # noqa: E402
from fdm_jax.put_fdm.sampling import inpaint  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "images" / "places2_256_freeform"

# FDM paper (Park & Jung, "Improving Detail in Pluralistic Image Inpainting with Feature
# Dequantization", WACV 2025, arXiv 2412.01046), Table 2.
PAPER_REFERENCE = {
    "source": "FDM paper (Park & Jung, WACV 2025, arXiv 2412.01046), Table 2: computational overhead "
              "of FDM on Paris StreetView with a mask ratio of 20-30%",
    "device": "NVIDIA GeForce RTX 2080 Ti (the paper's stated machine: 'six GeForce RTX 2080 Ti GPUs'; "
              "Table 2 does not name the inference GPU or batch size separately)",
    "mask_ratio": "20-30%",
    "put_fdm_s_per_image": 25.240,
    "put_s_per_image": 25.236,
    "fdm_s": 0.004,
    "put_fdm_tflops": 59.335,
    "fdm_tflops": 0.004,
}

# Fill steps of the estimates: fraction x number of patches.
ESTIMATE_SCENARIOS = {
    # The paper's evaluation setting (mask_list05_06): 50-60% holes, about 0.55 of the patches.
    "mask_50_60pct": 0.55,
    # Table 2's timing setting (20-30% holes), 0.25 of the patches. A lower bound: with free-form
    # masks the masked-PATCH fraction exceeds the hole-PIXEL fraction (by ~0.06-0.08 on the
    # 256x256 Places masks used here), and every partly masked patch is a fill step.
    "mask_20_30pct": 0.25,
}
ESTIMATE_FORMULA = ("estimated_e2e_s_per_batch = fill_steps * seconds_per_fill_step_net + encode_s + "
                    "fdm_s + decode_s, where seconds_per_fill_step_net = (e2e_s - encode_s - fdm_s - "
                    "decode_s) / num_iterations (all measured at the same batch size); "
                    "estimated_e2e_s_per_image = that / batch_size; assumes every image of the batch "
                    "needs fill_steps steps. ESTIMATES, not measurements.")


# -- weights -------------------------------------------------------------------------------------

def random_variables(module, *inputs, seed: int = 0):
    """Variables of `module` from its abstract init, filled with numpy (flax init of the 111M
    transformer compiles one RNG program per parameter and takes far longer; weights do not change
    the cost): kernels U(+-1/sqrt(fan_in)), LayerNorm scales 1, codebook N(0, 1), the rest U(+-0.05)."""
    rng = np.random.default_rng(seed)
    abstract = abstract_variables(module, *inputs)

    def leaf(path, x):
        name = str(getattr(path[-1], "key", path[-1]))
        if name == "kernel":
            b = 1.0 / np.sqrt(max(int(np.prod(x.shape[:-1])), 1))
            v = (rng.random(x.shape, dtype=np.float32) * 2 - 1) * b
        elif name == "scale":
            v = np.ones(x.shape, np.float32)
        elif name == "cluster_size":
            v = np.zeros(x.shape, np.float32)
        elif name in ("embedding", "embedding_avg"):
            v = rng.standard_normal(x.shape, dtype=np.float32)
        else:
            v = (rng.random(x.shape, dtype=np.float32) * 2 - 1) * 0.05
        return jnp.asarray(v.astype(x.dtype))

    return jax.tree_util.tree_map_with_path(leaf, abstract)


# -- data ----------------------------------------------------------------------------------------

def limit_masked_patches(mask: np.ndarray, patch: int, n: int | None) -> np.ndarray:
    """mask (H, W) float, 1 = known. Keeps the holes of the first `n` masked patches (row-major);
    every pixel of the other patches becomes known. n None: unchanged."""
    if n is None:
        return mask
    h, w = mask.shape[0] // patch, mask.shape[1] // patch
    has_hole = (mask < 1).reshape(h, patch, w, patch).any(axis=(1, 3)).ravel()
    keep = np.zeros(h * w, bool)
    keep[np.flatnonzero(has_hole)[:n]] = True
    keep_px = np.repeat(np.repeat(keep.reshape(h, w), patch, 0), patch, 1)
    return np.where(keep_px, mask, np.float32(1)).astype(np.float32)


def count_masked_patches(mask: np.ndarray, patch: int) -> int:
    h, w = mask.shape[0] // patch, mask.shape[1] // patch
    return int((mask < 1).reshape(h, patch, w, patch).any(axis=(1, 3)).sum())


def load_pairs(data_dir: Path, size: int):
    """All (name, image float32 (size, size, 3) in [0, 255], mask float32 (size, size), 1 = known).
    Images of another size: smaller side scaled to `size` (cv2.INTER_AREA), then the centre crop;
    masks follow with cv2.INTER_NEAREST (fdm_jax.io.images.fit_mask). For 256 -> 64 that is a plain
    resize of the whole image."""
    images = sorted(p for p in (data_dir / "images").iterdir() if p.is_file())
    if not images:
        raise SystemExit(f"no images in {data_dir / 'images'}")
    out = []
    for p in images:
        mp = data_dir / "masks" / (p.stem + ".png")
        img = read_image(p)
        m = read_mask(mp)  # 255 = hole -> 1 = known
        shape = img.shape[:2]
        img, geometry = resize_and_center_crop(img, size, interpolation=cv2.INTER_AREA)
        m = fit_mask(m, shape, geometry, size, str(mp))
        out.append((p.name, img.astype(np.float32), m.astype(np.float32)))
    return out


# -- timing --------------------------------------------------------------------------------------

def measure(fn, args, *, repeats: int, warmup: int, label: str, budget_s: float | None = None) -> dict:
    """AOT-compile fn(*args), run `warmup` untimed calls, then `repeats` timed ones.

    With `budget_s` (for the expensive measurements of a big model on a slow device): the first call
    is a warm-up only if it took less than budget_s / 2, otherwise it is the one timed call (and
    warmup_calls is 0); further timed calls are made while the timed total plus one more call fits in
    budget_s. At least one call is always timed."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0

    def call():
        t = time.perf_counter()
        o = jax.block_until_ready(compiled(*args))
        return o, time.perf_counter() - t

    times, done_warmup = [], 0
    out = None
    if budget_s is None:
        for _ in range(warmup):
            out, _ = call()
            done_warmup += 1
        for _ in range(repeats):
            out, t = call()
            times.append(t)
    else:
        if warmup > 0:
            out, t = call()
            if t < budget_s / 2:
                done_warmup = 1
            else:
                times.append(t)  # too expensive to throw away: the first call is the timed one
        while len(times) < repeats and (not times or sum(times) + statistics.median(times) <= budget_s):
            out, t = call()
            times.append(t)
    med = statistics.median(times)
    print(f"  {label}: {med:.4g} s (median of {len(times)}, {done_warmup} warm-up; compile {compile_s:.3g} s)",
          file=sys.stderr, flush=True)
    return {"median_s": med, "min_s": min(times), "times_s": times, "compile_s": compile_s,
            "warmup_calls": done_warmup, "timed_calls": len(times), "budget_s": budget_s, "output": out}


def _stats(m: dict) -> dict:
    return {k: v for k, v in m.items() if k != "output"}


# -- the benchmark -------------------------------------------------------------------------------

def device_info() -> dict:
    d = jax.devices()[0]
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "device_name": str(d), "device_kind": d.device_kind, "platform": d.platform,
        "device_count": jax.device_count(), "cpu_count": os.cpu_count(), "cpu_count_usable": usable,
        "cpu_model": cpu_model or platform.processor(), "jax_version": jax.__version__,
        "jaxlib_version": _version("jaxlib"),
        "flax_version": flax.__version__, "numpy_version": np.__version__,
        "python_version": platform.python_version(),
    }


def _version(dist: str):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # noqa: BLE001
        return None


def sanitize(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_") or "device"


def default_out(spec: str) -> Path:
    path, variant = split_spec(spec)
    name = "sampling_" + sanitize(Path(path).stem)
    if variant:
        name += "_" + sanitize(variant)
    name += "_" + sanitize(jax.devices()[0].device_kind)
    return REPO_ROOT / "benchmarks" / "results" / f"{name}.json"


def run_batch(models, variables, pairs, b: int, args, size: int) -> dict:
    codec, sampler, fdm = models["codec"], models["sampler"], models["fdm"]
    cv, sv, fv = variables
    patch = codec.patch_size
    grid = size // patch
    picked = [pairs[i % len(pairs)] for i in range(b)]
    masks_full = [m for _, _, m in picked]
    masks = [limit_masked_patches(m, patch, args.max_masked_patches) for m in masks_full]
    image = jnp.asarray(np.stack([im for _, im, _ in picked]))
    mask = jnp.asarray(np.stack(masks)[..., None])
    rng = np.random.default_rng(1)
    feat = jnp.asarray(rng.standard_normal((b, grid, grid, codec.embed_dim), dtype=np.float32))
    seq = feat.reshape(b, grid * grid, codec.embed_dim)
    m_idx = masked_patch_index(mask, patch)
    key = jax.random.key(args.seed)
    light = dict(repeats=args.repeats, warmup=args.warmup)
    heavy_s = dict(repeats=args.sampler_repeats, warmup=args.heavy_warmup, budget_s=args.heavy_budget_s)
    heavy_e = dict(repeats=args.e2e_repeats, warmup=args.heavy_warmup, budget_s=args.heavy_budget_s)

    print(f"batch {b}:", file=sys.stderr, flush=True)
    fdm_m = measure(lambda v, q, mm: fdm.apply(v, q, mm), (fv, feat, m_idx), label="fdm", **light)
    enc_m = measure(lambda v, x, mm: codec.apply(v, x, mm, method=PatchVQVAE.get_features),
                    (cv, image, mask), label="encode", **light)
    dec_m = measure(lambda v, f, x, mm: codec.apply(v, f, x, mm, method=PatchVQVAE.decode_with_feature),
                    (cv, feat, image, mask), label="decode", **light)
    smp_m = measure(lambda v, s: sampler.apply(v, s), (sv, seq), label="sampler pass", **heavy_s)

    def e2e(cv_, sv_, fv_, x, mm, k):
        return inpaint(codec, cv_, sampler, sv_, fdm, fv_, x, mm, k, top_k=args.top_k,
                       num_token_per_iter=args.num_token_per_iter)

    e2e_m = measure(e2e, (cv, sv, fv, image, mask, key), label="end-to-end inpaint", **heavy_e)
    out = e2e_m["output"]
    num_iterations = int(out["num_iterations"])
    num_filled = [int(x) for x in np.asarray(out["num_filled"])]
    masked = [count_masked_patches(m, patch) for m in masks]
    masked_full = [count_masked_patches(m, patch) for m in masks_full]
    per_iter = args.num_token_per_iter
    passes = 1 if per_iter == -1 or per_iter >= grid * grid else -(-max(masked) // per_iter)
    if num_filled != masked or num_iterations != passes:
        raise RuntimeError(f"fill count mismatch: num_filled {num_filled}, masked {masked}, "
                           f"num_iterations {num_iterations}")

    e2e_s = e2e_m["median_s"]
    fixed_s = enc_m["median_s"] + fdm_m["median_s"] + dec_m["median_s"]
    step_s = e2e_s / num_iterations
    step_net_s = max(e2e_s - fixed_s, 0.0) / num_iterations
    res = {
        "batch_size": b,
        "images": [n for n, _, _ in picked],
        "fdm_s": fdm_m["median_s"],
        "fdm_s_per_image": fdm_m["median_s"] / b,
        "sampler_pass_s": smp_m["median_s"],
        "sampler_pass_s_per_image": smp_m["median_s"] / b,
        "encode_s": enc_m["median_s"],
        "decode_s": dec_m["median_s"],
        "e2e_s": e2e_s,
        "e2e_s_per_image": e2e_s / b,
        "images_per_s": b / e2e_s,
        "num_iterations": num_iterations,
        "masked_patches_per_image": masked,
        "masked_patches_total": int(sum(masked)),
        "masked_patches_max": int(max(masked)),
        "masked_patches_per_image_without_limit": masked_full,
        "hole_fraction_per_image": [float((m < 1).mean()) for m in masks],
        "hole_fraction_per_image_without_limit": [float((m < 1).mean()) for m in masks_full],
        "seconds_per_fill_step": step_s,
        "seconds_per_fill_step_net": step_net_s,
        "timings": {"fdm": _stats(fdm_m), "encode": _stats(enc_m), "decode": _stats(dec_m),
                    "sampler_pass": _stats(smp_m), "e2e": _stats(e2e_m)},
    }
    scenarios = {name: int(round(frac * grid * grid)) for name, frac in ESTIMATE_SCENARIOS.items()}
    if args.max_masked_patches is not None:
        scenarios["unlimited_masks"] = int(max(masked_full))  # these images' own masks, no limit
    for name, steps in scenarios.items():
        est_batch = steps * step_net_s + fixed_s
        res[f"estimated_fill_steps_{name}"] = steps
        res[f"estimated_e2e_s_per_batch_{name}"] = est_batch
        res[f"estimated_e2e_s_per_image_{name}"] = est_batch / b
        res[f"estimated_images_per_s_{name}"] = b / est_batch
    return res


def print_table(report: dict) -> None:
    ref = report["paper_reference"]
    lim = report["max_masked_patches"]
    print(f"\n{report['config']} on {report['device']['device_kind']} ({report['device']['platform']}, "
          f"{report['device']['cpu_count_usable']} CPUs), {report['image_size']}x{report['image_size']}, "
          f"top_k={report['top_k']}, max_masked_patches={lim}")
    hdr = ("batch", "FDM s", "pass s", "enc+dec s", "e2e s/img", "img/s", "iters", "s/step",
           "EST s/img 50-60%", "EST s/img 20-30%")
    rows = []
    for r in report["results"]:
        rows.append((str(r["batch_size"]), f"{r['fdm_s']:.4g}", f"{r['sampler_pass_s']:.4g}",
                     f"{r['encode_s'] + r['decode_s']:.4g}", f"{r['e2e_s_per_image']:.4g}",
                     f"{r['images_per_s']:.4g}", str(r["num_iterations"]), f"{r['seconds_per_fill_step']:.4g}",
                     f"{r['estimated_e2e_s_per_image_mask_50_60pct']:.4g}",
                     f"{r['estimated_e2e_s_per_image_mask_20_30pct']:.4g}"))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(hdr)]
    print("  ".join(h.rjust(w) for h, w in zip(hdr, widths)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    print("FDM s / pass s / e2e: measured (median; FDM and pass per call for the whole batch). "
          "EST columns: ESTIMATES, not measurements (" + ", ".join(
              f"{k}: {report['results'][0][f'estimated_fill_steps_{k}']} steps" for k in ESTIMATE_SCENARIOS) + ").")
    print(f"paper (Table 2, {ref['mask_ratio']} masks, RTX 2080 Ti): PUT+FDM {ref['put_fdm_s_per_image']} s/image, "
          f"FDM {ref['fdm_s']} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/paris.py", help="config spec, e.g. configs/paris.py[:tiny]")
    ap.add_argument("--batch-sizes", default="1,16", help="comma-separated batch sizes (default 1,16)")
    ap.add_argument("--max-masked-patches", type=int, default=None,
                    help="keep only each image's first N masked patches' holes (default: all)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/"
                    "sampling_<config-stem>[_<variant>]_<device-kind>.json)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="folder with images/ and masks/ (255 = hole)")
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--num-token-per-iter", type=int, default=1,
                    help="patches filled per sampler pass (paper: 1; -1 = all in one pass)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls of FDM, encode, decode (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls after compiling FDM, encode, decode")
    ap.add_argument("--sampler-repeats", type=int, default=5, help="timed sampler passes (default 5)")
    ap.add_argument("--e2e-repeats", type=int, default=3, help="timed end-to-end calls (default 3)")
    ap.add_argument("--heavy-warmup", type=int, default=1,
                    help="untimed calls after compiling the sampler pass and end-to-end (default 1)")
    ap.add_argument("--heavy-budget-s", type=float, default=None,
                    help="time budget (s) per sampler-pass / end-to-end measurement: fewer timed calls "
                         "(at least one) and no warm-up call when one call is too slow (default: none)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.max_masked_patches is not None and args.max_masked_patches < 1:
        ap.error("--max-masked-patches must be >= 1")
    for name in ("repeats", "sampler_repeats", "e2e_repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x.strip()]

    t_start = time.perf_counter()
    config = load_config(args.config)
    size = int(config.image_size)
    models = build_models(config.model)
    codec, sampler, fdm = models["codec"], models["sampler"], models["fdm"]
    grid = size // codec.patch_size
    t0 = time.perf_counter()
    cv = random_variables(codec, jnp.zeros((1, size, size, codec.in_ch)), jnp.ones((1, size, size, 1)), seed=args.seed)
    sv = random_variables(sampler, jnp.zeros((1, sampler.seq_len, sampler.feature_dim)), seed=args.seed + 1)
    fv = random_variables(fdm, jnp.zeros((1, grid, grid, fdm.embed_dim)), jnp.ones((1, grid, grid, 1)),
                          seed=args.seed + 2)
    print(f"random weights: {time.perf_counter() - t0:.2f} s", file=sys.stderr, flush=True)
    pairs = load_pairs(Path(args.data), size)

    results = [run_batch(models, (cv, sv, fv), pairs, b, args, size) for b in batch_sizes]
    n_params = {k: count_params(v["params"])
                for k, v in (("codec", cv), ("sampler", sv), ("fdm", fv))}
    report = {
        "benchmark": "fdm_jax.put_fdm.sampling inference cost",
        "config": args.config,
        "config_path": os.path.relpath(resolve_config_path(split_spec(args.config)[0]), REPO_ROOT),
        "image_size": size,
        "patch_grid": [grid, grid],
        "num_patches": grid * grid,
        "top_k": args.top_k,
        "num_token_per_iter": args.num_token_per_iter,
        "max_masked_patches": args.max_masked_patches,
        "weights": "random (numpy fill of jax.eval_shape(init)); weights do not change the cost",
        "num_params": n_params,
        "data": {"dir": os.path.relpath(args.data, REPO_ROOT), "num_pairs": len(pairs),
                 "mask_convention": "PNG 255 = hole; known = 1 - m/255",
                 "resize": ("none (images are already image_size)" if size == 256 else
                            "smaller side to image_size with cv2.INTER_AREA (images) / cv2.INTER_NEAREST "
                            "(masks), then centre crop (a plain resize for square images)")},
        "timing_method": ("jax.jit(...).lower(...).compile() first (compile_s), then warmup_calls untimed and "
                          "timed_calls timed calls, each wrapped in jax.block_until_ready; *_s = median"),
        "repeats": {"fdm_encode_decode": args.repeats, "warmup": args.warmup,
                    "sampler_pass": args.sampler_repeats, "e2e": args.e2e_repeats,
                    "heavy_warmup": args.heavy_warmup, "heavy_budget_s": args.heavy_budget_s},
        "device": device_info(),
        "results": results,
        "estimate_note": ESTIMATE_FORMULA,
        "estimate_scenarios": {k: {"patch_fraction": v, "fill_steps": int(round(v * grid * grid))}
                               for k, v in ESTIMATE_SCENARIOS.items()},
        "paper_reference": PAPER_REFERENCE,
        "total_wall_s": None,
        "command": "python " + " ".join([os.path.relpath(__file__, os.getcwd())] + (sys.argv[1:] if argv is None else list(argv))),
    }
    report["total_wall_s"] = time.perf_counter() - t_start
    out = Path(args.out) if args.out else default_out(args.config)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"wrote {out} ({report['total_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
