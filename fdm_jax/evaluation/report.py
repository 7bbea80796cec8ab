"""The evaluation's report: the Table-1-shaped markdown table, the sample grid and the metric plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fdm_jax.evaluation.records import _gt_path, _mask_path, _read_png, _sample_path, _write_png


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


_LOWER_IS_BETTER = {"fid": True, "lpips": True, "ssim": False, "psnr": False, "mae": True, "l1": True,
                    "diversity": False}


_TITLES = {"fid": "FID", "lpips": "LPIPS", "ssim": "SSIM", "psnr": "PSNR", "mae": "MAE", "l1": "L1",
           "diversity": "Div."}


_DIGITS = {"fid": 2, "lpips": 3, "ssim": 3, "psnr": 2, "mae": 4, "l1": 4, "diversity": 3}
