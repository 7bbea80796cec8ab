"""Training metrics to a JSON-lines file and TensorBoard (tensorboardX: no TensorFlow needed), and
sample grids as PNG files."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np


class MetricsLog:
    """`metrics.jsonl`: one JSON object per logged step ({"step", "time", name: float, ...});
    TensorBoard scalars under `tensorboard/`. Appends, so a resumed run continues the same files."""

    def __init__(self, workdir, *, tensorboard: bool = True):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / "metrics.jsonl"
        self._file = open(self.path, "a", buffering=1)
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter
            self._tb = SummaryWriter(str(self.workdir / "tensorboard"))

    def write(self, step: int, metrics: dict) -> dict:
        row = {"step": int(step), "time": time.time()}
        for k, v in metrics.items():
            v = float(np.asarray(v))
            row[k] = v if math.isfinite(v) else str(v)
            if self._tb is not None:
                self._tb.add_scalar(k, v, int(step))
        self._file.write(json.dumps(row) + "\n")
        return row

    def close(self):
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_grid(path, columns: dict, max_rows: int = 8) -> Path:
    """A PNG with one row per image and one column per entry of `columns` ({title: (B, H, W, 3) in
    [0, 255]}); the titles are written, in order, to `path` with suffix .txt next to it."""
    import cv2

    cols = [np.clip(np.asarray(v, np.float32), 0, 255).astype(np.uint8)[:max_rows] for v in columns.values()]
    rows = [np.concatenate([c[i] for c in cols], axis=1) for i in range(cols[0].shape[0])]
    grid = np.concatenate(rows, axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    path.with_suffix(".txt").write_text("columns: " + " | ".join(columns) + "\n")
    return path
