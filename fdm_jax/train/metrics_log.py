"""Training metrics to a JSON-lines file and TensorBoard (tensorboardX: no TensorFlow needed), and
sample grids as PNG files."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np


class MetricsLog:
    """`metrics.jsonl`: one JSON object per logged step ({"step", "time", name: float, ...});
    TensorBoard scalars under `tensorboard/`. Rows are keyed by step: a resumed run continues the same
    files, and the rows of the steps after its checkpoint (`resume_step`), which it is about to replay,
    are dropped first, so a replayed step replaces its row instead of adding a second one."""

    def __init__(self, workdir, *, tensorboard: bool = True, resume_step: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / "metrics.jsonl"
        self._steps: set[int] = set()
        if self.path.exists():
            keep = [r for r in read_metrics(self.path) if resume_step is not None and r["step"] <= resume_step]
            self._rewrite(keep)
        self._file = open(self.path, "a", buffering=1)
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter
            # purge_step: TensorBoard hides the events of the replayed steps from the earlier attempt.
            self._tb = SummaryWriter(str(self.workdir / "tensorboard"), purge_step=int(resume_step or 0) + 1)

    def _rewrite(self, rows: list[dict]) -> None:
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, self.path)
        self._steps = {int(r["step"]) for r in rows}

    def write(self, step: int, metrics: dict) -> dict:
        row = {"step": int(step), "time": time.time()}
        for k, v in metrics.items():
            v = float(np.asarray(v))
            row[k] = v if math.isfinite(v) else str(v)
            if self._tb is not None:
                self._tb.add_scalar(k, v, int(step))
        if row["step"] in self._steps:  # the same step again: replace its row
            self._file.close()
            self._rewrite([r for r in read_metrics(self.path) if r["step"] != row["step"]] + [row])
            self._file = open(self.path, "a", buffering=1)
        else:
            self._file.write(json.dumps(row) + "\n")
            self._steps.add(row["step"])
        return row

    def close(self):
        self._file.close()
        if self._tb is not None:
            self._tb.close()


class NullMetricsLog:
    """What the processes other than process 0 of a multi-process run hold instead of a MetricsLog:
    the same interface, nothing written (one metrics.jsonl and one TensorBoard log per run)."""

    def __init__(self, workdir):
        self.path = Path(workdir) / "metrics.jsonl"

    def write(self, step: int, metrics: dict) -> dict:
        return {"step": int(step), "time": time.time(), **{k: float(np.asarray(v)) for k, v in metrics.items()}}

    def close(self):
        pass


def read_metrics(path) -> list[dict]:
    """The rows of a metrics.jsonl in step order, one per step (the last written wins; a torn last line
    from a killed run is ignored)."""
    rows: dict[int, dict] = {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[int(r["step"])] = r
    return [rows[k] for k in sorted(rows)]


def write_grid(path, columns: dict, max_rows: int = 8, title: str | None = None) -> Path:
    """A PNG with one row per image and one labelled column per entry of `columns` ({label: (B, H, W, 3)
    in [0, 255]}), the labels drawn above the columns (fdm_jax.io.visualize.labelled_grid)."""
    import cv2

    from fdm_jax.io.visualize import labelled_grid

    cols = [np.asarray(v, np.float32)[:max_rows] for v in columns.values()]
    grid = labelled_grid([[c[i] for c in cols] for i in range(cols[0].shape[0])], col_labels=list(columns),
                         title=title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def plot_metrics(path, out, keys: tuple[str, ...] | None = None) -> Path | None:
    """The loss curves of a run's `metrics.jsonl` as a PNG, one small panel per loss (every logged
    scalar whose name contains "loss", or `keys`); None when nothing was logged."""
    from fdm_jax.io.visualize import panel_plot

    rows = read_metrics(path) if Path(path).is_file() else []
    scalars = sorted({k for r in rows for k, v in r.items() if k not in ("step", "time") and isinstance(v, (int, float))})
    names = list(keys) if keys else ([k for k in scalars if "loss" in k] or scalars)
    series = {}
    for k in names:
        pts = [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float))]
        if pts:
            series[k] = tuple(zip(*pts))
    if not series:
        return None
    return panel_plot(series, out, xlabel="step", title=Path(path).parent.name)
