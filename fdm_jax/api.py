"""The small Python API: load a model, inpaint arrays.

    import jax, fdm_jax
    model = fdm_jax.load("put_fdm_small")                      # the small model shipped in the package
    model = fdm_jax.load("runs/demo")                          # an fdm_jax training run
    out = model.inpaint(image, mask, key=jax.random.key(0), num_samples=4)   # (4, H, W, 3) uint8
    out = model.inpaint(image, mask, key=key, use_fdm=False, top_k=50)
    model = fdm_jax.load(["fdm_tuning.pth", "generator.pth"], config="configs/paris.py")  # original files
    lama = fdm_jax.load("best.ckpt", config="configs/big_lama.py")
    hi = lama.inpaint(image_1024, mask_1024, refine=True)        # multiscale feature refinement

Inputs (checked before any model runs; anything else is an `InputError` naming the argument):
  image  uint8 in [0, 255], or float in [0, 1]; (H, W, 3) or a batch (B, H, W, 3).
  mask   bool, or 0/1 (any integer or float dtype), or 0/255 (uint8); (H, W), (H, W, 1) or batched.
         By default True / 1 / 255 = HOLE, as the masks in `../shared/data` (`mask_polarity="known"`
         for 1 = known pixel). The mask must hold at least one hole and one known pixel per image.
PUT + FDM models work at their training size (config.image_size, e.g. 256): give images of that size
(`fdm_jax.io.images.resize_and_center_crop` does the original's resize + centre crop). LaMa and
TSGL-LaMa work at the image's own resolution; TSGL-MEDFE at 256x256.

Outputs are numpy uint8 RGB: `PutFdm.inpaint` returns (num_samples, H, W, 3) for one image and
(B, num_samples, H, W, 3) for a batch; `Generator.inpaint` (H, W, 3) or (B, H, W, 3). Known pixels
are pasted back by default (`paste_known=False` gives PUT's raw decoder output, as the original).

Randomness is explicit: `key` is a `jax.random.key`; the same key gives the same samples, and image
i's samples do not depend on the batch it runs in. Parameters are arguments of one jitted program
per model and setting (never closed over), so new images, keys and parameters of the same shapes
reuse the compiled program (`fdm_jax.put_fdm.sampling.jit_inpaint_samples`).

The functional layer underneath is plain Flax: `model.models["codec"].apply(model.variables["codec"],
...)`, the sampler's single pass `fdm_jax.put_fdm.sampling.fill_step` (from `init_state`), `sample_tokens` /
`inpaint` / `inpaint_samples`, and the refinement's `fdm_jax.lama.refine.refinement_loss` (targets from
`prepare_scale`); all compose with `jax.jit`, `jax.grad` and `jax.vmap` (one example each in the
README's "Python API" section, run by tests/test_api.py; more in notebooks/functional_tour.ipynb).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.io.images import InputError

__all__ = ["Generator", "InputError", "PutFdm", "load", "prepare_image", "prepare_mask"]

from fdm_jax.inference.registry import GENERATORS  # noqa: E402  (the registry's one-result models)


# -- input handling ------------------------------------------------------------------------------

def prepare_image(image, name: str = "image") -> np.ndarray:
    """uint8 [0, 255] or float [0, 1], (H, W, 3) or (B, H, W, 3) -> float32 (B, H, W, 3) in [0, 255]."""
    x = np.asarray(image)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise InputError(f"{name}: expected (H, W, 3) or (B, H, W, 3) RGB, got shape {np.shape(image)}")
    if min(x.shape[:3]) < 1:
        raise InputError(f"{name}: empty array of shape {np.shape(image)}")
    if x.dtype == np.uint8:
        return x.astype(np.float32)
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.floating)):
        raise InputError(f"{name}: expected uint8 in [0, 255] or float in [0, 1], got dtype {x.dtype}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"{name}: holds NaN or Inf values; expected finite values in [0, 1]")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{name}: float values in [{lo:.3g}, {hi:.3g}]; expected [0, 1] "
                         f"(use uint8 for [0, 255] images)")
    return x * 255.0


def prepare_mask(mask, shape: tuple[int, int, int], polarity: str = "hole", name: str = "mask") -> np.ndarray:
    """A mask (see the module doc) -> float32 (B, H, W, 1) with 1 = KNOWN, the models' convention.
    `shape` is the prepared image's (B, H, W)."""
    if polarity not in ("hole", "known"):
        raise InputError(f"mask_polarity {polarity!r}: expected 'hole' (1 = hole) or 'known' (1 = known pixel)")
    m = np.asarray(mask)
    b, h, w = shape
    if m.ndim >= 3 and m.shape[-1] == 1 and m.shape[-3:-1] == (h, w):
        m = m[..., 0]
    if m.shape == (h, w):
        m = np.broadcast_to(m, (b, h, w))
    if m.shape != (b, h, w):
        raise InputError(f"{name}: shape {np.shape(mask)} does not fit the image (expected ({h}, {w}), "
                         f"({h}, {w}, 1) or ({b}, {h}, {w}))")
    if m.dtype == np.bool_:
        hole = m
    elif np.issubdtype(m.dtype, np.number):
        if np.issubdtype(m.dtype, np.floating) and not np.isfinite(m).all():
            raise InputError(f"{name}: holds NaN or Inf values; expected 0/1 or 0/255")
        values = set(np.unique(m).tolist())
        if values <= {0, 1}:
            hole = m == 1
        elif values <= {0, 255}:
            hole = m == 255
        else:
            shown = sorted(values)[:6]
            raise InputError(f"{name}: values {shown}{'...' if len(values) > 6 else ''} are not binary; "
                             f"expected bool, 0/1 or 0/255")
    else:
        raise InputError(f"{name}: dtype {m.dtype}; expected bool, 0/1 or 0/255")
    if polarity == "known":
        hole = ~hole
    for i in range(b):
        if not hole[i].any():
            raise InputError(f"{name}: image {i} has no hole (mask_polarity={polarity!r}: "
                             f"{'1 = hole' if polarity == 'hole' else '1 = known'})")
        if hole[i].all():
            raise InputError(f"{name}: image {i} is all hole, no known pixel (mask_polarity={polarity!r})")
    return (~hole).astype(np.float32)[..., None]


def _to_uint8(x) -> np.ndarray:
    return np.clip(np.asarray(x), 0, 255).astype(np.uint8)  # truncation, as the original's tensor2image


# -- PUT + FDM -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class PutFdm:
    """A PUT + FDM inpainting model: its config, Flax modules and variables (all plain data)."""

    config: Any
    models: dict
    variables: dict

    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    def inpaint(self, image, mask, *, key, num_samples: int = 1, top_k: int | None = None,
                num_token_per_iter: int | None = None, temperature: float | None = None, use_fdm: bool = True,
                paste_known: bool = True, mask_polarity: str = "hole", progress: bool = False,
                schedule: str | None = None, num_passes: int | None = None) -> np.ndarray:
        """`num_samples` pluralistic inpaintings (module doc for inputs/outputs). top_k,
        num_token_per_iter (tokens filled per transformer pass; -1 = all in one pass), temperature,
        schedule ('sequential', the original's; 'parallel': MaskGIT's cosine schedule in num_passes
        passes) default to the config's `sampling` values (paper: top-50, 1 token per pass, T 1).
        progress: a line before a first-call compilation and a bar over the filled patches (stderr)."""
        from fdm_jax.put_fdm.sampling import composite, jit_inpaint_samples

        x = prepare_image(image)
        single = np.asarray(image).ndim == 3
        s = self.image_size
        if x.shape[1:3] != (s, s):
            raise InputError(f"image: {x.shape[2]}x{x.shape[1]} pixels; this model works at {s}x{s} "
                             f"(fdm_jax.io.images.resize_and_center_crop(image, {s}) does the original's "
                             f"resize + centre crop)")
        m = prepare_mask(mask, x.shape[:3], mask_polarity)
        if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise InputError(f"num_samples: expected an integer >= 1, got {num_samples!r}")
        sampling = self.config.get("sampling", {})
        top_k = int(sampling.get("top_k", 50) if top_k is None else top_k)
        num_tokens = int(self.models["sampler"].num_tokens)
        if not 1 <= top_k <= num_tokens:
            raise InputError(f"top_k: {top_k}; expected 1..{num_tokens} (the number of token classes)")
        k = int(sampling.get("num_token_per_iter", 1) if num_token_per_iter is None else num_token_per_iter)
        if k == 0 or k < -1:
            raise InputError(f"num_token_per_iter: {k}; expected a positive count or -1 (every patch in one pass)")
        schedule = str(sampling.get("schedule", "sequential") if schedule is None else schedule)
        if schedule not in ("sequential", "parallel"):
            raise InputError(f"schedule: {schedule!r}; expected 'sequential' (the original's) or 'parallel'")
        num_passes = int(sampling.get("num_passes", 16) if num_passes is None else num_passes)
        if num_passes < 1:
            raise InputError(f"num_passes: {num_passes}; expected a positive count")
        temperature = float(sampling.get("temperature", 1.0) if temperature is None else temperature)
        if not (np.isfinite(temperature) and temperature > 0):
            raise InputError(f"temperature: {temperature}; expected a positive number")
        if not (hasattr(key, "dtype") and (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
                                           or (key.dtype == jnp.uint32 and key.shape[-1:] == (2,)))):
            raise InputError("key: expected a JAX PRNG key, e.g. jax.random.key(0)")
        img, msk = jnp.asarray(x), jnp.asarray(m)
        v, models = self.variables, self.models
        on_step = None
        if progress:
            from fdm_jax.cli.compilation_cache import notice

            signature = (id(jit_inpaint_samples), models["codec"], models["sampler"], img.shape, int(num_samples),
                         top_k, bool(use_fdm))
            if signature not in _COMPILED:
                _COMPILED.add(signature)
                notice(f"the PUT+FDM sampler for {img.shape[0]}x{s}x{s}, {num_samples} sample(s), top-{top_k}")
            unknown = np.asarray(models["codec"].apply(v["codec"], msk, method=models["codec"].token_type) != 1)
            total = int(unknown.reshape(unknown.shape[0], -1).sum(axis=1).max())  # the longest image's fills
            if schedule == "parallel":
                total, k = num_passes, 1  # a bar over the passes
            _SamplingProgress.current = _SamplingProgress(total, int(num_samples), k)
            on_step = _on_step
        try:
            out = jit_inpaint_samples(models["codec"], v["codec"], models["sampler"], v["sampler"], models["fdm"],
                                      v["fdm"], img, msk, key, int(num_samples), top_k=top_k, num_token_per_iter=k,
                                      temperature=temperature, use_fdm=bool(use_fdm), on_step=on_step,
                                      schedule=schedule, num_passes=np.int32(num_passes))["inpainted_image"]
            out = jax.block_until_ready(out)
        finally:
            if _SamplingProgress.current is not None:
                _SamplingProgress.current.close()
        if paste_known:
            out = composite(out, img[None], msk[None])
        out = np.asarray(out).swapaxes(0, 1)  # (N, B, ...) -> (B, N, H, W, 3)
        out = _to_uint8(out)
        return out[0] if single else out


_COMPILED: set = set()  # sampler signatures this process has announced (progress=True)


def _on_step(step):
    """The compiled loop's progress callback: one module-level function, so the program is reused."""
    if _SamplingProgress.current is not None:
        _SamplingProgress.current.update(step)


class _SamplingProgress:
    """A tqdm bar over filled patches, fed from inside the compiled loop (jax.debug.callback) with the
    number of finished passes; a pass fills up to num_token_per_iter patches."""

    current = None

    def __init__(self, total: int, num_samples: int, per_iter: int = 1):
        import sys

        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=f"sampling {num_samples} sample(s): patches filled", unit="patch",
                        file=sys.stderr)
        self.total, self.per_iter, self.done = total, per_iter, 0

    def update(self, step):
        filled = self.total if self.per_iter == -1 else min(int(np.max(step)) * self.per_iter, self.total)
        if filled > self.done:
            self.bar.update(filled - self.done)
            self.done = filled

    def close(self):
        self.bar.close()
        _SamplingProgress.current = None


# -- one-shot generators (Big-LaMa, TSGL) --------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class Generator:
    """Big-LaMa or a TSGL generator: one deterministic result per image."""

    generator: Any  # fdm_jax.inference.generators.Generator

    @property
    def name(self) -> str:
        return self.generator.name

    @property
    def config(self):
        return self.generator.config

    @property
    def variables(self):
        return self.generator.variables

    def inpaint(self, image, mask, *, refine: bool = False, mask_polarity: str = "hole", progress: bool = False,
                **refine_overrides) -> np.ndarray:
        """(H, W, 3) or (B, H, W, 3) uint8 results with the known pixels of the input.
        refine (lama, tsgl_lama): multiscale feature refinement; refine_overrides (n_iters, lr,
        min_side, ...) replace the config's `refiner` settings."""
        from fdm_jax.inference import generators as gi

        x = prepare_image(image)
        single = np.asarray(image).ndim == 3
        m = prepare_mask(mask, x.shape[:3], mask_polarity)
        if refine and self.name not in ("lama", "tsgl_lama"):
            raise InputError(f"refine=True needs a front/rear model (lama, tsgl_lama), not {self.name}")
        out = np.stack([gi.inpaint(self.generator, xi.astype(np.uint8), mi[..., 0], refine=refine,
                                   refine_overrides=refine_overrides, progress=progress) for xi, mi in zip(x, m)])
        out = _to_uint8(out)
        return out[0] if single else out


# -- loading -------------------------------------------------------------------------------------

def load(checkpoint: str | Path | Sequence[str | Path], config=None, dtype: str | None = None) -> PutFdm | Generator:
    """A model from a checkpoint.

    checkpoint: the name of a model shipped in the package ("put_fdm_small", fdm_jax/inference/shipped.py;
    its own config, `config` is not used); an fdm_jax training run directory (its config travels with it);
    original PUT + FDM `.pth` files (a list, or a directory of them) with `config` naming the paper setting (default
    configs/paris.py); an original Big-LaMa / TSGL checkpoint with `config` naming configs/big_lama.py,
    tsgl_lama.py or tsgl_medfe.py; or "random" (random weights of `config`, a smoke test). `config`:
    a config file[:variant], a shipped config's name ("paris:tiny") or a ConfigDict. `dtype` (PUT +
    FDM): 'bfloat16' computes in bfloat16 with float32 parameters, 'float32' as the original; None:
    the config's model.dtype (float32 unless set).
    """
    from fdm_jax.cli.config_loading import load_config

    paths = [str(c) for c in (checkpoint if isinstance(checkpoint, (list, tuple)) else [checkpoint])]
    if config is not None:
        cfg = config = load_config(config) if isinstance(config, (str, Path)) else config
        name = cfg.get("model_name", "put_fdm")
        if name in GENERATORS:
            from fdm_jax.inference import generators as gi

            if len(paths) != 1:
                raise InputError(f"checkpoint: {name} takes one checkpoint file, got {len(paths)}")
            if dtype not in (None, "float32"):
                raise InputError(f"dtype {dtype!r}: only PUT + FDM models take a computation dtype, not {name}")
            return Generator(gi.load(name, paths[0], config))
    from fdm_jax.inference.put_fdm import load_put_fdm

    cfg, models, variables = load_put_fdm(paths, config if config is not None else "paris", dtype=dtype)
    return PutFdm(cfg, models, variables)
