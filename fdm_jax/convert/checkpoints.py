"""Reading the original code's checkpoint files (`Solver.save` containers or bare state_dicts).

`load_inpainting_parts` applies the original's loading rule (inpainting_model.py init_from_ckpt):
the codec (+FDM) comes from the codec checkpoint, and only `generator.*` is taken from the
transformer checkpoint, whose `content_codec.*` is a frozen copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from fdm_jax.convert.pth_reader import load_pth
from fdm_jax.convert.put_fdm import ConversionError, convert_inpainting_parts, split_inpainting_state_dict


def read_state_dict(path: str | Path, use_torch: bool | None = None) -> dict[str, np.ndarray]:
    """The model state_dict of an original checkpoint: ckpt['model'] (Solver.save), ckpt['state_dict']
    (Lightning), or the file itself when it is a bare state_dict."""
    obj = load_pth(path, use_torch=use_torch)
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], Mapping):
                return dict(obj[key])
        if obj and all(isinstance(v, np.ndarray) for v in obj.values()):
            return dict(obj)
        raise ConversionError(f"{path}: no state_dict found (top-level keys: {sorted(map(str, obj))[:10]}; "
                              "expected 'model', 'state_dict' or tensors)")
    raise ConversionError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")


def load_inpainting_parts(paths: Sequence[str | Path], use_torch: bool | None = None):
    """Merge InpaintingModel checkpoints into {'codec'|'fdm'|'sampler': sub-state_dict}.

    Returns (parts, ignored) where ignored maps '<file>:<key or prefix>' to the reason. A part
    supplied by two files of equal standing is an error naming both.
    """
    chosen: dict[str, tuple[int, str, dict]] = {}
    ignored: dict[str, str] = {}
    for path in paths:
        sd = read_state_dict(path, use_torch)
        parts, ign = split_inpainting_state_dict(sd, str(path))
        ignored.update({f"{path}:{k}": r for k, r in ign.items()})
        has_generator = "sampler" in parts
        for name, sub in parts.items():
            # A codec/FDM inside a transformer checkpoint is a frozen copy: lowest standing.
            rank = 0 if (has_generator and name != "sampler") else 1
            if name in chosen and chosen[name][0] == rank:
                raise ConversionError(f"{name} weights found in both {chosen[name][1]} and {path}; "
                                      "pass one checkpoint per part")
            if name not in chosen or rank > chosen[name][0]:
                if name in chosen:
                    ignored[f"{chosen[name][1]}:{name}"] = f"frozen copy; {name} taken from {path}"
                chosen[name] = (rank, str(path), sub)
            else:
                ignored[f"{path}:{name}"] = f"frozen copy; {name} taken from {chosen[name][1]}"
    return {name: sub for name, (_, _, sub) in chosen.items()}, ignored


def load_original_inpainting_model(paths: Sequence[str | Path], models: Mapping, use_torch: bool | None = None):
    """Convert original checkpoint file(s) into {'codec': vars, 'fdm': vars, 'sampler': vars} for the
    given modules (see fdm_jax.put_fdm.build_models). Parts without a module are left out."""
    parts, _ = load_inpainting_parts(paths, use_torch)
    missing = [name for name in models if name not in parts]
    if missing:
        raise ConversionError(f"{', '.join(map(str, paths))}: no weights for {', '.join(missing)} "
                              f"(found: {', '.join(sorted(parts)) or 'nothing'})")
    return convert_inpainting_parts(parts, models, source=", ".join(map(str, paths)))
