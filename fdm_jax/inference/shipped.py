"""Models shipped inside the package, loadable by name (no download, no training run needed).

    import fdm_jax
    model = fdm_jax.load("put_fdm_small")          # = fdm_jax.inference.shipped.load("put_fdm_small")
    python -m fdm_jax.inpaint --checkpoint put_fdm_small --image IMG --mask MASK --num-samples 4 --out out/

`fdm_jax.inference.put_fdm.load_put_fdm` (behind `fdm_jax.load`, `inpaint` and `evaluate.py`) resolves a
shipped model's name here before it looks for files; a file or folder of that name in the current
directory wins.

A shipped model is a folder `fdm_jax/assets/<name>/` with `weights.npz` (the inference variables of
codec, sampler and FDM, flattened to '/'-joined keys: 'codec/params/...', 'codec/codebook/...',
'sampler/params/...', 'fdm/params/...') and `config.json` (the training run's config, which gives
the model sizes and sampling settings). Both files' SHA-256 are recorded in `SHIPPED` below and
checked on every load: a changed or damaged file is an error naming it, never a silently different
model. MODEL_CARD.md says how each was trained and evaluated.

The config of a shipped model is the one its run saved, in the config schema of that time; `load`
brings it to the current schema (`conform`: keys added since get the value that reproduces how the
model was run, keys removed since are dropped), so the shipped bytes, and their hashes, never change.

    python -m fdm_jax.inference.shipped export RUN_ROOT NAME [OUT_DIR]
        # writes fdm_jax/assets/NAME/ from a training run and prints the hashes to put in SHIPPED
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fdm_jax.weights import sha256_of

ASSETS = Path(__file__).resolve().parents[1] / "assets"
FILES = ("weights.npz", "config.json")

# name -> SHA-256 of each file in fdm_jax/assets/<name>/ (written by `export`, checked by `load`).
SHIPPED: dict[str, dict[str, str]] = {
    "put_fdm_small": {
        "weights.npz": "025c1531e0c4573f1dcbefc28ac17e0240b2f210f8c2330e227314d6db5be819",
        "config.json": "62f266e21e3644b6a0481196d36661f9a733681bad7f2b63fcfe87dd9d56a8a1",
    },
}

# Config keys the schema gained after a shipped model was exported, with the value that reproduces how
# that model was trained and evaluated (the defaults of configs/put_fdm_common.py).
ADDED_KEYS = {
    "model.sampler.attention": "einsum",  # FeatureSampler's attention; 'dot_product' gives the same numbers on CPU
    "sampling.schedule": "sequential",  # the original's fill order, the only one when put_fdm_small was trained
    "sampling.num_passes": 16,  # read by the 'parallel' schedule only
    "model.dtype": "float32",  # the computation dtype put_fdm_small was trained in
    "model.sampler.scan_blocks": False,  # weights.npz holds one subtree per block
}
# Config keys (or whole groups) the schema dropped after a shipped model was exported: settings no code
# reads (the values the original's YAML held for them, or the original's own paths).
REMOVED_KEYS = (
    "inference", "model_fixed", "sampling.num_samples",
    "data.codec_val_name", "data.hole_value", "data.subset_categories", "data.eval.return_data_keys",
    "reference.fdm_inference_s", "reference.fdm_params_exact", "reference.fdm_tflops", "reference.fdm_train_time",
    "reference.put_inference_s", "reference.put_params_exact", "reference.put_tflops", "reference.put_train_time",
    "reference.total_params", "masks.eval.available_mask_lists", "masks.eval.provided_mask_list_file",
    *(f"masks.{p}.{k}" for p in ("codec", "sampler", "fdm", "fdm_tuning")
      for k in ("multi_image_mask", "provided_mask_ratio", "return_data_keys", "val_mask_low_to_high")),
    *(f"train.{p}.{k}" for p in ("codec", "sampler", "fdm", "fdm_tuning")
      for k in ("adjust_lr", "base_lr", "codec_part_list", "codec_yaml_trainable", "grad_clip_norm", "lr_schedule",
                "name", "sample_iterations", "sample_unit", "save_epochs", "scheduler_step_every", "source",
                "validation_epochs")),
    "train.sampler.loss.normalizer_eps",
)


class ShippedModelError(ValueError):
    """A shipped model that is missing or whose files do not match their recorded SHA-256."""


def is_shipped(checkpoint) -> bool:
    """True when `checkpoint` (a string or a one-element list) names a shipped model and no file or
    folder of that name exists in the current directory (a local path wins)."""
    if isinstance(checkpoint, (list, tuple)):
        if len(checkpoint) != 1:
            return False
        checkpoint = checkpoint[0]
    name = str(checkpoint)
    return name in SHIPPED and not Path(name).exists()


def verify(name: str) -> Path:
    """The folder of shipped model `name`, after checking every file's SHA-256; ShippedModelError
    otherwise."""
    if name not in SHIPPED:
        raise ShippedModelError(f"no shipped model {name!r}; shipped: {', '.join(sorted(SHIPPED)) or 'none'}")
    folder = ASSETS / name
    for fname, expected in SHIPPED[name].items():
        path = folder / fname
        if not path.is_file():
            raise ShippedModelError(f"shipped model {name}: {path} is missing (reinstall the package)")
        got = sha256_of(Path(path))
        if got != expected:
            raise ShippedModelError(f"shipped model {name}: {path} has SHA-256 {got}, expected {expected} "
                                    "(the file is damaged or was replaced)")
    return folder


def conform(config: dict) -> dict:
    """A shipped config (a plain dict, as config.json holds it) in the current config schema: the
    `ADDED_KEYS` it lacks are set, the `REMOVED_KEYS` it holds are dropped. Returns a new dict."""
    config = json.loads(json.dumps(config))
    for key, value in ADDED_KEYS.items():
        *path, leaf = key.split(".")
        node = config
        for p in path:
            node = node.setdefault(p, {})
        node.setdefault(leaf, value)
    for key in REMOVED_KEYS:
        *path, leaf = key.split(".")
        node = config
        for p in path:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return config


def _unflatten(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        parts = key.split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def load(name: str, dtype: str | None = None):
    """(config, models, variables) of shipped model `name`, as
    `fdm_jax.inference.put_fdm.load_put_fdm` returns them (`dtype`: its computation dtype, None =
    float32); the files' SHA-256 are checked first."""
    import jax.numpy as jnp
    import ml_collections
    import numpy as np

    from fdm_jax.inference.put_fdm import with_dtype
    from fdm_jax.put_fdm import build_models

    folder = verify(name)
    config = with_dtype(ml_collections.ConfigDict(conform(json.loads((folder / "config.json").read_text()))), dtype)
    with np.load(folder / "weights.npz", allow_pickle=False) as z:
        flat = {k: jnp.asarray(z[k].astype(np.float32) if z[k].dtype == np.float16 else z[k]) for k in z.files}
    variables = _unflatten(flat)
    missing = sorted({"codec", "sampler", "fdm"} - set(variables))
    if missing:
        raise ShippedModelError(f"shipped model {name}: weights.npz holds no {', '.join(missing)} variables")
    return config, build_models(config.model), variables


def _flatten(tree, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def export(run_root: str | Path, name: str, out_dir: str | Path | None = None) -> dict:
    """Writes `weights.npz` and `config.json` of a training run (the run root of `python train.py`,
    holding codec/ sampler/ fdm/ fdm_tuning/) to `out_dir` (default fdm_jax/assets/<name>/) and
    returns {file: sha256}. Only inference variables are kept (no optimizer or discriminator state),
    in float32. The config's list files become paths relative to the repository
    (configs/<name>_lists/<file>), not the absolute paths of the machine that trained it."""
    import jax
    import numpy as np

    from fdm_jax.train.checkpointing import load_inference_variables

    variables, config = load_inference_variables([run_root])
    variables = {k: variables[k] for k in ("codec", "sampler", "fdm")}
    flat = {k: np.asarray(jax.device_get(v), dtype=np.float32) for k, v in _flatten(variables).items()}
    out = Path(out_dir) if out_dir is not None else ASSETS / name
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "weights.npz", "wb") as f:
        np.savez(f, **flat)  # uncompressed: np.savez writes fixed timestamps, so the bytes (and hash) are stable
    config = json.loads(json.dumps(dict(config), default=lambda o: o.to_dict() if hasattr(o, "to_dict") else list(o)))
    config["phase"] = "inference"
    config["shipped_name"] = name
    data = config.get("data", {})
    lists = f"configs/{name}_lists/"
    for key in ("train_list_file", "val_list_file"):
        if data.get(key):
            data[key] = lists + Path(data[key]).name
    if isinstance(data.get("eval"), dict) and data["eval"].get("image_list_file"):
        data["eval"]["image_list_file"] = lists + Path(data["eval"]["image_list_file"]).name
    (out / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    return {f: sha256_of(out / f) for f in FILES}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (3, 4) or argv[0] != "export":
        print("usage: python -m fdm_jax.inference.shipped export RUN_ROOT NAME [OUT_DIR]", file=sys.stderr)
        return 2
    hashes = export(argv[1], argv[2], argv[3] if len(argv) == 4 else None)
    print(json.dumps({argv[2]: hashes}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
