"""Parity runner for the original's training masks (shared/fixtures/put_fdm/masks_put.npz).

Each recorded mask was made after `random.seed(s); np.random.seed(s)` with one call of the
original generator; `MaskRNG.from_seed(s)` gives the same streams. The provided masks are read from
the NVIDIA folder the fixture names (`meta.data_root_relative.pconv`, relative to `shared/data`),
found next to the fixture (`shared/fixtures/<dir>/<file>.npz` -> `shared/data/...`) or under
$FDM_JAX_SHARED_DATA.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from fdm_jax.data.masks import MaskRNG, ProvidedMasks, image_list_mask, provided_dataset_mask, stroke_mask
from fdm_jax.parity.harness import Fixture, Weights, register

# The transformer-phase dataset settings the fixture used (meta.notes: "Transformer-phase dataset
# settings: use_provided_mask 0.8, use_provided_mask_ratio ['0.2', '0.6'], zero_mask 0.0,
# mask_low_to_high 0.05, mask_low_size [32, 32]"; configs/paris/transformer.yaml).
_DATASET_SETTINGS = dict(provided_mask_prob=0.8, zero_mask=0.0, mask_low_to_high=0.05, mask_low_size=(32, 32))
_FILE_RANGE = (4000, 12000)  # ['0.2', '0.6'] through MASK_RATIO_INDEX


def _stroke_params(meta: dict) -> dict:
    """The stroke parameters recorded in meta.notes ("Paris stroke parameters (...): {json}")."""
    for note in meta.get("notes", []):
        if note.startswith("Paris stroke parameters"):
            m = re.search(r"\{.*\}", note)
            if m:
                return json.loads(m.group(0))
    raise ValueError("fixture meta.notes has no 'Paris stroke parameters' JSON")


def _mask_folder(fx: Fixture) -> Path:
    rel = fx.meta.get("data_root_relative", {}).get("pconv", "masks/pconv_test")
    roots = []
    if os.environ.get("FDM_JAX_SHARED_DATA"):
        roots.append(Path(os.environ["FDM_JAX_SHARED_DATA"]))
    roots += [p / "data" for p in fx.path.resolve().parents]
    for root in roots:
        if (root / rel).is_dir():
            return root / rel
    raise FileNotFoundError(f"{fx.path.name}: provided-mask folder {rel!r} not found under "
                            f"{', '.join(str(r) for r in roots[:3])} ... (set FDM_JAX_SHARED_DATA to shared/data)")


@register(r"training-mask generators of the original data code")
def run_masks(fx: Fixture, weights: Weights) -> dict:
    del weights  # the mask generators have no parameters
    kw = fx.kwargs
    params = _stroke_params(fx.meta)
    size = tuple(kw.get("size", kw.get("im_size")))
    dataset_size = tuple(kw.get("dataset_size", size))
    provided = ProvidedMasks(_mask_folder(fx), _FILE_RANGE)
    cfg = dict(_DATASET_SETTINGS, stroken_mask_params=params)

    stroke = [stroke_mask(MaskRNG.from_seed(s), size, **params) for s in kw["stroke_seeds"]]
    dataset, dataset_index = [], []
    for s in kw["dataset_seeds"]:
        m, i = image_list_mask(MaskRNG.from_seed(s), dataset_size, cfg, provided)
        dataset.append(m[:, :, 0].astype(bool))  # __getitem__'s bool cast
        dataset_index.append(i)
    prov, prov_index = [], []
    for s in kw["provided_seeds"]:
        m, i = provided_dataset_mask(MaskRNG.from_seed(s), size, provided)
        prov.append(m[:, :, 0])
        prov_index.append(i)
    return {
        "stroke_masks": np.stack(stroke)[:, None],
        "dataset_masks": np.stack(dataset)[:, None],
        "dataset_provided_index": np.asarray(dataset_index, np.int64),
        "provided_masks": np.stack(prov)[:, None].astype(np.float32),
        "provided_index": np.asarray(prov_index, np.int64),
    }
