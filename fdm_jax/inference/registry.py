"""The model registry: every model the project ships, by name, with what builds it, what converts the
original's checkpoint into its variables, what gives it random weights, and its paper config.

    entry = registry.get("lama")
    config = load_config(entry.config)          # 'big_lama', a shipped config name
    model = entry.build(config)                 # the Flax module(s)
    variables = entry.load_original(path, model)

`fdm_jax.load`, `python -m fdm_jax.inpaint --model NAME`, `summary` and the generators' loader look
models up here instead of keeping their own factories.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    config: str                                   # shipped config name (configs/<config>.py)
    kind: str                                     # 'pluralistic' (samples) or 'generator' (one result)
    build: Callable[[Any], Any]                   # config -> module (or {'codec', 'sampler', 'fdm'} modules)
    load_original: Callable[[Any, Any], Any]      # (checkpoint path(s), module(s)) -> variables
    random_variables: Callable[[Any, Any], Any]   # (module(s), config) -> variables (a smoke test)


def _put_fdm_build(config):
    from fdm_jax.put_fdm import build_models

    return build_models(config.model)


def _put_fdm_original(paths, models):
    from fdm_jax.convert.checkpoints import load_original_inpainting_model

    return load_original_inpainting_model(list(paths), models)


def _put_fdm_random(models, config):
    from fdm_jax.inference.put_fdm import _random_variables

    return _random_variables(config, models)


def _lama_build(config):
    from fdm_jax.lama.generator import FFCResNetGenerator

    return FFCResNetGenerator(**config.model)


def _lama_original(path, model):
    from fdm_jax.convert.lama import load_generator

    return load_generator(path, model)


def _lama_random(model, config):
    from fdm_jax.lama.generator import random_variables

    return random_variables(model, 0)


def _tsgl_build(config):
    from fdm_jax.convert.tsgl import build_generator

    return build_generator(config.model)


def _tsgl_original(name):
    def load(path, model):
        from fdm_jax.convert.tsgl import load_lama_generator, load_medfe_generator

        return (load_lama_generator if name == "tsgl_lama" else load_medfe_generator)(path, model)

    return load


def _tsgl_random(name):
    def init(model, config):
        from fdm_jax.inference.generators import _random_init

        return _random_init(model, name)

    return init


REGISTRY: dict[str, ModelEntry] = {
    "put_fdm": ModelEntry("put_fdm", "paris", "pluralistic", _put_fdm_build, _put_fdm_original, _put_fdm_random),
    "lama": ModelEntry("lama", "big_lama", "generator", _lama_build, _lama_original, _lama_random),
    "tsgl_lama": ModelEntry("tsgl_lama", "tsgl_lama", "generator", _tsgl_build, _tsgl_original("tsgl_lama"),
                            _tsgl_random("tsgl_lama")),
    "tsgl_medfe": ModelEntry("tsgl_medfe", "tsgl_medfe", "generator", _tsgl_build, _tsgl_original("tsgl_medfe"),
                             _tsgl_random("tsgl_medfe")),
}
GENERATORS = tuple(n for n, e in REGISTRY.items() if e.kind == "generator")


def get(name: str) -> ModelEntry:
    if name not in REGISTRY:
        raise ValueError(f"model {name!r}: expected one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def name_of(config) -> str:
    """The registry name of a config (PUT + FDM configs carry no model_name)."""
    return str(config.get("model_name") or "put_fdm")
