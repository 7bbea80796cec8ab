"""Evaluation of pluralistic inpainting per hole-ratio bucket, as the papers evaluate (spec §7.4, §11.2).

    model = PutFdmInpainter.from_checkpoints(["runs/demo"])
    source, data_info = open_image_source("../shared/data/images/places2_256_freeform")
    masks = ProvidedMasks("../shared/data/masks/pconv_test")
    results = evaluate(model, source, masks, parse_buckets("0.2-0.4,0.4-0.6"), out_dir="eval/demo",
                       num_samples=5, seed=0, data_info=data_info)

For every bucket (lo, hi] of hole ratios and every image, one NVIDIA/PConv mask whose hole ratio,
MEASURED after the nearest resize to the model size, lies in the bucket is drawn (deterministic in
the seed; `assign_masks`), the model draws `num_samples` completions, and the per-image metrics are
written as they are produced. At the end the per-bucket numbers go to `results.json`, `table.md`
(shaped like Table 1 of the FDM paper) and `grid.png`.

How each number is computed (the conventions of liuqk3/PUT's scripts/metrics, spec §11.2; FDM
ships no metric scripts):
  * fake images = the model's own output, truncated to uint8 as the originals save their PNGs.
    PUT+FDM does NOT paste the known pixels back (FDM's inference saves `inpainted_image`, the raw
    decoder output; PUT@cvpr2022's PatchVQGAN has combine_rec_and_gt=False), and the metric scripts
    read those files, so neither does this evaluation unless `paste_known=True`.
  * the fidelity metrics (FID, LPIPS, SSIM, PSNR, MAE) use sample 0 of each image: PUT's
    fidelity evaluation runs one completion per input. The mean over all samples is in results.json.
  * FID: pytorch-fid's Inception (pool3, 2048-d) with PUT's preprocessing (bilinear to 299, any
    input size, e.g. the demo's 64 px), scipy sqrtm; the real set is the same ground-truth images
    (cal_fid.py --share_same_files). Computed at the end from the saved PNGs.
  * LPIPS: VGG (cal_lpips.py's default, not AlexNet), PUT's spatial-mean convention.
  * SSIM, PSNR, MAE: cal_psnr.py on OpenCV grey images: SSIM with a uniform 51x51 window, PSNR of
    grey/255, and PUT's "mae" = sum|a - b| / sum(a + b) (a relative error); `l1` is PUT's plain
    mean |a - b| / 255 of the grey images.
  * diversity: the mean LPIPS-VGG (spatial mean) over all pairs of the samples of each input, the
    expectation of cal_lpips.py --type diversity's random pairs.
  * ground truth: the model's eval preprocessing (SmallestMaxSize + CenterCrop), rounded to uint8.

Resuming: the settings are recorded in `<out>/manifest.json` with the first batch of results and
checked on every run (a mismatch is an error naming it; a run that failed before its first batch
leaves no manifest, so it does not block a corrected rerun); the mask assignment is kept in `masks.json`; every batch's samples (PNG) and
per-image metrics (one JSON line per image in `records.jsonl`) are written as soon as the batch is
done, and a restarted run skips the images already recorded. Batches are fixed chunks of the image
list and every image's random key depends only on (seed, bucket, image index), so an interrupted
and resumed evaluation gives the same files as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import zlib
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = [
    "Bucket", "DEFAULT_BUCKETS", "EvaluationError", "InpaintingModel", "METRICS", "PutFdmInpainter",
    "assign_masks", "default_metrics", "evaluate", "hole_ratio", "open_image_source", "parse_buckets",
    "render_table", "resolve_metrics", "unit_key", "weights_digest",
]

METRICS = ("fid", "lpips", "ssim", "psnr", "mae", "l1", "diversity")
UNIT_METRICS = ("lpips", "ssim", "psnr", "mae", "l1")  # per image and sample, vs the ground truth
DEFAULT_BUCKETS = "0.2-0.4,0.4-0.6"  # FDM Table 1: small = 20-40 %, large = 40-60 % (configs/paris.py reference)
FORMAT = 1
_MASK_STREAM = 0x6D61736B  # 'mask': the mask-assignment stream of a seed
_LOWER_IS_BETTER = {"fid": True, "lpips": True, "ssim": False, "psnr": False, "mae": True, "l1": True,
                    "diversity": False}
_TITLES = {"fid": "FID", "lpips": "LPIPS", "ssim": "SSIM", "psnr": "PSNR", "mae": "MAE", "l1": "L1",
           "diversity": "Div."}
_DIGITS = {"fid": 2, "lpips": 3, "ssim": 3, "psnr": 2, "mae": 4, "l1": 4, "diversity": 3}


class EvaluationError(ValueError):
    """Bad evaluation input or an output folder that cannot be resumed; the message names it."""


# ---------------------------------------------------------------------------------------------
# Buckets
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Bucket:
    """Hole ratios in (lo, hi], the NVIDIA mask set's own bucket convention (spec §7.2)."""

    lo: float
    hi: float
    label: str  # as written, e.g. "0.2-0.4"; also the bucket's folder name

    def contains(self, ratio: float) -> bool:
        return self.lo < ratio <= self.hi

    @property
    def title(self) -> str:
        return f"{_pct(self.lo)}–{_pct(self.hi)} %"


def _pct(v: float) -> str:
    p = round(v * 100, 4)
    return f"{p:g}"


def parse_buckets(text: str) -> tuple[Bucket, ...]:
    """'0.2-0.4,0.4-0.6' -> buckets; each 'lo-hi' with 0 <= lo < hi <= 1."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo_s, sep, hi_s = part.partition("-")
        try:
            if not sep:
                raise ValueError
            lo, hi = float(lo_s), float(hi_s)
        except ValueError:
            raise EvaluationError(f"--buckets: {part!r} is not 'lo-hi' (hole fractions, e.g. 0.2-0.4)") from None
        if not (0.0 <= lo < hi <= 1.0):
            raise EvaluationError(f"--buckets: {part!r} needs 0 <= lo < hi <= 1 (hole fractions, not percent)")
        out.append(Bucket(lo, hi, f"{lo:g}-{hi:g}"))
    if not out:
        raise EvaluationError(f"--buckets: no bucket in {text!r}; expected e.g. {DEFAULT_BUCKETS}")
    labels = [b.label for b in out]
    if len(set(labels)) != len(labels):
        raise EvaluationError(f"--buckets: a bucket is given twice in {text!r}")
    return tuple(out)


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

@runtime_checkable
class InpaintingModel(Protocol):
    """What `evaluate` needs from an inpainting model (PUT+FDM here; LaMa / TSGL implement it too).

    name: the row label of the table. size: the square input size. preprocess: uint8 (H, W, 3) ->
    float32 (size, size, 3) in [0, 255], the model's eval preprocessing. sample: images (B, S, S, 3)
    float32 [0, 255], masks (B, S, S, 1) float32 1 = known, keys (B,) typed PRNG keys (one per image;
    image i's samples must depend on keys[i] only) -> (num_samples, B, S, S, 3) float [0, 255], the
    model's own output (known pixels pasted or not, as the original model does). fingerprint: a
    JSON-able identity of the weights and settings (checked when resuming). reference_rows: the
    paper's published numbers for these buckets ([] when none apply)."""

    name: str
    size: int

    def preprocess(self, image: np.ndarray) -> np.ndarray: ...

    def sample(self, images: np.ndarray, masks: np.ndarray, keys, num_samples: int) -> np.ndarray: ...

    def fingerprint(self) -> dict: ...

    def reference_rows(self, buckets: Sequence[Bucket]) -> list[dict]: ...


def weights_digest(variables) -> str:
    """SHA-256 over every array of a variables tree (paths and bytes, in tree order)."""
    import jax

    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(variables):
        a = np.asarray(leaf)
        h.update(jax.tree_util.keystr(path).encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# Table 1 of the FDM paper lists Paris and Places (naturalscene); configs/{paris,places}.py hold its
# numbers in config.reference. Other data (e.g. the demo config, built on paris:tiny) get none.
_REFERENCE_DATASETS = {"paris": "Paris StreetView", "naturalscene": "Places"}
_REFERENCE_BUCKETS = {(0.2, 0.4): "small", (0.4, 0.6): "large"}


class PutFdmInpainter:
    """PUT + FDM (or PUT's pipeline without FDM: use_fdm=False) behind `InpaintingModel`.

    Samples with `fdm_jax.put_fdm.sampling.inpaint_samples` (top-K from the config's sampling.top_k unless
    given); returns the raw decoder output, known pixels not pasted back (as the original)."""

    def __init__(self, config, models: dict, variables: dict, *, use_fdm: bool = True, top_k: int | None = None,
                 name: str | None = None):
        self.config = config
        self.models = models
        self.variables = {k: variables[k] for k in ("codec", "sampler", "fdm") if k in variables}
        self.use_fdm = bool(use_fdm)
        self.top_k = int(config.sampling.top_k if top_k is None else top_k)
        self.num_token_per_iter = int(config.sampling.get("num_token_per_iter", 1))
        num_tokens = int(models["sampler"].num_tokens) if hasattr(models["sampler"], "num_tokens") else None
        if self.top_k < 1 or (num_tokens is not None and self.top_k > num_tokens):
            raise EvaluationError(f"--top-k {self.top_k}: expected 1 <= top_k <= {num_tokens} (the sampler's classes)")
        self.size = int(config.image_size)
        self.name = name or ("PUT+FDM" if self.use_fdm else "PUT (no FDM)")
        self._compiled: set[int] = set()  # sample counts whose first compilation was announced
        self._digest: str | None = None

    @classmethod
    def from_checkpoints(cls, checkpoints: Sequence[str], config_spec: str = "configs/paris.py", *,
                         use_fdm: bool = True, top_k: int | None = None, name: str | None = None):
        from fdm_jax.inference.put_fdm import load_put_fdm

        config, models, variables = load_put_fdm(checkpoints, config_spec)
        if name is None:
            label = ", ".join(Path(c).name or str(c) for c in checkpoints)
            name = f"{'PUT+FDM' if use_fdm else 'PUT (no FDM)'} ({label})"
        return cls(config, models, variables, use_fdm=use_fdm, top_k=top_k, name=name)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        from fdm_jax.data.preprocess import preprocess_from_config

        return preprocess_from_config(image, self.config.data.eval_preprocess)

    def sample(self, images, masks, keys, num_samples: int) -> np.ndarray:
        import jax.numpy as jnp

        from fdm_jax.put_fdm.sampling import jit_inpaint_samples

        if num_samples not in self._compiled:  # the shared jitted sampler; say when it first compiles here
            from fdm_jax.cli.compilation_cache import notice

            self._compiled.add(num_samples)
            notice(f"the PUT+FDM sampler for batches of {len(images)}, {num_samples} sample(s)")
        m, v = self.models, self.variables
        out = jit_inpaint_samples(m["codec"], v["codec"], m["sampler"], v["sampler"], m["fdm"], v["fdm"],
                                  jnp.asarray(images, jnp.float32), jnp.asarray(masks, jnp.float32), keys,
                                  num_samples, top_k=self.top_k, num_token_per_iter=self.num_token_per_iter,
                                  use_fdm=self.use_fdm)["inpainted_image"]
        return np.asarray(out)

    def fingerprint(self) -> dict:
        if self._digest is None:
            used = {k: v for k, v in self.variables.items() if self.use_fdm or k != "fdm"}
            self._digest = weights_digest(used)
        fp = {"method": "put_fdm", "use_fdm": self.use_fdm, "top_k": self.top_k, "image_size": self.size,
              "eval_preprocess": _plain(self.config.data.eval_preprocess), "weights_sha256": self._digest}
        if self.num_token_per_iter != 1:  # absent for the paper's 1, so earlier results still resume
            fp["num_token_per_iter"] = self.num_token_per_iter
        return fp

    def reference_rows(self, buckets: Sequence[Bucket]) -> list[dict]:
        cfg = self.config
        dataset = str(cfg.data.name) if "data" in cfg and "name" in cfg.data else ""
        ref = cfg.get("reference") if hasattr(cfg, "get") else None
        if dataset not in _REFERENCE_DATASETS or ref is None or "fid_small" not in ref:
            return []
        where = f"paper, Table 1, {_REFERENCE_DATASETS[dataset]}"
        rows = [("PUT+FDM", {"fid": "fid_{}", "lpips": "lpips_{}"}), ("PUT", {"fid": "put_fid_{}"})]
        out = []
        for method, keys in rows:
            values = {}
            for b in buckets:
                size = _REFERENCE_BUCKETS.get((round(b.lo, 6), round(b.hi, 6)))
                if size is None:
                    continue
                for metric, key in keys.items():
                    if key.format(size) in ref:
                        values.setdefault(metric, {})[b.label] = float(ref[key.format(size)])
            if values:
                out.append({"label": f"{method} ({where})", "values": values,
                            "source": str(ref.get("table1_source", ""))})
        return out


def _plain(cfg) -> Any:
    """ConfigDict / mapping -> plain JSON-able dict."""
    if hasattr(cfg, "to_dict"):
        cfg = cfg.to_dict()
    return json.loads(json.dumps(cfg, default=str))


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

def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels of a mask with 1 = known."""
    return float(np.mean(np.asarray(mask) < 0.5))


def assign_masks(masks, buckets: Sequence[Bucket], num_images: int, size: int, seed: int) -> dict[str, list[dict]]:
    """{bucket label: [{'mask_index', 'mask', 'hole_ratio'} for image 0..num_images-1]}.

    The mask files are visited in one seeded random order (numpy PCG64 of SeedSequence([seed,
    'mask'])); each bucket takes, in that order, the first `num_images` masks whose hole ratio at
    `size` (ProvidedMasks.load: INTER_NEAREST, 255 = hole) lies in the bucket. Disjoint buckets
    therefore get disjoint masks, and the first k images get the same masks for any num_images >= k.
    `masks` is a `fdm_jax.data.masks.ProvidedMasks` (or anything with len, name(i), load(i, size))."""
    order = np.random.default_rng(np.random.SeedSequence([int(seed), _MASK_STREAM])).permutation(len(masks))
    ratios: dict[int, float] = {}
    out: dict[str, list[dict]] = {}
    for b in buckets:
        chosen: list[dict] = []
        for k in order:
            k = int(k)
            if k not in ratios:
                ratios[k] = hole_ratio(masks.load(k, size))
            if b.contains(ratios[k]):
                chosen.append({"mask_index": k, "mask": masks.name(k), "hole_ratio": ratios[k]})
                if len(chosen) == num_images:
                    break
        if len(chosen) < num_images:
            raise EvaluationError(f"masks: only {len(chosen)} of the {len(masks)} masks have a hole ratio in "
                                  f"({b.lo:g}, {b.hi:g}] at {size}x{size}; {num_images} are needed (one per image)")
        out[b.label] = chosen
    return out


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------

def unit_key(seed: int, bucket_label: str, index: int):
    """The key of image `index` in a bucket: fold_in(fold_in(key(seed), crc32(label)), index), so it
    does not depend on the batch, the other buckets, or how many images are evaluated."""
    import jax

    k = jax.random.fold_in(jax.random.key(int(seed)), zlib.crc32(bucket_label.encode()))
    return jax.random.fold_in(k, int(index))


# ---------------------------------------------------------------------------------------------
# Output folder: manifest, records, files
# ---------------------------------------------------------------------------------------------

def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n")
    os.replace(tmp, path)


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _check_manifest(out: Path, manifest: dict) -> bool:
    """Compares the settings with a saved manifest; False when there is none yet. The manifest is
    written only with the first batch of records (`evaluate`), so a run that fails before producing
    anything (a bad checkpoint, too few masks) does not pin its settings on the folder."""
    path = out / "manifest.json"
    if not path.is_file():
        if (out / "records.jsonl").exists():
            raise EvaluationError(f"--out {out}: holds records.jsonl but no manifest.json; use an empty folder")
        return False
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EvaluationError(f"--out {out}: manifest.json is not valid JSON ({e}); use another folder") from None
    if old.get("format") != FORMAT:
        raise EvaluationError(f"--out {out}: made by evaluation format {old.get('format')}, this is {FORMAT}")
    was, now = _flatten(old.get("checked", {})), _flatten(manifest["checked"])
    diffs = [f"{k} was {was.get(k, '(unset)')!r}, now {now.get(k, '(unset)')!r}"
             for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]
    if diffs:
        more = " ..." if len(diffs) > 6 else ""
        raise EvaluationError(f"--out {out} holds an evaluation with other settings: {'; '.join(diffs[:6])}{more}. "
                              "Resume with the same settings, or use another --out")
    return True


def _sample_path(out: Path, label: str, index: int, k: int) -> Path:
    return out / "samples" / label / f"{index:05d}_{k}.png"


def _gt_path(out: Path, index: int) -> Path:
    return out / "gt" / f"{index:05d}.png"


def _mask_path(out: Path, label: str, index: int) -> Path:
    return out / "masks" / label / f"{index:05d}.png"


def _load_records(out: Path, num_samples: int) -> dict[tuple[str, int], dict]:
    """Records whose files all exist; a torn last line (a run killed mid-write) is dropped and the
    file rewritten without it, and so are records whose PNGs are missing (they are redone)."""
    path = out / "records.jsonl"
    if not path.is_file():
        return {}
    lines = path.read_text().splitlines()
    records: dict[tuple[str, int], dict] = {}
    dropped = False
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            key = (r["bucket"], int(r["index"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if n == len(lines) - 1:
                dropped = True
                continue
            raise EvaluationError(f"{path}: line {n + 1} is not a record; the folder is damaged, "
                                  "use another --out") from None
        if all(_sample_path(out, key[0], key[1], k).is_file() for k in range(num_samples)) \
                and _gt_path(out, key[1]).is_file():
            records[key] = r
        else:
            dropped = True
    if dropped:
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in records.values()))
        os.replace(tmp, path)
    return records


def _append_records(out: Path, records: list[dict]) -> None:
    # One write per batch, then fsync: a crash loses at most the batch in flight.
    with open(out / "records.jsonl", "a") as f:
        f.write("".join(json.dumps(r, allow_nan=True) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def _read_png(path: Path) -> np.ndarray:
    from fdm_jax.data.sources import read_rgb

    return read_rgb(path)


def _write_png(path: Path, image: np.ndarray) -> None:
    from fdm_jax.io.images import write_image

    write_image(path, image)


def _write_mask_png(path: Path, mask: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.where(mask < 0.5, 255, 0).astype(np.uint8)):  # 255 = hole, as on disk
        raise OSError(f"{path}: could not write the mask")


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """The originals' tensor2image: clip to [0, 255] and truncate."""
    return np.clip(np.asarray(images, np.float32), 0, 255).astype(np.uint8)


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
    Inception with PUT's pytorch-fid preprocessing). Returns the results (also in results.json)."""
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
    has_manifest = _check_manifest(out, manifest)

    # Without a manifest nothing was recorded: a masks.json there is from a failed run, maybe with
    # other settings, so the assignment is made afresh.
    assignment = _load_or_assign(out, masks, buckets, n, model.size, seed, fresh=not has_manifest)
    records = _load_records(out, num_samples)
    lpips_params = None
    if "lpips" in unit_metrics or "diversity" in unit_metrics:
        from fdm_jax.metrics.lpips import load_lpips

        lpips_params = load_lpips(lpips_net)

    total = len(buckets) * n
    chunks = [(b, list(range(s, min(s + batch_size, n)))) for b in buckets for s in range(0, n, batch_size)]
    new = 0
    bar = _bar(total, len(records), progress)
    try:
        for bucket, chunk in chunks:
            todo = [i for i in chunk if (bucket.label, i) not in records]
            if not todo:
                continue
            if max_new_images is not None and new >= max_new_images:
                break
            batch = _run_batch(model, source, masks, out, bucket, chunk, todo, assignment[bucket.label], names,
                               num_samples, seed, batch_size, paste_known, unit_metrics, lpips_params)
            if not has_manifest:  # written after the first success, before the first record
                _write_json(out / "manifest.json", manifest)
                has_manifest = True
            _append_records(out, batch)
            for r in batch:
                records[(r["bucket"], r["index"])] = r
            new += len(batch)
            bar.update(len(batch))
    finally:
        bar.close()
    if len(records) < total:
        return {"complete": False, "done": len(records), "total": total, "new": new, "out_dir": str(out)}

    results = _aggregate(out, model, buckets, records, names, metrics, num_samples, fid_features, batch_size,
                         checked, manifest["info"])
    _write_json(out / "results.json", results)
    (out / "table.md").write_text(render_table(results))
    _write_grid(out, buckets, assignment, names, num_samples, min(grid_images, n))
    _write_plots(out, results)
    return results


def _bar(total: int, initial: int, enabled: bool):
    import sys

    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="evaluating (image x bucket)", unit="img", file=sys.stderr,
                disable=not enabled)


def _load_or_assign(out: Path, masks, buckets, n: int, size: int, seed: int, fresh: bool = False
                    ) -> dict[str, list[dict]]:
    path = out / "masks.json"
    if path.is_file() and not fresh:
        saved = json.loads(path.read_text())
        if all(b.label in saved and len(saved[b.label]) == n for b in buckets):
            return saved
        raise EvaluationError(f"{path}: does not hold one mask per image for buckets {[b.label for b in buckets]}")
    assignment = assign_masks(masks, buckets, n, size, seed)
    _write_json(path, assignment)
    return assignment


def _run_batch(model, source, masks, out, bucket, chunk, todo, assigned, names, num_samples, seed, batch_size,
               paste_known, unit_metrics, lpips_params) -> list[dict]:
    """Sample the whole fixed chunk (padded to batch_size by repeating its last image) so that its
    images always run in the same batch; write the `todo` images' files and return their records."""
    import jax

    images, msks = [], []
    for i in chunk:
        images.append(np.asarray(model.preprocess(source.load(i)), np.float32))
        m = masks.load(assigned[i]["mask_index"], model.size)
        msks.append(m[..., None].astype(np.float32))
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

def _fmt(metric: str, value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a" if value is None else f"{value}"
    return f"{value:.{_DIGITS[metric]}f}"


def render_table(results: dict) -> str:
    """Markdown: one row per method (this evaluation, then the paper's numbers where the config has
    them), columns metric x bucket, like Table 1 of the FDM paper (FID and LPIPS per mask size)."""
    labels = list(results["buckets"])
    metrics = [m for m in results["metrics"]]
    head = ["Method"] + [f"{_TITLES[m]} {'↓' if _LOWER_IS_BETTER[m] else '↑'} {results['buckets'][b]['title']}"
                         for m in metrics for b in labels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    ours = [results["method"]] + [_fmt(m, results["buckets"][b]["metrics"].get(m)) for m in metrics for b in labels]
    lines.append("| " + " | ".join(ours) + " |")
    for row in results.get("reference", []):
        cells = [row["label"]] + [_fmt(m, row["values"].get(m, {}).get(b)) if b in row["values"].get(m, {}) else "–"
                                  for m in metrics for b in labels]
        lines.append("| " + " | ".join(cells) + " |")
    s = results["settings"]
    n = results["num_images"]
    data = s["data"]
    notes = [
        f"{n} images of {data['name']}" + (f" ({data['split']})" if data.get("split") else "") +
        f" per bucket, one {s['masks'].get('kind', 'mask')} mask each (hole ratio measured at the model size; "
        + ", ".join(f"{results['buckets'][b]['title']}: mean {results['buckets'][b]['hole_ratio']['mean']:.3f}"
                    for b in labels) + f"); {s['num_samples']} sample(s) per image; seed {s['seed']}.",
        "FID, LPIPS (VGG), SSIM, PSNR, MAE: sample 0 against the ground truth, computed as liuqk3/PUT's "
        "scripts/metrics (SSIM/PSNR/MAE on grey images; MAE = sum|a-b|/sum(a+b)); Div.: mean LPIPS over all "
        "sample pairs. Known pixels " + ("pasted back." if s["paste_known"] else "not pasted back (as the originals)."),
    ]
    if "fid" in metrics:
        notes.append(f"FID from {n} images per bucket: with fewer images than the paper's 1,900 (Paris) / 800 "
                     "(Places) it is biased upwards and not comparable with the paper's numbers.")
        for b in labels:
            if results["buckets"][b].get("fid_error"):
                notes.append(f"FID {b}: n/a ({results['buckets'][b]['fid_error']})")
    if results.get("reference"):
        notes.append("Rows marked 'paper' are the published numbers of the FDM paper (not computed here): "
                     + results["reference"][0].get("source", "") + ".")
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def _write_grid(out: Path, buckets, assignment, names, num_samples: int, rows: int) -> None:
    """grid.png: per bucket, the first `rows` images as [masked input | samples | original], with the
    column labels above and "bucket / image" left of each row."""
    import cv2

    from fdm_jax.io.visualize import labelled_grid

    cells, row_labels = [], []
    for b in buckets:
        for i in range(rows):
            gt = _read_png(_gt_path(out, i))
            hole = cv2.imread(str(_mask_path(out, b.label, i)), cv2.IMREAD_GRAYSCALE) >= 128
            masked = np.where(hole[..., None], 0, gt).astype(np.uint8)
            samples = [_read_png(_sample_path(out, b.label, i, k)) for k in range(num_samples)]
            cells.append([masked, *samples, gt])
            row_labels.append(f"{b.title}: {Path(names[i]).stem}")
    cols = ["masked input"] + [f"sample {k}" for k in range(num_samples)] + ["original"]
    _write_png(out / "grid.png", labelled_grid(cells, col_labels=cols, row_labels=row_labels))


def _write_plots(out: Path, results: dict) -> list[Path]:
    """metrics.png: every metric of the table against the hole-ratio bucket (one panel per metric)."""
    from fdm_jax.io.visualize import panel_plot

    labels = list(results["buckets"])
    values = {m: [results["buckets"][b]["metrics"].get(m) for b in labels] for m in results["metrics"]}
    panels = {_TITLES.get(m, m): (list(range(len(labels))), v) for m, v in values.items()
              if any(x is not None for x in v)}
    if not panels:
        return []
    return [panel_plot(panels, out / "metrics.png", xlabel="hole ratio", max_cols=len(panels),
                       xticklabels=[results["buckets"][b]["title"] for b in labels],
                       label=results.get("method"))]
