"""Loading a PUT + FDM inpainting model for inference (the `inpaint` and `evaluate` commands).

    config, models, variables = load_put_fdm(["runs/demo"])                        # a training run
    config, models, variables = load_put_fdm(["codec_fdm.pth", "transformer.pth"], "configs/paris.py")
    config, models, variables = load_put_fdm(["random"], "configs/paris.py:tiny")  # smoke test

`checkpoints` is one of:
  * the name of a model shipped in the package, e.g. ["put_fdm_small"] (fdm_jax/inference/shipped.py,
    MODEL_CARD.md): its own config and weights, SHA-256 checked; `config_spec` is not used;
  * fdm_jax training runs: a run root as `python train.py` writes it (codec/ sampler/ fdm/
    fdm_tuning/) or phase run directories. The codec and FDM come from the latest phase, the
    transformer from `sampler`; the model sizes come from the run's saved config (`config_spec`
    is not used);
  * original PUT + FDM `.pth` files (the codec+FDM file and the transformer file, in any order), or
    a directory holding them; the model sizes come from `config_spec`;
  * ["random"]: freshly initialised models of `config_spec` (their samples are noise).

Returns (config: ml_collections.ConfigDict, models: {'codec', 'sampler', 'fdm'} Flax modules,
variables: {'codec', 'sampler', 'fdm'} Flax variable trees). Problems with the inputs raise
`fdm_jax.io.images.InputError` (or the converters' ConversionError / PthFormatError) with a one-line
message naming the path.
"""

from __future__ import annotations

import functools

from pathlib import Path
from typing import Sequence

__all__ = ["load_put_fdm", "resolve_checkpoints"]


def resolve_checkpoints(checkpoints: Sequence[str]) -> tuple[str, list[str]]:
    """('random' | 'pth' | 'runs', paths): what kind of checkpoint `checkpoints` names, with
    directories of `.pth` files expanded to the (sorted) files."""
    from fdm_jax.io.images import InputError

    checkpoints = [str(c) for c in checkpoints]
    if not checkpoints:
        raise InputError("no checkpoint given: name a shipped model (put_fdm_small), an fdm_jax run directory, "
                         "original .pth files or 'random'")
    if "random" in checkpoints:
        if checkpoints != ["random"]:
            raise InputError("--checkpoint random: cannot be combined with other checkpoints")
        return "random", []
    files: list[str] = []
    project: list[str] = []
    for c in checkpoints:
        p = Path(c)
        if p.is_dir():
            found = sorted(str(f) for f in p.glob("*.pth"))
            if found:
                files += found
            else:
                project.append(str(p))
        elif p.is_file():
            files.append(str(p))
        else:
            raise InputError(f"checkpoint {p}: no such file or directory")
    if project and files:
        raise InputError("--checkpoint: give either original .pth files or fdm_jax run directories, not both")
    return ("runs", project) if project else ("pth", files)


def load_put_fdm(checkpoints: Sequence[str], config_spec="paris", dtype: str | None = None):
    """(config, models, variables) of a PUT + FDM model; see the module docstring. `config_spec`
    (a spec string or a ConfigDict) gives the model sizes of .pth files and 'random'. `dtype`
    ('float32' | 'bfloat16'; None: the config's model.dtype, float32 for runs saved without one)
    replaces config.model.dtype: the computation dtype (the parameters load as float32 either way)."""
    from fdm_jax.inference import shipped

    if shipped.is_shipped(list(checkpoints)):  # a shipped model's name, e.g. put_fdm_small (a local path wins)
        return shipped.load(str(list(checkpoints)[0]), dtype)
    kind, paths = resolve_checkpoints(checkpoints)
    if kind == "runs":
        return _load_runs(paths, dtype)

    from fdm_jax.cli.config_loading import load_config
    from fdm_jax.inference import registry

    entry = registry.get("put_fdm")
    config = load_config(config_spec) if isinstance(config_spec, str) else config_spec
    config = with_dtype(config, dtype)
    models = entry.build(config)
    if kind == "random":
        return config, models, entry.random_variables(models, config)
    return config, models, entry.load_original(paths, models)


@functools.lru_cache(maxsize=None)
def _jit_init():
    """One jitted init with the (hashable) module static: `jax.jit(module.init)` made a new program per
    call (about a minute of compiling per tiny model on 2 cores); this one is compiled once per model."""
    import jax

    return jax.jit(lambda module, key, *inputs: module.init(key, *inputs), static_argnums=0)


def _random_variables(config, models) -> dict:
    import jax
    import jax.numpy as jnp

    s = config.image_size
    codec, sampler, fdm = models["codec"], models["sampler"], models["fdm"]
    k = jax.random.split(jax.random.key(0), 3)
    init = _jit_init()
    return {
        "codec": init(codec, k[0], jnp.zeros((1, s, s, 3)), jnp.ones((1, s, s, 1))),
        "sampler": init(sampler, k[1], jnp.zeros((1, sampler.seq_len, sampler.feature_dim))),
        "fdm": init(fdm, k[2], jnp.zeros((1, 4, 4, fdm.embed_dim)), jnp.ones((1, 4, 4, 1))),
    }


def with_dtype(config, dtype: str | None):
    """`config` with model.dtype = dtype (a copy; the caller's config is left alone); None: as is."""
    if dtype is None:
        return config
    from fdm_jax.io.images import InputError
    from fdm_jax.put_fdm import DTYPES

    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.model.dtype = dtype
    return config


def _load_runs(dirs: list[str], dtype: str | None = None):
    """fdm_jax training runs (a run root with phase folders, or phase folders): the model sizes come
    from the checkpoints' own config."""
    import ml_collections

    from fdm_jax.io.images import InputError
    from fdm_jax.put_fdm import build_models
    from fdm_jax.train.checkpointing import CheckpointError, load_inference_variables

    try:
        variables, saved = load_inference_variables(dirs)
    except CheckpointError as e:
        raise InputError(str(e)) from None
    missing = sorted({"codec", "sampler", "fdm"} - set(variables))
    if missing:
        raise InputError(f"--checkpoint {', '.join(dirs)}: no {', '.join(missing)} weights in these runs "
                         f"(train phases codec/sampler/fdm[_tuning], or give the run root holding them)")
    config = with_dtype(ml_collections.ConfigDict(saved), dtype)
    models = build_models(config.model)
    from fdm_jax.put_fdm.feature_sampler import with_sampler_layout

    return config, models, with_sampler_layout(variables, models)
