"""Sampling settings of the shipped put_fdm_small on its held-out photos: wall time per image and
LPIPS / FID / PSNR / SSIM / L1 in the hole, one table.

    python benchmarks/put_fdm_small_schedules.py                 # -> benchmarks/results/put_fdm_small_schedules.json
    python benchmarks/put_fdm_small_schedules.py --sweep top_k   # -> benchmarks/results/put_fdm_small_topk.json

--sweep schedules: the original's sequential schedule with num_token_per_iter 1 (the shipped default) and
4, and the parallel (MaskGIT cosine) schedule of fdm_jax/put_fdm/sampling.py with 8, 16 (the config's
num_passes) and 32 passes, all at the shipped top_k (20).
--sweep top_k: the sequential schedule (num_token_per_iter 1) at top_k 1 (greedy) and 5; top_k 20 (the
shipped value) is the first row of the schedules sweep (add it here with --with-shipped-top-k). A
diagnostic on held-out photos: the shipped default is not changed from it.

Images, masks and keys are those of benchmarks/put_fdm_small_eval.py (the 50 held-out photos, NVIDIA
masks assigned per bucket at seed 0, one key per (seed, bucket, image)), so the sequential k=1, top-k 20
row of bucket 0.2-0.3 reproduces that benchmark's put_fdm row. By default one bucket (20-30 % holes),
to keep the run affordable on one CPU core. Metrics of sample 0, known pixels pasted back, FDM on;
FID with the same 50 ground-truth images as the real set (biased and noisy at 50 images: compare rows,
not papers).

Wall time: the sampling program alone (jit_inpaint_samples, blocked until done), in batches of 10
images as the evaluation runs them; `s_per_image` is the mean over batches 2..5 (batch 1 includes
compiling, reported as first_batch_s); `cpu_s_per_image` the same in CPU seconds of this process
(time.process_time), which the other jobs of a shared machine disturb less than wall time; the 1-minute
load average before and after each row is recorded. A sequential batch runs until its image with the most holes is
done, so per-image time is a batch's time / 10. `passes` is the transformer passes per batch (mean).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
SWEEPS = {
    "schedules": [("sequential", 1, 16, None), ("sequential", 4, 16, None), ("parallel", 1, 8, None),
                  ("parallel", 1, 16, None), ("parallel", 1, 32, None)],
    # top_k 20 (the shipped value) with 1 token per pass is the first row of "schedules": the same program,
    # images, masks and keys, so the same samples; --with-shipped-top-k runs it here again.
    "top_k": [("sequential", 1, 16, 1), ("sequential", 1, 16, 5)],
}


def label(st: dict) -> str:
    if st["schedule"] == "parallel":
        return f"parallel, {st['num_passes']} passes, top-{st['top_k']}"
    return f"sequential, {st['num_token_per_iter']} token/pass, top-{st['top_k']}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="put_fdm_small")
    ap.add_argument("--sweep", choices=tuple(SWEEPS), default="schedules")
    ap.add_argument("--buckets", default="0.2-0.3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="first N held-out images only (a quick check)")
    ap.add_argument("--no-fid", action="store_true")
    ap.add_argument("--with-shipped-top-k", action="store_true", help="--sweep top_k: also run top_k 20")
    ap.add_argument("--out", default=None, help="default benchmarks/results/put_fdm_small_<sweep>.json")
    args = ap.parse_args(argv)
    out_path = Path(args.out or REPO / "benchmarks" / "results" /
                    f"put_fdm_small_{'schedules' if args.sweep == 'schedules' else 'topk'}.json")

    import jax

    import fdm_jax
    from fdm_jax.evaluation import unit_key
    from put_fdm_small_eval import fid, heldout_setup, model_outputs, sampling_settings, unit_metrics

    t0 = time.perf_counter()
    model = fdm_jax.load(args.checkpoint)
    size = model.image_size
    names, images, buckets, masks, assignment, lpips_params, fid_fn, real_feats = heldout_setup(
        size, args.buckets, args.seed, limit=args.limit, with_fid=not args.no_fid)
    n = len(names)

    rows = []
    sweep = SWEEPS[args.sweep] + ([("sequential", 1, 16, 20)] if args.sweep == "top_k" and args.with_shipped_top_k else [])
    for schedule, k, passes, top_k in sweep:
        st = sampling_settings(model, top_k, k, schedule, passes)
        for b in buckets:
            chosen = assignment[b.label]
            known = np.stack([masks.load(c["mask_index"], size) for c in chosen])[..., None].astype(np.float32)
            keys = [unit_key(args.seed, b.label, i) for i in range(n)]
            load = os.getloadavg()[0]
            times: list = []
            mo = model_outputs(model, images, known, keys, settings=st, extras=False, batch_times=times)
            steady = times[1:] if len(times) > 1 else times
            count = sum(t[0] for t in steady)
            row = {"setting": label(st), **st, "bucket": b.label,
                   "hole_ratio_mean": float(np.mean([c["hole_ratio"] for c in chosen])), "num_images": n,
                   "s_per_image": float(sum(t[1] for t in steady) / count),
                   "cpu_s_per_image": float(sum(t[3] for t in steady) / count),
                   "first_batch_s": float(times[0][1]), "batch_s": [round(t[1], 3) for t in times],
                   "passes": float(np.mean([t[2] for t in times])),
                   "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)]}
            um = unit_metrics(images, mo["put_fdm"], known, lpips_params)
            row.update({k2: float(np.mean(v)) for k2, v in um.items()})
            if fid_fn is not None:
                row["fid"] = fid(real_feats, fid_fn(mo["put_fdm"]))
            rows.append(row)
            print(json.dumps({k2: (round(v, 4) if isinstance(v, float) else v) for k2, v in row.items()
                              if k2 != "batch_s"}), flush=True)

    results = {"sweep": args.sweep, "rows": rows, "setup": {
        "checkpoint": args.checkpoint, "image_size": size, "num_images": n,
        "heldout_list": "configs/put_fdm_small_lists/heldout.txt", "buckets": [b.label for b in buckets],
        "seed": args.seed, "sample": "sample 0 per image, known pixels pasted back, FDM on",
        "batch": 10, "timing": "jit_inpaint_samples alone, blocked; s_per_image (wall) and cpu_s_per_image "
                             "(process CPU time) = mean over batches 2..5",
        "lpips": "vgg, spatial mean (PUT cal_lpips.py)", "psnr_ssim": "PUT cal_psnr.py conventions (grey)",
        "fid": None if fid_fn is None else "pytorch-fid Inception pool3; real set = the same 50 ground truths",
        "command": "python benchmarks/put_fdm_small_schedules.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": platform.platform(), "jax": jax.__version__, "backend": jax.default_backend(),
        "wall_s": time.perf_counter() - t0}}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    print(render(results))
    print(f"wrote {out_path}")
    return 0


def render(results: dict) -> str:
    lines = ["| setting | holes | wall s / image | CPU s / image | passes | LPIPS ↓ | FID ↓ | PSNR ↑ | SSIM ↑ "
             "| L1 in hole ↓ |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        f = "–" if r.get("fid") is None else f"{r['fid']:.1f}"
        lines.append(f"| {r['setting']} | {r['bucket']} | {r['s_per_image']:.2f} | {r['cpu_s_per_image']:.2f} | "
                     f"{r['passes']:.0f} | {r['lpips']:.3f} | "
                     f"{f} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['l1_hole']:.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
