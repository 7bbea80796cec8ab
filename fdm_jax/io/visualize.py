"""Pictures that explain themselves: labelled image grids and metric/loss plots for the files the
commands write (training sample grids, `inpaint`'s grid.png, `evaluate`'s plots).

    grid = labelled_grid([[image, masked, s0, s1]], col_labels=["input", "masked input", "sample 0",
                         "sample 1"], row_labels=["FDM"])          # uint8 (H', W', 3)
    panel_plot({"LPIPS": (range(3), values), "FID": (range(3), fids)}, "metrics.png", xlabel="hole ratio",
               xticklabels=["0-20 %", "20-40 %", "40-60 %"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

PAD = 4
BACKGROUND = 255


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _text_block(text: str, width: int, height: int, size: int) -> np.ndarray:
    """White (height, width, 3) uint8 with `text` centred in black, shrunk until it fits."""
    from PIL import Image, ImageDraw

    text = text.replace("\u2013", "-").replace("\u2014", "-")  # the built-in font has no dashes
    img = Image.new("RGB", (max(width, 1), max(height, 1)), (BACKGROUND,) * 3)
    draw = ImageDraw.Draw(img)
    for s in range(size, 5, -1):
        font = _font(s)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= width - 2 or s == 6:
            break
    draw.text(((width - (right - left)) / 2 - left, (height - (bottom - top)) / 2 - top), text, fill=(0, 0, 0),
              font=font)
    return np.asarray(img)


def _cell(image) -> np.ndarray:
    x = np.asarray(image)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.dtype != np.uint8:
        x = np.clip(x, 0, 255).astype(np.uint8)  # truncation, as the original's tensor2image
    return x


def labelled_grid(rows: Sequence[Sequence], col_labels: Sequence[str] | None = None,
                  row_labels: Sequence[str] | None = None, title: str | None = None,
                  font_size: int | None = None) -> np.ndarray:
    """A grid of RGB images (uint8 or float in [0, 255]; every cell the same size) with a label above
    each column, optionally one left of each row and a title; white gaps of PAD pixels. Returns uint8."""
    cells = [[_cell(c) for c in row] for row in rows]
    if not cells or not cells[0]:
        raise ValueError("labelled_grid: no images")
    h, w = cells[0][0].shape[:2]
    ncol = max(len(r) for r in cells)
    for r in cells:
        for c in r:
            if c.shape[:2] != (h, w):
                raise ValueError(f"labelled_grid: cells of different sizes {c.shape[:2]} and {(h, w)}")
    if col_labels is not None and len(col_labels) != ncol:
        raise ValueError(f"labelled_grid: {len(col_labels)} column labels for {ncol} columns")
    if row_labels is not None and len(row_labels) != len(cells):
        raise ValueError(f"labelled_grid: {len(row_labels)} row labels for {len(cells)} rows")
    size = font_size or int(np.clip(w // 9, 10, 18))
    label_h = size + 2 * PAD if col_labels is not None else 0
    label_w = int(min(max(4 * size * 2, w // 2), 3 * w)) if row_labels is not None else 0
    title_h = size + 2 * PAD if title else 0
    height = title_h + label_h + len(cells) * (h + PAD) + PAD
    width = label_w + ncol * (w + PAD) + PAD
    out = np.full((height, width, 3), BACKGROUND, np.uint8)
    if title:
        out[:title_h] = _text_block(title, width, title_h, size)
    for j in range(ncol):
        x0 = label_w + PAD + j * (w + PAD)
        if col_labels is not None:
            out[title_h:title_h + label_h, x0:x0 + w] = _text_block(str(col_labels[j]), w, label_h, size)
    for i, row in enumerate(cells):
        y0 = title_h + label_h + PAD + i * (h + PAD)
        if row_labels is not None:
            out[y0:y0 + h, :label_w] = _text_block(str(row_labels[i]), label_w, h, size)
        for j, c in enumerate(row):
            x0 = label_w + PAD + j * (w + PAD)
            out[y0:y0 + h, x0:x0 + w] = c
    return out


def panel_plot(panels: Mapping[str, tuple[Sequence, Sequence]], path: str | Path, *, xlabel: str,
               title: str | None = None, xticklabels: Sequence[str] | None = None, label: str | None = None,
               max_cols: int = 4) -> Path:
    """A PNG of small line plots, one panel per {panel title: (x, y)} (matplotlib, no display needed):
    the training loss curves and evaluate's metric-per-bucket plot. A panel whose positive values
    span more than 20x gets a log scale; None values are gaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(1, min(max_cols, len(panels)))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), dpi=100, squeeze=False)
    for ax, (name, (x, y)) in zip(axes.flat, panels.items()):
        y = [np.nan if v is None else float(v) for v in y]
        ax.plot(x, y, marker="o" if len(x) < 50 else None, label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        finite = [v for v in y if np.isfinite(v)]
        if finite and min(finite) > 0 and max(finite) > 20 * min(finite):
            ax.set_yscale("log")
        if xticklabels is not None:
            ax.set_xticks(list(x))
            ax.set_xticklabels(xticklabels, rotation=30, ha="right", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
