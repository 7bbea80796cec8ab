"""TSGL training as a phase of the project's one training loop (fdm_jax/train/loop.py).

    phase = make_phase(config, steps_per_epoch)        # config.model_name 'tsgl_medfe' | 'tsgl_lama'
    state = phase.init_state(key)
    state, metrics = phase.train_step(state, batch)    # jitted, donated and sharded by the loop

One iteration, as htyjers/ConvInpaint-TSGL@e9f6438 TSGL_*/train/train.py orders it (losses in
fdm_jax/tsgl/losses.py):

| model        | order                                                                 | optimizers (Adam)              |
|--------------|-----------------------------------------------------------------------|--------------------------------|
| `tsgl_medfe` | G forward; D step on (I, C.detach()); G step through the UPDATED D,   | G 5e-4, D 1e-4, betas (0.5,    |
|   (256)      | reusing the same G forward (jax.vjp); hinge GAN, 5:1 hole/valid L1    | 0.99); StepLR(3 epochs, 0.1)   |
| `tsgl_lama`  | G forward; G step (D on out and I: FM, softplus; ResNetPL absent);    | G 1e-3, D 1e-4, betas (0,      |
|   (512)      | then D step on I (+ R1) and C.detach()                                | 0.99); constant lr             |

C = I*M + out*(1-M). Both networks are called in the original's train mode (`train=True`): BatchNorm
batch statistics with PyTorch's running-statistic update (momentum 0.1, unbiased variance) wherever the
model threads `train` to its norms, and one spectral-norm power iteration per call; those collections
live in the state (`model_state`, `disc['variables']`) and are threaded functionally (flax `mutable`). Under the loop's batch-sharded jit the batch statistics are
those of the GLOBAL batch (XLA reduces across devices), i.e. SyncBatchNorm over all devices, where the
original's DataParallel computes them per GPU chunk (its SPADE norms are SynchronizedBatchNorm2d).

Batches: the loop's `image` (B, H, W, 3) float [0, 255], `mask` (B, H, W, 1) 1 = known, plus the
structure inputs `structure_example_fn(config)` adds per example on the host in the data pipeline
(TrainIterator(example_fn=...)): `edge`, `gray` from the uint8 image with the train pipelines' wrap-around
quirk (fdm_jax.tsgl.structure.edge_and_gray(wraparound=True): both train loaders run image_to_edge on the
[-1, 1] tensor) and, for the 256 model, `texture`, selected by `config.data.texture_source`:
  'rtv'      (default) the RTV image of TSGL's README: StructureFlow's tsmooth(im2double(img), 0.015, 3,
             0.001, 3) of the FULL image (RenYurui/StructureFlow:scripts/matlab/generate_structure_images.m),
             im2uint8, then cropped and flipped with the image (fdm_jax.tsgl.rtv; cached on disk under
             `config.data.rtv.cache_dir`, as the original precomputes a folder of RTV images);
  'gaussian' this port's former stand-in: PIL GaussianBlur(texture_blur_radius) of the cropped image.
Both are normalised to [-1, 1]. The image is normalised in the step: (u/255 - 0.5)/0.5.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from fdm_jax.tsgl import losses as L

VARIANTS = {"tsgl_medfe": "medfe", "tsgl_lama": "lama"}
PHASE_NAME = "generator"  # the only phase of a TSGL config (config.phase, config.train/masks keys)


@struct.dataclass
class TSGLTrainState:
    step: jax.Array  # iteration count, int32
    params: dict  # {'generator': ...}: the trained generator parameters (structure decoder included)
    model_state: dict  # {'generator': {'batch_stats', 'spectral_norm'}}: train-mode running statistics
    opt_state: Any  # optax state of the generator's Adam
    disc: dict  # {'variables': {'params', 'spectral_norm' | 'batch_stats'}, 'opt_state'}
    key: jax.Array  # base PRNG key (the steps draw nothing; kept for the loop's interface)

    def variables(self, name: str = "generator") -> dict:
        """Flax variables of the generator (params + its BN/spectral-norm collections)."""
        if name != "generator":
            raise KeyError(f"TSGL train state holds the 'generator' (and its discriminator), not {name!r}")
        return {"params": self.params["generator"], **self.model_state["generator"]}


def variant_of(config) -> str:
    name = config.get("model_name")
    if name not in VARIANTS:
        raise ValueError(f"config key model_name: {name!r} is not one of {tuple(VARIANTS)}")
    return VARIANTS[name]


# ------------------------------------------------------------------------------------ host-side inputs

def _blur_texture(rgb_uint8: np.ndarray, radius: float) -> np.ndarray:
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(rgb_uint8).filter(ImageFilter.GaussianBlur(radius)))


TEXTURE_SOURCES = ("rtv", "gaussian")


def texture_source(config) -> str:
    """config.data.texture_source of a tsgl_medfe config ('rtv' when absent)."""
    src = str(config.data.get("texture_source", "rtv"))
    if src not in TEXTURE_SOURCES:
        raise ValueError(f"config key data.texture_source: {src!r} is not one of {TEXTURE_SOURCES}")
    return src


def rtv_full_image_fn(config) -> Callable[[np.ndarray, str], dict]:
    """(full uint8 image, name) -> {'rtv': im2uint8 of tsmooth}, with the parameters and cache of
    config.data.rtv (TrainIterator preprocesses it like the image)."""
    from fdm_jax.tsgl import rtv

    r = config.data.rtv
    kw = dict(lam=float(r.lam), sigma=float(r.sigma), sharpness=float(r.sharpness), max_iter=int(r.max_iter),
              solver=str(r.solver), cache_dir=str(r.cache_dir) or None)

    def full_image_fn(image: np.ndarray, name: str) -> dict:
        return {"rtv": rtv.rtv_uint8(image, **kw)}

    return full_image_fn


def structure_example_fn(config) -> Callable[[dict], dict]:
    """The per-example host function the data pipeline applies (TrainIterator(example_fn=...)):
    example {'image' (H, W, 3) float [0, 255], ...} -> {'image' rounded to the uint8 grid the original's
    PIL pipeline has, 'edge', 'gray' (H, W, 1) float32, and for tsgl_medfe 'texture' (H, W, 3) [-1, 1]}.
    For the RTV texture it carries `full_image_fn` (see TrainIterator), whose cropped 'rtv' it reads."""
    from fdm_jax.tsgl import structure

    variant = variant_of(config)
    wrap = bool(config.data.train_wraparound)
    sigma = float(config.data.canny_sigma)
    source = texture_source(config) if variant == "medfe" else None
    radius = float(config.data.get("texture_blur_radius", 2.0))

    def fn(example: dict) -> dict:
        img = np.asarray(example["image"])
        if img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"example['image']: expected (H, W, 3) in [0, 255], got shape {img.shape}")
        u8 = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        edge, gray = structure.edge_and_gray(u8, wraparound=wrap, sigma=sigma)
        out = {"image": u8.astype(np.float32), "edge": edge, "gray": gray}
        if source == "rtv":
            if "rtv" not in example:
                raise ValueError("texture_source 'rtv': the example has no 'rtv' image; build the TrainIterator "
                                 "with this function as example_fn (it calls its full_image_fn)")
            t8 = np.clip(np.rint(np.asarray(example["rtv"])), 0, 255).astype(np.uint8)
            out["texture"] = structure.normalize_image(t8)
        elif source == "gaussian":
            out["texture"] = structure.normalize_image(_blur_texture(u8, radius))
        return out

    if source == "rtv":
        fn.full_image_fn = rtv_full_image_fn(config)
    return fn


# ------------------------------------------------------------------------------------ the phase

def _normalize(image_255: jax.Array) -> jax.Array:
    """ToTensor + Normalize(0.5, 0.5) in float32, as fdm_jax.tsgl.structure.normalize_image."""
    return (image_255.astype(jnp.float32) / jnp.float32(255) - jnp.float32(0.5)) / jnp.float32(0.5)


def _to_255(x: jax.Array) -> jax.Array:
    return (x + 1.0) * 127.5


@dataclasses.dataclass(frozen=True, eq=False)
class TSGLPhase:
    """Static description of TSGL training (not a pytree); the interface of fdm_jax.put_fdm.phases.Phase."""

    name: str
    config: Any
    variant: str  # 'medfe' | 'lama'
    models: dict  # {'generator': module (with the structure decoder), 'discriminator': module}
    tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    schedule: Callable
    d_schedule: Callable
    total_steps: int

    @property
    def cfg(self):
        return self.config.train[self.name]

    # -- state ------------------------------------------------------------------------------------
    def _dummy_inputs(self, n: int = 1) -> dict:
        s = int(self.config.image_size)
        b = {"image": jnp.zeros((n, s, s, 3)), "edge": jnp.zeros((n, s, s, 1)), "gray": jnp.zeros((n, s, s, 1)),
             "mask": jnp.ones((n, s, s, 1))}
        if self.variant == "medfe":
            b["texture"] = jnp.zeros((n, s, s, 3))
        return b

    def _init_generator(self, key) -> dict:
        b = self._dummy_inputs()
        args = ((b["image"], b["edge"], b["texture"], b["gray"], b["mask"]) if self.variant == "medfe"
                else (b["image"], b["edge"], b["gray"], b["mask"]))
        return self.models["generator"].init(key, *args, train=False, return_structure=True)

    def _fresh(self, key) -> tuple[dict, dict]:
        k_g, k_d = jax.random.split(key)
        g = self._init_generator(k_g)
        d = L.init_discriminator(self.variant, self.models["discriminator"], k_d,
                                 size=max(64, int(self.config.image_size) // 2))
        return dict(g), dict(d)

    def init_state(self, key, variables: dict | None = None) -> TSGLTrainState:
        """A fresh state (the original's initialisations, fdm_jax/tsgl); `variables['generator']`
        (e.g. a project run's, fdm_jax.train.checkpointing.load_trained_variables) replaces the fresh
        generator collections it has. The discriminator always starts fresh."""
        k_init, k_run = jax.random.split(key)
        g, d = jax.jit(self._fresh)(k_init)
        if variables and "generator" in variables:
            given = variables["generator"]
            unknown = set(given) - set(g)
            if unknown:
                raise ValueError(f"init variables for the generator: unknown collections {sorted(unknown)}")
            g = {**g, **given}
        params = {"generator": g["params"]}
        model_state = {"generator": {k: v for k, v in g.items() if k != "params"}}
        disc = {"variables": d, "opt_state": self.d_tx.init(d["params"])}
        return TSGLTrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=model_state,
                              opt_state=self.tx.init(params), disc=disc, key=k_run)

    def abstract_state(self, key) -> TSGLTrainState:
        """The state's shapes and dtypes (jax.ShapeDtypeStruct leaves), nothing computed."""
        return jax.eval_shape(lambda k: self.init_state(k), key)

    # -- inputs -----------------------------------------------------------------------------------
    def model_batch(self, batch: dict) -> dict:
        """The loop's batch -> the generator's inputs ([-1, 1] image, structure maps, mask)."""
        need = ("image", "mask", "edge", "gray") + (("texture",) if self.variant == "medfe" else ())
        missing = [k for k in need if k not in batch]
        if missing:
            raise ValueError(f"TSGL batch: missing {missing}; build the TrainIterator with "
                             f"example_fn=fdm_jax.tsgl.phase.structure_example_fn(config) (the loop does)")
        out = {k: batch[k] for k in need}
        out["image"] = _normalize(batch["image"])
        return out

    # -- the step ---------------------------------------------------------------------------------
    def train_step(self, state: TSGLTrainState, batch: dict):
        variant, gen, disc = self.variant, self.models["generator"], self.models["discriminator"]
        b = self.model_batch(batch)
        g_state0 = state.model_state["generator"]

        def forward(p):  # one G forward in train mode; its vjp serves the G step (train.py reuses it)
            return L.generator_forward(variant, gen, {**g_state0, "params": p}, b, train=True)

        outs, vjp, g_state = jax.vjp(forward, state.params["generator"], has_aux=True)
        fake = L.composite(outs[0], b["image"], b["mask"])

        def g_loss(d_vars):
            (loss, (terms, d_state)), grad_out = jax.value_and_grad(
                lambda o: L.generator_loss(variant, o, b, disc, d_vars), has_aux=True)(outs)
            return loss, terms, d_state, vjp(grad_out)[0]

        def d_step(d_vars, d_opt):
            (loss, (terms, d_state)), grad = jax.value_and_grad(
                lambda p: L.discriminator_loss(variant, disc, {**d_vars, "params": p}, b, fake),
                has_aux=True)(d_vars["params"])
            upd, d_opt = self.d_tx.update(grad, d_opt, d_vars["params"])
            new = {**d_vars, **d_state, "params": optax.apply_updates(d_vars["params"], upd)}
            return loss, terms, new, d_opt

        d_vars, d_opt = state.disc["variables"], state.disc["opt_state"]
        d_lr = self.d_schedule(_count(d_opt))
        if variant == "medfe":  # D step first, then G through the updated D (TSGL_MEDFE/train/train.py)
            d_loss, d_terms, d_vars, d_opt = d_step(d_vars, d_opt)
            g_loss_v, g_terms, d_state, g_grad = g_loss(d_vars)
            d_vars = {**d_vars, **d_state}  # G's D(C) call ran a power iteration in train mode too
        else:  # G step, then D on I and the detached composite (TSGL_Lama/train/train.py)
            g_loss_v, g_terms, d_state, g_grad = g_loss(d_vars)
            d_loss, d_terms, d_vars, d_opt = d_step({**d_vars, **d_state}, d_opt)
        lr = self.schedule(_count(state.opt_state))
        upd, opt_state = self.tx.update({"generator": g_grad}, state.opt_state, state.params)
        params = optax.apply_updates(state.params, upd)

        metrics = {k: v for k, v in g_terms.items() if k != "total"}
        metrics.update(loss=g_loss_v, lr=lr, d_loss=d_loss, d_lr=d_lr)
        metrics.update({f"d_{k}": v for k, v in d_terms.items() if k != "total"})
        metrics["hole_fraction"] = 1.0 - jnp.mean(b["mask"])
        new = state.replace(step=state.step + 1, params=params, model_state={"generator": dict(g_state)},
                            opt_state=opt_state, disc={"variables": d_vars, "opt_state": d_opt})
        return new, metrics

    # -- previews for sample grids ----------------------------------------------------------------
    def preview(self, state: TSGLTrainState, batch: dict) -> dict:
        """{'title': (B, H, W, 3) in [0, 255]}: masked input, edges, output, composite, target. The
        generator runs in eval mode (running statistics, stored spectral-norm vectors), as test.py."""
        b = self.model_batch(batch)
        (out, structure), _ = L.generator_forward(self.variant, self.models["generator"], state.variables(),
                                                  b, train=False)
        image, mask = b["image"], b["mask"]
        gray3 = lambda x: jnp.repeat(x, 3, axis=-1) * 255.0  # noqa: E731
        return {"masked input": _to_255(image * mask), "input edges": gray3(b["edge"] * mask),
                "predicted edges": gray3(structure), "output": _to_255(out),
                "composite": _to_255(L.composite(out, image, mask)), "target": _to_255(image)}


def _count(opt_state) -> jax.Array:
    for leaf in jax.tree_util.tree_leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState)):
        if isinstance(leaf, optax.ScaleByAdamState):
            return leaf.count
    raise ValueError("no Adam state in the optimizer state")


# ------------------------------------------------------------------------------------ construction

def _check_loss_weights(config, variant: str) -> None:
    """The loss weights are the original's constants (fdm_jax.tsgl.losses); config.loss documents them.
    A changed value would silently not apply, so refuse it."""
    lo = config.loss
    fixed = ({"hole_l1": L.MEDFE_HOLE_WEIGHT, "valid_l1": L.MEDFE_VALID_WEIGHT, "adversarial": L.MEDFE_ADV_WEIGHT}
             if variant == "medfe" else
             {"image_l1": L.LAMA_L1_WEIGHT, "structure_l1": L.LAMA_STRUCTURE_WEIGHT,
              "feature_matching": L.LAMA_FM_WEIGHT, "adversarial": L.LAMA_ADV_WEIGHT, "r1": L.LAMA_R1_WEIGHT})
    for k, v in fixed.items():
        if k in lo and float(lo[k]) != float(v):
            raise ValueError(f"config key loss.{k}: {lo[k]} differs from the original's {v}, the weight "
                             f"fdm_jax.tsgl.losses applies")
    if variant == "medfe" and lo.get("gan", "hinge") != "hinge":
        raise ValueError(f"config key loss.gan: {lo.gan!r}; the 256 model's train.py uses 'hinge'")
    if variant == "lama" and bool(lo.get("resnet_pl_available", False)):
        raise ValueError("config key loss.resnet_pl_available: True, but no ResNetPL (ADE20k ResNet50-dilated) "
                         "is wired into the TSGL phase; the term is left out")


def make_tsgl_phase(config, steps_per_epoch: int) -> TSGLPhase:
    """Builds the TSGL phase of `config` (configs/tsgl_medfe.py, configs/tsgl_lama.py)."""
    from fdm_jax.convert.tsgl import build_generator

    variant = variant_of(config)
    name = config.phase
    if name != PHASE_NAME:
        raise ValueError(f"config key phase: {name!r}; a TSGL config has the one phase {PHASE_NAME!r}")
    if int(steps_per_epoch) <= 0:
        raise ValueError(f"steps_per_epoch: {steps_per_epoch}; expected a positive number")
    _check_loss_weights(config, variant)
    cfg = config.train[name]
    total_steps = int(cfg.num_epochs) * int(steps_per_epoch)
    generator = build_generator(config.model, with_structure_decoder=True)
    dd = config.discriminator
    disc = (L.MedfeDiscriminator(tuple(dd.widths)) if variant == "medfe"
            else L.LamaDiscriminator(int(dd.ndf), int(dd.n_layers)))
    o = config.optimizer
    if variant == "medfe":
        # StepLR(step_size=3, gamma=0.1) stepped once per epoch: lr * 0.1 ** (epoch // 3).
        step = int(o.step_lr_epochs) * int(steps_per_epoch)
        schedule = optax.exponential_decay(float(o.g_lr), step, float(o.step_lr_gamma), staircase=True)
        d_schedule = optax.exponential_decay(float(o.d_lr), step, float(o.step_lr_gamma), staircase=True)
    else:  # TSGL_Lama/train/train.py: no scheduler
        schedule, d_schedule = optax.constant_schedule(float(o.g_lr)), optax.constant_schedule(float(o.d_lr))
    b1, b2 = float(o.b1), float(o.b2)
    tx = optax.adam(schedule, b1=b1, b2=b2, eps=1e-8)  # torch.optim.Adam defaults: eps 1e-8, no weight decay
    d_tx = optax.adam(d_schedule, b1=b1, b2=b2, eps=1e-8)
    return TSGLPhase(name=name, config=config, variant=variant,
                     models={"generator": generator, "discriminator": disc}, tx=tx, d_tx=d_tx,
                     schedule=schedule, d_schedule=d_schedule, total_steps=total_steps)


__all__ = ["TSGLPhase", "TSGLTrainState", "make_tsgl_phase", "structure_example_fn", "rtv_full_image_fn",
           "texture_source", "TEXTURE_SOURCES", "PHASE_NAME"]
