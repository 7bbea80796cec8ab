"""The shipped small model on its held-out photos: against OpenCV inpainting, with and without FDM,
and FDM's Table-3 feature distance.

    python benchmarks/put_fdm_small_eval.py                          # the shipped put_fdm_small
    python benchmarks/put_fdm_small_eval.py --checkpoint runs_small/put_fdm_small --out /tmp/x.json
    python benchmarks/put_fdm_small_eval.py --methods oracle,oracle_fdm,telea,ns,mean_colour \
        --out benchmarks/results/put_fdm_small_oracle.json          # the codec's bound, no sampling

Images: the 50 held-out photos of configs/put_fdm_small_lists/heldout.txt (never trained on), read
from ../shared/data/images with the model's eval preprocessing (short side to 128, centre crop),
rounded to uint8. Masks: the NVIDIA/PConv irregular masks of ../shared/data/masks/pconv_test; for
each hole-ratio bucket (default 20-30 % and 30-40 %, measured after the nearest resize to 128) one
mask per image, chosen by `fdm_jax.evaluation.assign_masks` at a fixed seed (0), so every method
sees the same image/mask pairs.

Methods, all with the known pixels pasted back (the comparison the issue asks for):
  * put_fdm      sample 0 of the model (top-k and num_token_per_iter of the shipped config), FDM on;
  * put_no_fdm   the SAME sampled tokens decoded without FDM (the FDM repository's pipeline without
                 FDM: generated features straight into the (tuned) decoder);
  * telea, ns    cv2.inpaint(INPAINT_TELEA / INPAINT_NS, radius 5) on the uint8 image and hole mask;
  * mean_colour  the hole filled with the mean colour of the known pixels (a trivial floor);
  * oracle       a diagnostic, not a method: the codec alone, decoding the GROUND TRUTH's own tokens at
                 the masked patches (the full image quantized without a mask, i.e. the codes the sampler
                 is trained to predict), the masked image's features at the known patches, no FDM. It is
                 what a sampler that always drew the true token would give: the best any sampler can
                 reach with this codec;
  * oracle_fdm   the same features through FDM before decoding (what the FDM pipeline would give).
--methods picks a subset (without put_fdm and put_no_fdm nothing is sampled); --top-k,
--num-token-per-iter, --schedule and --num-passes override the shipped config's sampling settings.
Metrics per bucket (and over both buckets, "all"): LPIPS (VGG, spatial mean: PUT's cal_lpips.py),
PSNR and SSIM (PUT's cal_psnr.py conventions on grey images: fdm_jax.metrics.image_quality.psnr_put,
ssim_put), L1 in the hole (mean |a - b| / 255 over hole pixels, RGB), and FID (pytorch-fid Inception,
the 50 / 100 ground-truth images as the real set). FID on 50-100 images is strongly biased upwards
and noisy (2048-d statistics from 50 samples); compare it between methods on the same images only.

FDM's Table 3 (the paper: L2 between generated features and the ideal features of the ground truth at
masked patches, 3.68 without FDM -> 2.87 with it, -22 %): here, per image, the mean over the patches
a hole touches (masked_patch_idx = 1) of ||G - F*|| (G: the sampled features, no FDM) and ||V - F*||
(V = G + FDM's correction), F* the codec encoder's unquantized features of the full ground-truth
image. Also the phase-2 version (quantized TRUE features q vs q + FDM, fdm_jax.metrics.feature_distance),
which measures FDM without the sampler's errors.

Writes JSON (default benchmarks/results/put_fdm_small_eval.json) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
HELDOUT = REPO / "configs" / "put_fdm_small_lists" / "heldout.txt"
METHODS = ("put_fdm", "put_no_fdm", "telea", "ns", "mean_colour", "oracle", "oracle_fdm")
SAMPLED = ("put_fdm", "put_no_fdm")
FEATURE_KEYS = ("feat_no_fdm", "feat_fdm", "phase2_quantized", "phase2_with_fdm")


def load_heldout(size: int, list_file: Path = HELDOUT, limit: int | None = None):
    """(names, uint8 images (N, size, size, 3)) with the eval preprocessing."""
    from fdm_jax.data.preprocess import preprocess_image
    from fdm_jax.data.sources import read_rgb

    names = [ln.strip() for ln in list_file.read_text().splitlines() if ln.strip()]
    if limit:
        names = names[:limit]
    images = [preprocess_image(read_rgb(SHARED / "images" / n), size=size, smallest_max_size=size) for n in names]
    return names, np.stack([np.clip(np.round(x), 0, 255).astype(np.uint8) for x in images])


def cv2_inpaint(images: np.ndarray, known: np.ndarray, method: str, radius: int = 5) -> np.ndarray:
    import cv2

    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    out = []
    for x, m in zip(images, known):
        hole = (m[..., 0] < 0.5).astype(np.uint8) * 255
        out.append(cv2.inpaint(np.ascontiguousarray(x), hole, radius, flag))
    return np.stack(out)


def mean_colour_fill(images: np.ndarray, known: np.ndarray) -> np.ndarray:
    out = images.astype(np.float32).copy()
    for i in range(len(images)):
        k = known[i, ..., 0] > 0.5
        out[i][~k] = images[i][k].reshape(-1, 3).mean(axis=0)
    return np.round(out).astype(np.uint8)


def sampling_settings(model, top_k=None, num_token_per_iter=None, schedule=None, num_passes=None) -> dict:
    """The shipped config's sampling settings, each overridden where given."""
    sampling = model.config.get("sampling", {})
    given = {"top_k": top_k, "num_token_per_iter": num_token_per_iter, "schedule": schedule, "num_passes": num_passes}
    defaults = {"top_k": 50, "num_token_per_iter": 1, "schedule": "sequential", "num_passes": 16}
    out = {k: given[k] if given[k] is not None else sampling.get(k, defaults[k]) for k in defaults}
    return {k: (str(v) if k == "schedule" else int(v)) for k, v in out.items()}


def model_outputs(model, images: np.ndarray, known: np.ndarray, keys, batch: int = 10, *, settings: dict | None = None,
                  extras: bool = True, batch_times: list | None = None) -> dict:
    """{'put_fdm', 'put_no_fdm': uint8 (N, H, W, 3) known pixels pasted, and with `extras` 'feat_no_fdm',
    'feat_fdm', 'phase2_quantized', 'phase2_with_fdm': per-image mean L2 at masked patches}. `settings`:
    sampling_settings(...) (default: the config's). `batch_times`: a list that receives each batch's
    (images, seconds) of the sampling program alone (blocked until done; the first includes compiling)."""
    import jax
    import jax.numpy as jnp

    from fdm_jax.metrics.feature_distance import feature_distances
    from fdm_jax.put_fdm import PatchVQVAE, masked_patch_index
    from fdm_jax.put_fdm.sampling import composite, jit_inpaint_samples

    codec, sampler, fdm = model.models["codec"], model.models["sampler"], model.models["fdm"]
    v = model.variables
    st = settings or sampling_settings(model)

    @jax.jit
    def decode_extras(cv, fv, image, mask, gen, after):
        ideal = codec.apply(cv, image, method=PatchVQVAE.get_features)["feature"]
        m = masked_patch_index(mask, codec.patch_size)[..., 0]
        n = jnp.sum(m, axis=(1, 2))
        d = lambda a: jnp.sum(jnp.linalg.norm(a - ideal, axis=-1) * m, axis=(1, 2)) / n  # noqa: E731
        no_fdm_img = composite(codec.apply(cv, gen, image, mask, method=PatchVQVAE.decode_with_feature), image, mask)
        out = {"no_fdm_img": no_fdm_img}
        if extras:
            p2 = jax.vmap(lambda x, mk: feature_distances(codec, cv, fdm, fv, x[None], mk[None]))(image, mask)
            out.update({"feat_no_fdm": d(gen), "feat_fdm": d(after), "phase2_quantized": p2["quantized"] / p2["patches"],
                        "phase2_with_fdm": p2["with_fdm"] / p2["patches"]})
        return out

    names = SAMPLED + (FEATURE_KEYS if extras else ())
    res: dict[str, list] = {k: [] for k in names}
    for s in range(0, len(images), batch):
        img = jnp.asarray(images[s:s + batch], jnp.float32)
        msk = jnp.asarray(known[s:s + batch], jnp.float32)
        # One key per image (keys[i], from (seed, bucket, image index)): the samples do not depend on the batching.
        t, c = time.perf_counter(), time.process_time()
        o = jit_inpaint_samples(codec, v["codec"], sampler, v["sampler"], fdm, v["fdm"], img, msk,
                                jnp.stack(keys[s:s + batch]), 1, top_k=st["top_k"],
                                num_token_per_iter=np.int32(st["num_token_per_iter"]), schedule=st["schedule"],
                                num_passes=np.int32(st["num_passes"]))
        o = jax.block_until_ready(o)
        if batch_times is not None:
            batch_times.append((len(img), time.perf_counter() - t, int(np.max(o["num_iterations"])),
                                time.process_time() - c))
        gen, after = o["generated_feature"][0], o["feature_after_fdm"][0]
        fdm_img = composite(o["inpainted_image"][0], img, msk)
        e = decode_extras(v["codec"], v["fdm"], img, msk, gen, after)
        res["put_fdm"].append(np.asarray(fdm_img))
        res["put_no_fdm"].append(np.asarray(e["no_fdm_img"]))
        for k in names[len(SAMPLED):]:
            res[k].append(np.asarray(e[k], np.float64))
    out = {k: np.concatenate(x) for k, x in res.items()}
    for k in SAMPLED:
        out[k] = np.clip(out[k], 0, 255).astype(np.uint8)  # truncation, as the originals save PNGs
    return out


def oracle_outputs(model, images: np.ndarray, known: np.ndarray, batch: int = 10) -> dict:
    """{'oracle', 'oracle_fdm': uint8 (N, H, W, 3), known pixels pasted}: the codec decoding the ground
    truth's own tokens at the patches a sampler fills (token_type != 1), without / with FDM. No sampling."""
    import jax
    import jax.numpy as jnp

    from fdm_jax.put_fdm import PatchVQVAE, apply_fdm, masked_patch_index
    from fdm_jax.put_fdm.patch_masks import UNMASKED
    from fdm_jax.put_fdm.sampling import composite

    codec, fdm = model.models["codec"], model.models["fdm"]
    cv, fv = model.variables["codec"], model.variables["fdm"]

    @jax.jit
    def run(image, mask):
        g = codec.apply(cv, image, mask, method=PatchVQVAE.get_features)  # what the sampler starts from
        truth = codec.apply(cv, image, method=PatchVQVAE.get_features)  # no mask: codes < masked_embed_start
        fill = (g["token_type"] != UNMASKED)[..., None]  # the positions sample_tokens fills
        gen = jnp.where(fill, codec.apply(cv, truth["token"], method=PatchVQVAE.embed), g["feature"])
        m = masked_patch_index(mask, codec.patch_size)
        after, _ = apply_fdm(lambda q, mm: fdm.apply(fv, q, mm), gen, g["feature"], m)
        dec = lambda f: composite(codec.apply(cv, f, image, mask, method=PatchVQVAE.decode_with_feature),  # noqa: E731
                                  image, mask)
        return {"oracle": dec(gen), "oracle_fdm": dec(after)}

    res: dict[str, list] = {"oracle": [], "oracle_fdm": []}
    for s in range(0, len(images), batch):
        o = run(jnp.asarray(images[s:s + batch], jnp.float32), jnp.asarray(known[s:s + batch], jnp.float32))
        for k in res:
            res[k].append(np.asarray(o[k]))
    return {k: np.clip(np.concatenate(x), 0, 255).astype(np.uint8) for k, x in res.items()}


def unit_metrics(gt: np.ndarray, fake: np.ndarray, known: np.ndarray, lpips_params) -> dict:
    from fdm_jax.metrics import image_quality as iq
    from fdm_jax.metrics.lpips import lpips

    hole = known[..., 0] < 0.5
    l1_hole = [float(np.abs(g.astype(np.float64) - f)[h].mean() / 255.0) for g, f, h in zip(gt, fake, hole)]
    lp = []
    for s in range(0, len(gt), 10):
        lp.append(np.asarray(lpips(lpips_params, gt[s:s + 10], fake[s:s + 10], spatial_mean=True), np.float64).ravel())
    return {"lpips": np.concatenate(lp).tolist(),
            "psnr": [float(v) for v in np.atleast_1d(iq.psnr_put(gt, fake))],
            "ssim": [float(v) for v in np.atleast_1d(iq.ssim_put(gt, fake))],
            "l1_hole": l1_hole}


def fid(real_feats: np.ndarray, fake_feats: np.ndarray):
    from fdm_jax.evaluation.runner import _fid

    value, err = _fid(real_feats, fake_feats)
    return value if err is None else None


def heldout_setup(size: int, buckets: str, seed: int, *, limit=None, with_fid: bool = True):
    """What every put_fdm_small benchmark evaluates on: (names, images, buckets, masks, assignment,
    lpips_params, fid_fn, real_feats) - the held-out photos at `size`, the NVIDIA masks assigned per
    bucket at `seed`, LPIPS-vgg, and (with_fid) the FID features and those of the ground truths."""
    from fdm_jax.data.masks import ProvidedMasks
    from fdm_jax.evaluation import assign_masks, parse_buckets
    from fdm_jax.metrics.lpips import load_lpips

    names, images = load_heldout(size, limit=limit)
    buckets = parse_buckets(buckets)
    masks = ProvidedMasks(SHARED / "masks" / "pconv_test")
    assignment = assign_masks(masks, buckets, len(names), size, seed)
    fid_fn = real_feats = None
    if with_fid:
        from fdm_jax.metrics.fid import InceptionFeatures

        fid_fn = InceptionFeatures("pytorch_fid", batch_size=10)
        real_feats = fid_fn(images)
    return names, images, buckets, masks, assignment, load_lpips("vgg"), fid_fn, real_feats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="put_fdm_small", help="shipped model name or training run root")
    ap.add_argument("--buckets", default="0.2-0.3,0.3-0.4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="first N held-out images only (a quick check)")
    ap.add_argument("--no-fid", action="store_true")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    ap.add_argument("--top-k", type=int, default=None, help="default: the config's sampling.top_k")
    ap.add_argument("--num-token-per-iter", type=int, default=None)
    ap.add_argument("--schedule", choices=("sequential", "parallel"), default=None)
    ap.add_argument("--num-passes", type=int, default=None)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "put_fdm_small_eval.json"))
    ap.add_argument("--grid", default=None, help="also write a labelled grid PNG of the first --grid-rows images")
    ap.add_argument("--grid-rows", type=int, default=6)
    args = ap.parse_args(argv)

    import jax

    import fdm_jax
    from fdm_jax.evaluation import unit_key

    t0 = time.perf_counter()
    methods = tuple(m for m in args.methods.split(",") if m)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        ap.error(f"--methods: unknown {', '.join(unknown)}; expected a subset of {', '.join(METHODS)}")
    model = fdm_jax.load(args.checkpoint)
    settings = sampling_settings(model, args.top_k, args.num_token_per_iter, args.schedule, args.num_passes)
    sampled = any(m in SAMPLED for m in methods)
    size = model.image_size
    names, images, buckets, masks, assignment, lpips_params, fid_fn, real_feats = heldout_setup(
        size, args.buckets, args.seed, limit=args.limit, with_fid=not args.no_fid)
    n = len(names)

    results = {"buckets": {}, "all": {}}
    per_method_all: dict[str, dict] = {m: {} for m in methods}
    fake_feats_all: dict[str, list] = {m: [] for m in methods}
    feats_all: dict[str, list] = {}
    timings = {}
    grid_rows = []
    for b in buckets:
        chosen = assignment[b.label]
        known = np.stack([masks.load(c["mask_index"], size) for c in chosen])[..., None].astype(np.float32)
        keys = [unit_key(args.seed, b.label, i) for i in range(n)]
        fakes = {}
        if sampled:
            t = time.perf_counter()
            mo = model_outputs(model, images, known, keys, settings=settings)
            timings[f"model_{b.label}_s"] = time.perf_counter() - t
            print(f"[{b.label}] sampled {n} images in {timings[f'model_{b.label}_s']:.0f} s", flush=True)
            fakes.update({k: mo[k] for k in SAMPLED})
        if "oracle" in methods or "oracle_fdm" in methods:
            fakes.update(oracle_outputs(model, images, known))
        if "telea" in methods or "ns" in methods:
            fakes.update({"telea": cv2_inpaint(images, known, "telea"), "ns": cv2_inpaint(images, known, "ns")})
        fakes["mean_colour"] = mean_colour_fill(images, known)
        entry = {"hole_ratio_mean": float(np.mean([c["hole_ratio"] for c in chosen])), "num_images": n,
                 "masks": [c["mask"] for c in chosen], "methods": {}}
        for m in methods:
            um = unit_metrics(images, fakes[m], known, lpips_params)
            for k, vals in um.items():
                per_method_all[m].setdefault(k, []).extend(vals)
            row = {k: float(np.mean(vals)) for k, vals in um.items()}
            if fid_fn is not None:
                ff = fid_fn(fakes[m])
                fake_feats_all[m].append(ff)
                row["fid"] = fid(real_feats, ff)
            entry["methods"][m] = row
        if sampled:
            for k in FEATURE_KEYS:
                feats_all.setdefault(k, []).extend(mo[k].tolist())
            entry["table3"] = _table3({k: mo[k] for k in FEATURE_KEYS})
        results["buckets"][b.label] = entry
        print(f"[{b.label}] " + json.dumps({m: {k: round(v, 4) for k, v in r.items() if v is not None}
                                           for m, r in entry["methods"].items()}), flush=True)
        if args.grid and len(grid_rows) < args.grid_rows:
            take = min(args.grid_rows - len(grid_rows), n) if b is buckets[-1] else min(args.grid_rows // len(buckets), n)
            for i in range(take):
                grid_rows.append((b.label, names[i], images[i], known[i], {m: fakes[m][i] for m in fakes}))

    for m in methods:
        row = {k: float(np.mean(v)) for k, v in per_method_all[m].items()}
        if fid_fn is not None:
            row["fid"] = fid(np.concatenate([real_feats] * len(buckets)), np.concatenate(fake_feats_all[m]))
        results["all"][m] = row
    if sampled:
        results["all"]["table3"] = _table3({k: np.asarray(v) for k, v in feats_all.items()})
    results["setup"] = {
        "checkpoint": args.checkpoint, "image_size": size, "num_images": n, "heldout_list": str(HELDOUT.relative_to(REPO)),
        "buckets": [b.label for b in buckets], "seed": args.seed, "sample": "sample 0 per image, known pixels pasted back",
        "methods": list(methods), **(settings if sampled else {}),
        "lpips": "vgg, spatial mean (PUT cal_lpips.py)", "psnr_ssim": "PUT cal_psnr.py conventions (grey)",
        "fid": None if fid_fn is None else "pytorch-fid Inception pool3; real set = the same ground-truth images "
               "(all: the 50 ground truths once per bucket); biased and noisy at 50-100 images",
        "cv2": "cv2.inpaint radius 5", "command": "python benchmarks/put_fdm_small_eval.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "paper_table3": {"without_fdm": 3.68, "with_fdm": 2.87, "change": -0.22},
        "machine": platform.platform(), "jax": jax.__version__, "backend": jax.default_backend(),
        "wall_s": None,
    }
    if "sha256" not in results["setup"]:
        try:
            from fdm_jax.inference import shipped

            if shipped.is_shipped(args.checkpoint):
                results["setup"]["sha256"] = shipped.SHIPPED[args.checkpoint]
        except Exception:  # noqa: BLE001
            pass
    results["setup"]["timings_s"] = timings
    results["setup"]["wall_s"] = time.perf_counter() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(render(results, methods))
    if args.grid:
        write_grid(args.grid, grid_rows, size)
    print(f"wrote {args.out}")
    return 0


def _table3(d: dict) -> dict:
    out = {k: float(np.mean(v)) for k, v in d.items()}
    out["feat_change"] = out["feat_fdm"] / out["feat_no_fdm"] - 1
    out["phase2_change"] = out["phase2_with_fdm"] / out["phase2_quantized"] - 1
    out["images_fdm_closer"] = float(np.mean(np.asarray(d["feat_fdm"]) < np.asarray(d["feat_no_fdm"])))
    return out


def render(results: dict, methods=METHODS) -> str:
    lines = []
    cols = ("lpips", "fid", "psnr", "ssim", "l1_hole")
    overall = {"methods": {m: results["all"][m] for m in methods}}
    if "table3" in results["all"]:
        overall["table3"] = results["all"]["table3"]
    for label, entry in list(results["buckets"].items()) + [("all", overall)]:
        title = f"holes {label}" + (f" (mean {entry['hole_ratio_mean']:.1%})" if "hole_ratio_mean" in entry else "")
        lines.append(f"\n### {title}\n")
        lines.append("| method | LPIPS ↓ | FID ↓ | PSNR ↑ | SSIM ↑ | L1 in hole ↓ |")
        lines.append("|---|---|---|---|---|---|")
        for m in methods:
            r = entry["methods"][m]
            cells = []
            for c in cols:
                v = r.get(c)
                cells.append("–" if v is None else (f"{v:.2f}" if c in ("fid", "psnr") else f"{v:.4f}" if c == "l1_hole"
                                                    else f"{v:.3f}"))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        t = entry.get("table3")
        if t is None:
            continue
        lines.append(f"\nTable 3 (generated features vs ideal, masked patches): without FDM {t['feat_no_fdm']:.3f}, "
                     f"with FDM {t['feat_fdm']:.3f} ({t['feat_change']:+.1%}; FDM closer on "
                     f"{t['images_fdm_closer']:.0%} of images); phase-2 (true quantized features) "
                     f"{t['phase2_quantized']:.3f} -> {t['phase2_with_fdm']:.3f} ({t['phase2_change']:+.1%})")
    return "\n".join(lines)


def write_grid(path, rows, size) -> None:
    from fdm_jax.io.images import write_image
    from fdm_jax.io.visualize import labelled_grid

    columns = [(m, t) for m, t in (("telea", "TELEA"), ("ns", "NS"), ("put_no_fdm", "ours, no FDM"),
                                   ("put_fdm", "ours (FDM)")) if all(m in r[4] for r in rows)]
    cells, labels = [], []
    for label, name, image, known, fakes in rows:
        masked = (image.astype(np.float32) * known + 255 * (1 - known)).astype(np.uint8)
        cells.append([masked] + [fakes[m] for m, _ in columns] + [image])
        labels.append(f"{Path(name).stem[:14]}\n{label}")
    grid = labelled_grid(cells, col_labels=["masked input"] + [t for _, t in columns] + ["original"],
                         row_labels=labels)
    write_image(Path(path), grid)


if __name__ == "__main__":
    raise SystemExit(main())
