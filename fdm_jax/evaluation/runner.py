"""The evaluation loop: sample every (bucket, image) unit in fixed batches, write each batch's
samples and per-image metrics as soon as they exist, resume where a previous run stopped, and
aggregate the per-bucket numbers (FID from the saved PNGs at the end). See fdm_jax/evaluation/__init__.py."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import grain
import numpy as np

from fdm_jax.evaluation.buckets import Bucket, EvaluationError, unit_key
from fdm_jax.evaluation.models import InpaintingModel
from fdm_jax.evaluation.records import (FORMAT, _append_records, _check_manifest, _gt_path, _load_all_records,
                                        _load_or_assign, _mask_path, _merge_records, _part_path, _read_png,
                                        _sample_path, _to_uint8, _write_json, _write_mask_png, _write_png)
from fdm_jax.evaluation.report import render_table, _write_grid, _write_plots

METRICS = ("fid", "lpips", "ssim", "psnr", "mae", "l1", "diversity")
UNIT_METRICS = ("lpips", "ssim", "psnr", "mae", "l1")  # per image and sample, vs the ground truth




# ---------------------------------------------------------------------------------------------
# Buckets
# ---------------------------------------------------------------------------------------------


def default_metrics(num_samples: int) -> tuple[str, ...]:
    """Every metric of the table; diversity only with at least 2 samples."""
    return tuple(m for m in METRICS if m != "l1" and (m != "diversity" or num_samples >= 2))


def resolve_metrics(metrics: Sequence[str] | None, num_samples: int) -> tuple[str, ...]:
    """The metrics to compute (None: `default_metrics`), checked against `num_samples`."""
    if num_samples < 1:
        raise EvaluationError(f"--num-samples {num_samples}: must be at least 1")
    metrics = tuple(dict.fromkeys(default_metrics(num_samples) if metrics is None else metrics))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise EvaluationError(f"--metrics: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(METRICS)}")
    if "diversity" in metrics and num_samples < 2:
        raise EvaluationError("--metrics diversity needs --num-samples >= 2")
    return metrics


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


# Table 1 of the FDM paper lists Paris and Places (naturalscene); configs/{paris,places}.py hold its
# numbers in config.reference. Other data (e.g. the demo config, built on paris:tiny) get none.


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "bmp", "webp", "JPG", "JPEG", "PNG")


def open_image_source(data: str, *, split: str = "validation", tfds_data_dir: str | None = None):
    """(ImageSource, description dict) from a folder of images or a prepared tfds dataset.

    A folder holding `images/` and `masks/` (the layout of ../shared/data/images/*_freeform, whose
    masks are that set's own) means its `images/`. Anything that is not a folder is a tfds dataset
    name ('name', 'name/config', a prepared dataset directory) read with `TfdsImageSource`."""
    p = Path(data).expanduser()
    if p.is_dir() and not (p / "dataset_info.json").is_file():
        from fdm_jax.data.sources import FolderImageSource

        name = p.resolve().name
        if (p / "images").is_dir() and (p / "masks").is_dir():
            p = p / "images"
        try:
            source = FolderImageSource(p, _IMAGE_EXTENSIONS)
        except (FileNotFoundError, ValueError) as e:
            raise EvaluationError(f"--data {data}: {e}") from None
        return source, {"kind": "folder", "name": name, "path": str(p.resolve())}
    if str(data).startswith(("/", "./", "../", "~")) and not p.exists():
        raise EvaluationError(f"--data {data}: no such folder")
    from fdm_jax.data.tfds_sources import TfdsImageSource

    try:
        source = TfdsImageSource(str(data), split, tfds_data_dir)
    except (FileNotFoundError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EvaluationError(f"--data {data}: not a folder, and as a tfds dataset: {first}") from None
    except ImportError as e:
        raise EvaluationError(f"--data {data}: not a folder, and tensorflow_datasets is not importable ({e})") from None
    return source, {"kind": "tfds", "name": source.dataset, "split": split, "path": str(tfds_data_dir or "")}


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Output folder: manifest, records, files
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Metrics of one image
# ---------------------------------------------------------------------------------------------

def _unit_metrics(gt: np.ndarray, samples: np.ndarray, metrics: Sequence[str], lpips_params) -> dict:
    """{metric: [value per sample]} of one image (uint8 gt (H, W, 3), samples (N, H, W, 3)), plus
    'diversity': the all-pairs mean LPIPS of the samples."""
    from fdm_jax.metrics import image_quality as iq

    gts = np.broadcast_to(gt, samples.shape)
    pixel = {"ssim": iq.ssim_put, "psnr": iq.psnr_put, "mae": iq.mae_put, "l1": iq.l1_put}
    out: dict[str, Any] = {}
    for m in metrics:
        if m in pixel:
            out[m] = [float(v) for v in np.atleast_1d(pixel[m](gts, samples))]
        elif m == "lpips":
            from fdm_jax.metrics.lpips import lpips

            out[m] = [float(v) for v in np.asarray(lpips(lpips_params, gts, samples, spatial_mean=True), np.float64)]
        elif m == "diversity":
            from fdm_jax.metrics.diversity import diversity

            out[m] = diversity(lpips_params, samples[None], spatial_mean=True).score
    return out


# ---------------------------------------------------------------------------------------------
# The evaluation
# ---------------------------------------------------------------------------------------------

def evaluate(model: InpaintingModel, source, masks, buckets: Sequence[Bucket], *, out_dir, num_samples: int = 5,
             seed: int = 0, metrics: Sequence[str] | None = None, num_images: int | None = None, batch_size: int = 8,
             paste_known: bool = False, max_new_images: int | None = None, lpips_net: str = "vgg",
             fid_features: Callable[[np.ndarray], np.ndarray] | None = None, data_info: dict | None = None,
             masks_info: dict | None = None, progress: bool = True, grid_images: int = 4) -> dict:
    """Evaluate `model` on the first `num_images` images of `source` (all by default) with one mask
    per image and bucket; see the module docstring for the conventions and the output folder.

    max_new_images: stop once at least this many not-yet-done images were processed (whole
    batches); the returned dict then has complete=False and nothing is aggregated: call again to
    continue. fid_features: images (B, H, W, 3) uint8 -> (B, D) features for FID (default: the FID
    Inception with PUT's pytorch-fid preprocessing). Returns the results (also in results.json).

    Several JAX processes (fdm_jax/train/distributed.py): every process runs this with the same
    arguments and `out_dir` on a filesystem they all see. The fixed image chunks are dealt out
    round-robin (chunk c of every bucket to process c mod P, so one process writes each ground
    truth); each process samples its chunks on its own devices and appends its records to
    `records.p<k>.jsonl`; after a barrier process 0 merges them into records.jsonl (in a one-process
    run's order), aggregates and writes results.json, table.md, grid.png and the plots. A chunk's
    samples depend only on its images and keys, so the files equal a one-process run's."""
    metrics = resolve_metrics(metrics, num_samples)
    if batch_size < 1:
        raise EvaluationError(f"--batch-size {batch_size}: must be at least 1")
    if not isinstance(model, InpaintingModel):
        raise EvaluationError(f"model: {type(model).__name__} does not implement InpaintingModel")
    n = len(source) if num_images is None else int(num_images)
    if not 1 <= n <= len(source):
        raise EvaluationError(f"--num-images {num_images}: the data has {len(source)} images")
    if "fid" in metrics and n < 2:
        raise EvaluationError("FID needs at least 2 images (--num-images)")
    if len(masks) == 0:
        raise EvaluationError("masks: the mask folder holds no masks")
    buckets = tuple(buckets)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [source.name(i) for i in range(n)]
    unit_metrics = [m for m in metrics if m != "fid"]
    data_info = dict(data_info or {"kind": type(source).__name__})
    masks_info = dict(masks_info or {"kind": "pconv", "name": Path(getattr(masks, "folder", "masks")).name})
    masks_info.setdefault("num_files", len(masks))
    checked = {
        "model": model.fingerprint(),
        "data": {"kind": data_info.get("kind"), "name": data_info.get("name"), "split": data_info.get("split"),
                 "num_images": n, "names_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest()},
        "masks": {k: v for k, v in masks_info.items() if k != "path"},
        "buckets": [b.label for b in buckets], "num_samples": int(num_samples), "seed": int(seed),
        "batch_size": int(batch_size), "paste_known": bool(paste_known), "unit_metrics": unit_metrics,
        "lpips_net": lpips_net,
    }
    manifest = {"format": FORMAT, "checked": checked,
                "info": {"method": model.name, "data_path": data_info.get("path"),
                         "masks_path": masks_info.get("path")}}
    import jax

    from fdm_jax.train.distributed import barrier

    pid, nproc = jax.process_index(), jax.process_count()
    primary = pid == 0
    progress = progress and primary
    has_manifest = _check_manifest(out, manifest)  # every process: a mismatch stops each one alike

    # Without a manifest nothing was recorded: a masks.json there is from a failed run, maybe with
    # other settings, so the assignment is made afresh. Process 0 writes masks.json and cleans torn
    # record files; the others read them after it.
    if primary:
        assignment = _load_or_assign(out, masks, buckets, n, model.size, seed, fresh=not has_manifest)
        records = _load_all_records(out, num_samples)
        if nproc > 1 and not has_manifest:
            # Several processes: written before any of them records (a record file without a
            # manifest is refused on resume); the model has loaded by now.
            _write_json(out / "manifest.json", manifest)
    barrier("fdm_jax_evaluate_setup")
    has_manifest = has_manifest or nproc > 1
    if not primary:
        assignment = _load_or_assign(out, masks, buckets, n, model.size, seed, fresh=False, write=False)
        records = _load_all_records(out, num_samples, rewrite=False)
    records_path = out / "records.jsonl" if nproc == 1 else _part_path(out, pid)
    lpips_params = None
    if "lpips" in unit_metrics or "diversity" in unit_metrics:
        from fdm_jax.metrics.lpips import load_lpips

        lpips_params = load_lpips(lpips_net)

    total = len(buckets) * n
    chunks = [(b, list(range(s, min(s + batch_size, n)))) for b in buckets for s in range(0, n, batch_size)
              if (s // batch_size) % nproc == pid]
    new = 0
    work = [(bucket, chunk, todo) for bucket, chunk in chunks
            if (todo := [i for i in chunk if (bucket.label, i) not in records])]
    loaded = iter(chunk_loader(model.preprocess, source, masks, model.size,
                               [(chunk, [assignment[b.label][i]["mask_index"] for i in chunk]) for b, chunk, _ in work]))
    bar = _bar(total, len(records), progress)
    try:
        for (bucket, chunk, todo), (images, msks) in zip(work, loaded):
            if max_new_images is not None and new >= max_new_images:
                break
            batch = _run_batch(model, images, msks, out, bucket, chunk, todo, assignment[bucket.label], names,
                               num_samples, seed, batch_size, paste_known, unit_metrics, lpips_params)
            if not has_manifest:  # written after the first success, before the first record
                if primary:
                    _write_json(out / "manifest.json", manifest)
                has_manifest = True
            _append_records(out, batch, records_path)
            for r in batch:
                records[(r["bucket"], r["index"])] = r
            new += len(batch)
            bar.update(len(batch))
    finally:
        bar.close()
        loaded.close()
    # Gather: every process's records, merged into records.jsonl by process 0 (also the per-process
    # files an interrupted multi-process run left, when a run with fewer processes finishes it).
    barrier("fdm_jax_evaluate_sampled")
    if primary:
        if nproc > 1:
            records = _load_all_records(out, num_samples)
        _merge_records(out, records, [b.label for b in buckets])
    barrier("fdm_jax_evaluate_merged")
    if not primary:
        records = _load_all_records(out, num_samples, rewrite=False)
    if len(records) < total:
        return {"complete": False, "done": len(records), "total": total, "new": new, "out_dir": str(out)}

    if primary:
        results = _aggregate(out, model, buckets, records, names, metrics, num_samples, fid_features, batch_size,
                             checked, manifest["info"])
        _write_json(out / "results.json", results)
        (out / "table.md").write_text(render_table(results))
        _write_grid(out, buckets, assignment, names, num_samples, min(grid_images, n))
        _write_plots(out, results)
    barrier("fdm_jax_evaluate_written")
    if not primary:
        import json

        results = json.loads((out / "results.json").read_text())
    return results


def _bar(total: int, initial: int, enabled: bool):
    import sys

    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="evaluating (image x bucket)", unit="img", file=sys.stderr,
                disable=not enabled)


class _LoadChunk(grain.transforms.Map):
    """A chunk's images (eval preprocessing, float32) and their assigned masks ((H, W, 1) float32, 1 = known)."""

    def __init__(self, preprocess, source, masks, size: int):
        self.preprocess, self.source, self.masks, self.size = preprocess, source, masks, size

    def map(self, item):
        chunk, mask_indices = item
        images = [np.asarray(self.preprocess(self.source.load(i)), np.float32) for i in chunk]
        msks = [self.masks.load(m, self.size)[..., None].astype(np.float32) for m in mask_indices]
        return images, msks


def chunk_loader(preprocess, source, masks, size: int, items, *, num_threads: int = 2):
    """The evaluation loader, a grain pipeline: items [(image indices, mask indices)] -> (images, masks)
    per chunk, read on `num_threads` threads ahead of the model (at most two chunks in flight)."""
    items = list(items)
    if not items:  # everything recorded already
        return grain.MapDataset.range(0).to_iter_dataset()
    ds = grain.MapDataset.source(items).map(_LoadChunk(preprocess, source, masks, size))
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2))


def _run_batch(model, images, msks, out, bucket, chunk, todo, assigned, names, num_samples, seed, batch_size,
               paste_known, unit_metrics, lpips_params) -> list[dict]:
    """Sample the whole fixed chunk (padded to batch_size by repeating its last image) so that its
    images always run in the same batch; write the `todo` images' files and return their records."""
    import jax

    pad = batch_size - len(chunk)
    keys = [unit_key(seed, bucket.label, i) for i in chunk]
    x = np.stack(images + images[-1:] * pad)
    mk = np.stack(msks + msks[-1:] * pad)
    ks = jax.numpy.stack(keys + keys[-1:] * pad)
    samples = np.asarray(model.sample(x, mk, ks, num_samples))
    expected = (num_samples, batch_size, model.size, model.size, 3)
    if samples.shape != expected:
        raise EvaluationError(f"model {model.name}: sample() returned shape {samples.shape}, expected {expected}")
    samples = _to_uint8(samples)
    gts = np.clip(np.round(x), 0, 255).astype(np.uint8)  # the ground truth: eval preprocessing, rounded
    if paste_known:  # the ground truth's own pixels, so known pixels compare equal
        samples = np.where(mk[None] != 0, gts[None], samples)
    records = []
    for j, i in enumerate(chunk):
        if i not in todo:
            continue
        gt = gts[j]
        if not _gt_path(out, i).is_file():
            _write_png(_gt_path(out, i), gt)
        _write_mask_png(_mask_path(out, bucket.label, i), msks[j][..., 0])
        for k in range(num_samples):
            _write_png(_sample_path(out, bucket.label, i, k), samples[k, j])
        values = _unit_metrics(gt, samples[:, j], unit_metrics, lpips_params)
        div = values.pop("diversity", None)
        rec = {"bucket": bucket.label, "index": i, "image": names[i], "mask": assigned[i]["mask"],
               "hole_ratio": assigned[i]["hole_ratio"], "metrics": values}
        if div is not None:
            rec["diversity"] = div
        records.append(rec)
    return records


def _default_fid_features(batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    from fdm_jax.metrics.fid import InceptionFeatures

    return InceptionFeatures("pytorch_fid", batch_size=max(1, min(batch_size, 16)))


def _features(paths: list[Path], fn, batch_size: int, desc: str = "FID features", progress: bool = True) -> np.ndarray:
    import sys

    from tqdm import tqdm

    feats = []
    with tqdm(total=len(paths), desc=desc, unit="img", file=sys.stderr, disable=not progress) as bar:
        for s in range(0, len(paths), batch_size):
            feats.append(np.asarray(fn(np.stack([_read_png(p) for p in paths[s:s + batch_size]])), np.float64))
            bar.update(len(paths[s:s + batch_size]))
    return np.concatenate(feats)


def _fid(real: np.ndarray, fake: np.ndarray) -> tuple[float | None, str | None]:
    from fdm_jax.metrics.fid import FIDStats, fid_score

    stats = []
    for f in (real, fake):
        s = FIDStats(dim=f.shape[1])
        s.update_features(f)
        stats.append(s.result())
    try:
        return float(fid_score(*stats)), None
    except ValueError as e:  # sqrtm with a large imaginary part: pytorch-fid raises too
        return None, str(e)


def _aggregate(out, model, buckets, records, names, metrics, num_samples, fid_features, batch_size, checked, info):
    n = len(names)
    result = {"complete": True, "method": model.name, "out_dir": str(out), "settings": checked, "info": info,
              "metrics": list(metrics), "num_images": n, "buckets": {}, "reference": model.reference_rows(buckets),
              "conventions": _CONVENTIONS}
    real = None
    if "fid" in metrics:
        fid_features = fid_features or _default_fid_features(batch_size)
        real = _features([_gt_path(out, i) for i in range(n)], fid_features, batch_size, "FID features (real)")
    for b in buckets:
        recs = [records[(b.label, i)] for i in range(n)]
        ratios = np.array([r["hole_ratio"] for r in recs])
        entry: dict[str, Any] = {"title": b.title, "count": n, "metrics": {}, "std": {}, "mean_over_samples": {},
                                 "hole_ratio": {"mean": float(ratios.mean()), "min": float(ratios.min()),
                                                "max": float(ratios.max())}}
        for m in metrics:
            if m in UNIT_METRICS:
                first = np.array([r["metrics"][m][0] for r in recs], np.float64)
                every = np.array([r["metrics"][m] for r in recs], np.float64)
                entry["metrics"][m] = float(first.mean())
                entry["std"][m] = float(first.std(ddof=1)) if n > 1 else math.nan
                entry["mean_over_samples"][m] = float(every.mean())
            elif m == "diversity":
                div = np.array([r["diversity"] for r in recs], np.float64)
                entry["metrics"][m] = float(div.mean())
                entry["std"][m] = float(div.std(ddof=1)) if n > 1 else math.nan
        if "fid" in metrics:
            fake = _features([_sample_path(out, b.label, i, 0) for i in range(n)], fid_features, batch_size,
                             f"FID features ({b.title})")
            value, error = _fid(real, fake)
            entry["metrics"]["fid"] = value
            if error:
                entry["fid_error"] = error
        entry["metrics"] = {m: entry["metrics"][m] for m in metrics if m in entry["metrics"]}
        result["buckets"][b.label] = entry
    return result


_CONVENTIONS = {
    "fake_images": "the model's own output truncated to uint8 (PUT+FDM: raw decoder output, known pixels not "
                   "pasted, as FDM's inference and PUT's metric scripts); paste_known=true pastes them",
    "fidelity_sample": "FID, LPIPS, SSIM, PSNR, MAE use sample 0 of each image (PUT evaluates one completion per "
                       "input); mean_over_samples averages every sample",
    "fid": "pytorch-fid Inception pool3 (2048-d), PUT preprocessing (bilinear to 299), scipy sqrtm; real set = "
           "the same ground-truth images (cal_fid.py --share_same_files)",
    "lpips": "LPIPS v0.1 VGG, PUT cal_lpips.py convention (spatial map averaged)",
    "ssim": "PUT cal_psnr.py: OpenCV grey, uniform 51x51 window, data_range 255",
    "psnr": "PUT cal_psnr.py: grey / 255, data_range 1",
    "mae": "PUT cal_psnr.py 'mae': sum|a-b| / sum(a+b) of grey / 255 (relative)",
    "l1": "PUT cal_psnr.py 'l1': mean |a-b| of grey / 255",
    "diversity": "mean LPIPS-VGG (spatial mean) over all pairs of samples of each image",
    "ground_truth": "eval preprocessing (SmallestMaxSize + CenterCrop) rounded to uint8",
    "buckets": "hole ratio in (lo, hi], measured on the mask after nearest resizing to the model size",
}


# ---------------------------------------------------------------------------------------------
# Table and grid
# ---------------------------------------------------------------------------------------------


