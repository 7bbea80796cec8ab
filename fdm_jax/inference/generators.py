"""One-shot inpainting generators behind `python -m fdm_jax.inpaint --model ...`: Big-LaMa (optionally
with multiscale feature refinement), TSGL-LaMa (512) and TSGL-MEDFE (256).

Each takes the image at its own size policy (LaMa and TSGL-LaMa: full resolution, padded to the
generator's modulo and cropped back, as the originals; TSGL-MEDFE: 256x256 only, as the original)
and a known-pixel mask (1 = known), and returns one deterministic result with the known pixels
copied back, as the originals write their outputs.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.nn.padding import pad_to_modulo

from fdm_jax.inference import registry


# Module-level jitted entry points with the (hashable, static) module definition and the variables and
# data as arguments: one compilation per model and input shape, reused across calls and images.
@functools.partial(jax.jit, static_argnums=0)
def _apply(model, variables, *inputs):
    return model.apply(variables, *inputs)


@functools.partial(jax.jit, static_argnums=0)
def _init(model, key, *inputs):
    return model.init(key, *inputs)


@functools.partial(jax.jit, static_argnums=0)
def _lama_predict(model, variables, image, mask):
    from fdm_jax.lama.generator import predict

    return predict(model, variables, image, mask)


@dataclasses.dataclass(frozen=True, eq=False)
class Generator:
    name: str
    config: Any
    model: Any
    variables: Any


def load(name: str, checkpoint: str, config_spec=None) -> Generator:
    """`checkpoint`: an original checkpoint (LaMa's Lightning best.ckpt or a generator state_dict;
    TSGL's .pth) or 'random' (a smoke test: random weights). `config_spec`: a spec string, a
    ConfigDict, or None for the paper config of `name`."""
    from fdm_jax.cli.config_loading import load_config

    if name not in registry.GENERATORS:
        raise ValueError(f"--model {name!r}: expected one of put_fdm, {', '.join(registry.GENERATORS)}")
    entry = registry.get(name)
    if config_spec is None or isinstance(config_spec, str):
        config = load_config(config_spec or entry.config)
    else:
        config, config_spec = config_spec, "(given config)"
    if registry.name_of(config) != name:
        raise ValueError(f"--config {config_spec}: not a {name} config (model_name {config.get('model_name')!r})")
    model = entry.build(config)
    variables = entry.random_variables(model, config) if checkpoint == "random" else entry.load_original(checkpoint, model)
    return Generator(name, config, model, variables)


def _random_init(model, name: str):
    s = model.modulo if name == "tsgl_lama" else 256
    x = jnp.zeros((1, s, s, 3))
    one = jnp.ones((1, s, s, 1))
    if name == "tsgl_lama":
        return _init(model, jax.random.PRNGKey(0), x, one, one, one)
    return _init(model, jax.random.PRNGKey(0), x, one, x, one, one)


def inpaint(gen: Generator, image: np.ndarray, known: np.ndarray, *, refine: bool = False, progress: bool = False,
            refine_overrides: dict | None = None) -> np.ndarray:
    """image uint8 (H, W, 3), known float (H, W) with 1 = known -> float RGB [0, 255] result.
    `refine` (lama, tsgl_lama): multiscale feature refinement with the config's `refiner` settings
    (or RefineConfig defaults), `refine_overrides` replacing some of them."""
    from fdm_jax.io.images import InputError

    if image.shape[:2] != known.shape:
        raise InputError(f"mask shape {known.shape} != image size {image.shape[:2]}; --model {gen.name} "
                         f"works at the image's own resolution")
    if gen.name == "tsgl_medfe":
        if refine:
            raise InputError("--refine needs a front/rear model: --model lama or tsgl_lama")
        return _medfe(gen, image, known)
    img = jnp.asarray(image, jnp.float32)[None] / 255.0
    msk = jnp.asarray(known, jnp.float32)[None, ..., None]
    if refine:
        from fdm_jax.lama.refine import RefineConfig, refine as refine_fn

        settings = dict(gen.config.get("refiner", {}))
        settings.update(refine_overrides or {})
        if gen.name == "tsgl_lama":
            from fdm_jax.tsgl.lama import front_rear
            settings["modulo"] = gen.model.modulo
            out = refine_fn(front_rear(gen.model), gen.variables, img, msk, RefineConfig(**settings), progress=progress)
        else:
            from fdm_jax.lama.generator import front_rear
            out = refine_fn(front_rear(gen.model), gen.variables, img, msk, RefineConfig(**settings), progress=progress)
        return np.asarray(out[0]) * 255.0
    if gen.name == "lama":
        out = _lama_predict(gen.model, gen.variables, img, msk)
        return np.asarray(out[0]) * 255.0
    return _tsgl_lama(gen, image, known)


def _tsgl_lama(gen: Generator, image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """TSGL_Lama/test: [0, 1] image, edges/gray of the [0, 1] pipeline (no wrap-around), tanh output,
    known pixels copied back."""
    from fdm_jax.tsgl.structure import edge_and_gray, to_unit_range

    h, w = known.shape
    img_u8 = pad_to_modulo(image, gen.model.modulo, mode="symmetric", axes=(0, 1))
    k = pad_to_modulo(known.astype(np.float32), gen.model.modulo, mode="symmetric", axes=(0, 1))
    edge, gray = edge_and_gray(img_u8, wraparound=False)
    x = to_unit_range(img_u8)[None]
    out = _apply(gen.model, gen.variables, jnp.asarray(x), jnp.asarray(edge[None]), jnp.asarray(gray[None]),
                                   jnp.asarray(k[None, ..., None]))
    out = np.asarray(out[0])
    res = x[0] * k[..., None] + out * (1.0 - k[..., None])
    return np.clip(res[:h, :w], 0.0, 1.0) * 255.0


def _medfe(gen: Generator, image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """TSGL_MEDFE/test at 256x256: [-1, 1] image, edges/gray with the uint8 wrap-around of its pipeline,
    and the texture input of config.data.texture_source: 'rtv' (the original's: StructureFlow's
    tsmooth of the image, fdm_jax.tsgl.rtv) or 'gaussian' (PIL GaussianBlur, the named fallback the
    fixtures and the ':tiny' CPU config use)."""
    from PIL import Image, ImageFilter

    from fdm_jax.tsgl import rtv
    from fdm_jax.tsgl.structure import edge_and_gray, normalize_image
    from fdm_jax.io.images import InputError

    if image.shape[:2] != (256, 256):
        raise InputError(f"--model tsgl_medfe works at 256x256 only (the original's fixed sizes); "
                         f"got {image.shape[1]}x{image.shape[0]}")
    edge, gray = edge_and_gray(image, wraparound=True)
    data = gen.config.get("data", {})
    source = data.get("texture_source", "gaussian")
    if source == "rtv":
        r = data.rtv
        texture = rtv.rtv_uint8(np.ascontiguousarray(image, np.uint8), lam=float(r.lam), sigma=float(r.sigma),
                                sharpness=float(r.sharpness), max_iter=int(r.max_iter), solver=str(r.solver))
    elif source == "gaussian":
        radius = float(data.get("texture_blur_radius", 2.0))
        texture = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))
    else:
        raise InputError(f"config data.texture_source {source!r}: expected 'rtv' or 'gaussian'")
    x, t = normalize_image(image)[None], normalize_image(texture)[None]
    k = known.astype(np.float32)[None, ..., None]
    out = _apply(gen.model, gen.variables, jnp.asarray(x), jnp.asarray(edge[None]), jnp.asarray(t),
                                   jnp.asarray(gray[None]), jnp.asarray(k))
    res = x[0] * k[0] + np.asarray(out[0]) * (1.0 - k[0])
    return np.clip((res + 1.0) / 2.0, 0.0, 1.0) * 255.0
