"""The evaluation's files: manifest (settings checked on resume), mask assignment, per-image records
(one JSON line per image) and the PNGs of ground truths, masks and samples."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fdm_jax.evaluation.buckets import EvaluationError, assign_masks


FORMAT = 1


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
        if (out / "records.jsonl").exists() or any(out.glob("records.p*.jsonl")):
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


def _part_path(out: Path, process: int) -> Path:
    """The records file of process `process` of a multi-process evaluation (merged into records.jsonl
    by process 0 at the end of the run)."""
    return out / f"records.p{process:04d}.jsonl"


def _record_files(out: Path) -> list[Path]:
    return [p for p in [out / "records.jsonl"] + sorted(out.glob("records.p*.jsonl")) if p.is_file()]


def _load_all_records(out: Path, num_samples: int, *, rewrite: bool = True) -> dict[tuple[str, int], dict]:
    """The records of records.jsonl and of any per-process files a multi-process run left (see
    `_load_records`); rewrite=False only reads (the processes other than 0, which cleans the files)."""
    records: dict[tuple[str, int], dict] = {}
    for path in _record_files(out):
        records.update(_load_records(out, num_samples, path, rewrite=rewrite))
    return records


def _merge_records(out: Path, records: dict[tuple[str, int], dict], bucket_order: list[str]) -> None:
    """records.jsonl := every record, in the order of a one-process run (bucket, then image); the
    per-process files are removed. Process 0 only, after every process has finished writing."""
    parts = sorted(out.glob("records.p*.jsonl"))
    if not parts:
        return
    rank = {b: k for k, b in enumerate(bucket_order)}
    rows = sorted(records.values(), key=lambda r: (rank.get(r["bucket"], len(rank)), int(r["index"])))
    path = out / "records.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))
    os.replace(tmp, path)
    for part in parts:
        part.unlink()


def _load_records(out: Path, num_samples: int, path: Path | None = None, *, rewrite: bool = True
                  ) -> dict[tuple[str, int], dict]:
    """Records whose files all exist; a torn last line (a run killed mid-write) is dropped and the
    file rewritten without it, and so are records whose PNGs are missing (they are redone)."""
    path = out / "records.jsonl" if path is None else path
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
    if dropped and rewrite:
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in records.values()))
        os.replace(tmp, path)
    return records


def _append_records(out: Path, records: list[dict], path: Path | None = None) -> None:
    # One write per batch, then fsync: a crash loses at most the batch in flight.
    with open(out / "records.jsonl" if path is None else path, "a") as f:
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


def _load_or_assign(out: Path, masks, buckets, n: int, size: int, seed: int, fresh: bool = False,
                    write: bool = True) -> dict[str, list[dict]]:
    path = out / "masks.json"
    if path.is_file() and not fresh:
        saved = json.loads(path.read_text())
        if all(b.label in saved and len(saved[b.label]) == n for b in buckets):
            return saved
        raise EvaluationError(f"{path}: does not hold one mask per image for buckets {[b.label for b in buckets]}")
    assignment = assign_masks(masks, buckets, n, size, seed)
    if write:
        _write_json(path, assignment)
    return assignment
