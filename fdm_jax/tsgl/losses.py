"""TSGL training losses and discriminators, as the original train.py files compute them
(htyjers/ConvInpaint-TSGL@e9f6438, not the paper's Eq. 16). Pure functions of network
outputs; the modules here are the two discriminators.

256 model (TSGL_MEDFE/train/train.py), hinge GAN, D = MedfeDiscriminator (4 spectral-norm convs k5):
    L_D = 1/2 [mean relu(1 - D(I)) + mean relu(1 + D(C))],  C = I*M + out*(1-M) (detached)
    L_G = 0.1 * (-mean D(C)) + [5 l1(out(1-M), I(1-M)) + l1(out M, I M)] + [5 l1(S(1-M), E(1-M)) + l1(S M, E M)]
    (l1 = mean over all elements; S = the structure decoder's sigmoid edges, E = the unmasked Canny map.)
    Not the paper's Eq. 16 (NS-GAN, plain L1). Order per iteration: G forward, D step on (I, C.detach()),
    then the G step through the UPDATED D, reusing the same G forward (use jax.vjp, see tests).

512 model (TSGL_Lama/train/train.py, losses.py, pcp.py), non-saturating GAN, D = LamaDiscriminator
(LaMa's NLayerDiscriminator with BatchNorm; its intermediate features feed feature matching):
    L_G = 10 l1(out M, I M) + 10 l1(S M, E M) + 900 ResNetPL(C, I) + 100 FM(D(out), D(I))
          + 10 mean softplus(-D(out))                  (D sees the raw output, not the composite)
    L_D = mean softplus(-D(I)) + 0.001 R1(I) + mean[softplus(D(C)) Hd + softplus(-D(C)) (1 - Hd)]
    with Hd = adaptive max-pool of the hole map to the logits' size, R1 = per-sample ||grad_I D(I)||^2,
    averaged. Order: G step first, then the D step on C.detach().
    ResNetPL needs the ADE20k ResNet50-dilated segmentation encoder, whose weights are not available
    offline: pass `perceptual(pred, target) -> scalar` (the per-layer feature MSEs summed, ResNetPL
    WITHOUT its internal x30; inputs are the [-1, 1] images) to include it; without it the term is left
    out (reported as absent in the terms).

Masks have 1 = known (the library polarity), images are in [-1, 1] (both train pipelines normalise).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdm_jax.nn.layers import Conv2d as TorchInitConv2d
from fdm_jax.tsgl.spade import BatchNorm, Conv2d, SNConv2d, SN_COLLECTION

MEDFE_HOLE_WEIGHT = 5.0  # train.py: 5 * l1(output * (1 - mask), image * (1 - mask))
MEDFE_VALID_WEIGHT = 1.0  # train.py: + l1(output * mask, image * mask)
MEDFE_ADV_WEIGHT = 0.1  # train.py: gen_loss += gen_fake_loss * 0.1
LAMA_L1_WEIGHT = 10.0  # train.py: 10 * l1(output * mask, image * mask) (known pixels only, as LaMa)
LAMA_STRUCTURE_WEIGHT = 10.0  # train.py: 10 * l1(image_high * mask, high * mask)
LAMA_PERCEPTUAL_WEIGHT = 900.0  # train.py: loss_resnet_pl(...) * 30, and ResNetPL(weight=30) multiplies again
LAMA_FM_WEIGHT = 100.0  # train.py: feature_matching_loss(...) * 100
LAMA_ADV_WEIGHT = 10.0  # losses.py generator_loss: fake_loss.mean() * weight, weight = 10.0
LAMA_R1_WEIGHT = 0.001  # train.py: discriminator_real_loss(..., gp_coef=0.001)
LRELU = 0.2


def l1(a: jax.Array, b: jax.Array) -> jax.Array:
    """nn.L1Loss(): mean |a - b| over all elements."""
    return jnp.mean(jnp.abs(a - b))


def composite(output: jax.Array, image: jax.Array, mask: jax.Array) -> jax.Array:
    """image * M + output * (1 - M) (train.py com_output)."""
    return image * mask + output * (1.0 - mask)


# ------------------------------------------------------------------------------------ discriminators

class MedfeDiscriminator(nn.Module):
    """TSGL_MEDFE model.py:Discriminator(in_channels=3, use_sigmoid=False, use_sn=True): four spectral-norm
    convs (k5, p1, no bias; strides 2, 2, 2, 1) each + LeakyReLU(0.2), then a plain conv k5 p1 with bias
    (`classifier`) -> patch logits. `widths` replaces the hard-coded 64/128/256/512. Weights N(0, 0.02)
    (init_weights; it reaches weight_orig through the shared storage of spectral_norm's `weight`)."""

    widths: Sequence[int] = (64, 128, 256, 512)

    @nn.compact
    def __call__(self, x: jax.Array, update_sn: bool = False) -> jax.Array:
        if x.ndim != 4 or min(x.shape[1:3]) < 32:
            raise ValueError(f"MedfeDiscriminator input: expected (B, H, W, C) with H, W >= 32, got {x.shape}")
        h = x
        for i, (w, s) in enumerate(zip(self.widths, (2, 2, 2, 1))):
            h = nn.leaky_relu(SNConv2d(w, 5, 1, use_bias=False, stride=s, name=f"encoder_{2 * i}")(h, update_sn),
                              LRELU)
        return Conv2d(1, 5, padding=1, name="classifier")(h)


class LamaDiscriminator(nn.Module):
    """TSGL_Lama model.py:Discriminator (LaMa's NLayerDiscriminator, n_layers=4, BatchNorm): conv k4 s2 p2
    + LReLU; (n_layers - 1) x conv k4 s2 p2 + BN + LReLU (channels double up to 512); conv k4 s1 p2 + BN +
    LReLU; conv k4 s1 p2 -> logits. Returns (logits, [outputs of model0 .. model_n]). PyTorch's default
    init (BaseDiscriminator does not call init_weights). `train`: BN batch statistics (mutable batch_stats)."""

    ndf: int = 64
    n_layers: int = 4

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False):
        if x.ndim != 4:
            raise ValueError(f"LamaDiscriminator input: expected (B, H, W, C), got shape {x.shape}")
        bn = dict(scale_init=nn.initializers.ones)
        feats = []
        h = nn.leaky_relu(TorchInitConv2d(self.ndf, 4, stride=2, padding=2, name="model0")(x), LRELU)
        feats.append(h)
        nf = self.ndf
        for n in range(1, self.n_layers + 1):
            nf = min(nf * 2, 512)
            stride = 2 if n < self.n_layers else 1
            h = TorchInitConv2d(nf, 4, stride=stride, padding=2, name=f"model{n}_conv")(h)
            h = nn.leaky_relu(BatchNorm(name=f"model{n}_bn", **bn)(h, train), LRELU)
            feats.append(h)
        logits = TorchInitConv2d(1, 4, stride=1, padding=2, name=f"model{self.n_layers + 1}")(h)
        return logits, feats


# ------------------------------------------------------------------------------------ loss terms

def hinge_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """AdversarialLoss('hinge'), is_disc: (mean relu(1 - D(real)) + mean relu(1 + D(fake))) / 2."""
    return 0.5 * (jnp.mean(nn.relu(1.0 - real_logits)) + jnp.mean(nn.relu(1.0 + fake_logits)))


def adaptive_max_pool(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """F.adaptive_max_pool2d on NHWC: bin i covers [floor(i*in/out), ceil((i+1)*in/out))."""
    def pool(a, axis, n_out):
        n_in = a.shape[axis]
        cols = []
        for i in range(n_out):
            lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
            cols.append(jnp.max(jax.lax.slice_in_dim(a, lo, hi, axis=axis), axis=axis, keepdims=True))
        return jnp.concatenate(cols, axis=axis)
    return pool(pool(x, 1, size[0]), 2, size[1])


def feature_matching(fake_feats: Sequence[jax.Array], real_feats: Sequence[jax.Array]) -> jax.Array:
    """losses.py feature_matching_loss(mask=None): mean over layers of F.mse_loss(fake, real)."""
    return jnp.mean(jnp.stack([jnp.mean(jnp.square(f - r)) for f, r in zip(fake_feats, real_feats)]))


def medfe_generator_terms(output, structure, image, edge, mask, fake_logits) -> dict:
    """The 256 model's generator loss terms (train.py) and their weighted sum under 'total'."""
    hole = 1.0 - mask
    image_loss = MEDFE_HOLE_WEIGHT * l1(output * hole, image * hole) + MEDFE_VALID_WEIGHT * l1(output * mask,
                                                                                               image * mask)
    structure_loss = MEDFE_HOLE_WEIGHT * l1(structure * hole, edge * hole) + MEDFE_VALID_WEIGHT * l1(
        structure * mask, edge * mask)
    adversarial = -jnp.mean(fake_logits)  # AdversarialLoss('hinge'), generator side
    total = MEDFE_ADV_WEIGHT * adversarial + image_loss + structure_loss
    return {"total": total, "image_l1": image_loss, "structure_l1": structure_loss, "adversarial": adversarial}


def lama_generator_terms(output, structure, image, edge, mask, fake_logits, fake_feats, real_feats,
                         perceptual: Optional[Callable] = None) -> dict:
    """The 512 model's generator loss terms (train.py, losses.py) and their weighted sum under 'total'."""
    terms = {
        "image_l1": LAMA_L1_WEIGHT * l1(output * mask, image * mask),
        "structure_l1": LAMA_STRUCTURE_WEIGHT * l1(structure * mask, edge * mask),
        "feature_matching": LAMA_FM_WEIGHT * feature_matching(fake_feats, real_feats),
        "adversarial": LAMA_ADV_WEIGHT * jnp.mean(jax.nn.softplus(-fake_logits)),
    }
    if perceptual is not None:
        terms["perceptual"] = LAMA_PERCEPTUAL_WEIGHT * perceptual(composite(output, image, mask), image)
    terms["total"] = sum(terms.values())
    return terms


def lama_discriminator_terms(real_logits, fake_logits, hole, r1: jax.Array) -> dict:
    """losses.py discriminator_real_loss + discriminator_fake_loss (mask_as_fake_target, maxpool mask)."""
    hd = adaptive_max_pool(hole, fake_logits.shape[1:3])
    real = jnp.mean(jax.nn.softplus(-real_logits))
    fake = jnp.mean(jax.nn.softplus(fake_logits) * hd + jax.nn.softplus(-fake_logits) * (1.0 - hd))
    gp = LAMA_R1_WEIGHT * r1
    return {"total": real + fake + gp, "real": real, "fake": fake, "r1_penalty": gp}


# ------------------------------------------------------------------------------------ step-level losses

def _d_apply(variant: str, disc: nn.Module, d_variables: dict, x: jax.Array, train: bool):
    """One discriminator call in the original's train mode -> (logits, features or None, new state)."""
    if variant == "medfe":
        if not train:
            return disc.apply(d_variables, x, update_sn=False), None, {SN_COLLECTION: d_variables[SN_COLLECTION]}
        logits, state = disc.apply(d_variables, x, update_sn=True, mutable=[SN_COLLECTION])
        return logits, None, dict(state)
    if variant == "lama":
        if not train:
            logits, feats = disc.apply(d_variables, x, train=False)
            return logits, feats, {"batch_stats": d_variables["batch_stats"]}
        (logits, feats), state = disc.apply(d_variables, x, train=True, mutable=["batch_stats"])
        return logits, feats, dict(state)
    raise ValueError(f"variant must be 'medfe' or 'lama', got {variant!r}")


def _with_state(variables: dict, state: dict) -> dict:
    return {**variables, **state}


def generator_forward(variant: str, generator: nn.Module, g_variables: dict, batch: dict, train: bool = True):
    """G in the original's train mode -> ((output, structure), new G state {'batch_stats', 'spectral_norm'}).

    batch: image (B, H, W, 3) in [-1, 1], edge, gray (B, H, W, 1), mask (B, H, W, 1) with 1 = known, and for
    'medfe' texture (the RTV image, [-1, 1]). The generator must have with_structure_decoder=True."""
    mutable = ["batch_stats", "spectral_norm"]
    need = ("image", "edge", "gray", "mask") + (("texture",) if variant == "medfe" else ())
    missing = [k for k in need if k not in batch]
    if missing:
        raise ValueError(f"batch: missing {missing}; the {variant!r} generator needs {list(need)}")
    if variant == "medfe":
        args = (batch["image"], batch["edge"], batch["texture"], batch["gray"], batch["mask"])
    elif variant == "lama":
        args = (batch["image"], batch["edge"], batch["gray"], batch["mask"])
    else:
        raise ValueError(f"variant must be 'medfe' or 'lama', got {variant!r}")
    outs, state = generator.apply(g_variables, *args, train=train, return_structure=True, mutable=mutable)
    return outs, dict(state)


def generator_loss(variant: str, outputs, batch: dict, discriminator: nn.Module, d_variables: dict, *,
                   perceptual: Optional[Callable] = None, train: bool = True):
    """The generator's loss given its outputs (output, structure) -> (loss, (terms, new D state)).

    Differentiable in `outputs` (chain into the generator with jax.vjp) and, through d_variables, in the
    discriminator (not used: the original steps only G here). D runs in train mode as in the original
    (spectral-norm power iteration / BN batch statistics), so its state advances.
    """
    output, structure = outputs
    image, edge, mask = batch["image"], batch["edge"], batch["mask"]
    if variant == "medfe":
        logits, _, d_state = _d_apply(variant, discriminator, d_variables, composite(output, image, mask), train)
        terms = medfe_generator_terms(output, structure, image, edge, mask, logits)
    elif variant == "lama":
        logits, fake_feats, d_state = _d_apply(variant, discriminator, d_variables, output, train)
        _, real_feats, d_state = _d_apply(variant, discriminator, _with_state(d_variables, d_state), image, train)
        terms = lama_generator_terms(output, structure, image, edge, mask, logits, fake_feats, real_feats,
                                     perceptual)
    else:
        raise ValueError(f"variant must be 'medfe' or 'lama', got {variant!r}")
    return terms["total"], (terms, d_state)


def discriminator_loss(variant: str, discriminator: nn.Module, d_variables: dict, batch: dict, fake: jax.Array,
                       *, train: bool = True):
    """The discriminator's loss on the real image and `fake` (the composite I*M + out*(1-M), which the caller
    detaches) -> (loss, (terms, new D state)). Differentiable in d_variables['params']."""
    image = batch["image"]
    fake = jax.lax.stop_gradient(fake)
    if variant == "medfe":
        real_logits, _, state = _d_apply(variant, discriminator, d_variables, image, train)
        fake_logits, _, state = _d_apply(variant, discriminator, _with_state(d_variables, state), fake, train)
        loss = hinge_discriminator_loss(real_logits, fake_logits)
        return loss, ({"total": loss}, state)
    if variant == "lama":
        def real_sum(x):
            logits, _, st = _d_apply(variant, discriminator, d_variables, x, train)
            return jnp.sum(logits), (logits, st)

        grad_x, (real_logits, state) = jax.grad(real_sum, has_aux=True)(image)
        r1 = jnp.mean(jnp.sum(jnp.square(grad_x.reshape(grad_x.shape[0], -1)), axis=1))  # make_r1_gp
        fake_logits, _, state = _d_apply(variant, discriminator, _with_state(d_variables, state), fake, train)
        terms = lama_discriminator_terms(real_logits, fake_logits, 1.0 - batch["mask"], r1)
        return terms["total"], (terms, state)
    raise ValueError(f"variant must be 'medfe' or 'lama', got {variant!r}")


def init_discriminator(variant: str, discriminator: nn.Module, key: jax.Array, size: int = 64) -> dict:
    """Fresh discriminator variables ({'params', 'spectral_norm'} or {'params', 'batch_stats'})."""
    x = jnp.zeros((1, size, size, 3))
    if variant == "medfe":
        return discriminator.init(key, x, update_sn=False)
    if variant == "lama":
        return discriminator.init(key, x, train=False)
    raise ValueError(f"variant must be 'medfe' or 'lama', got {variant!r}")


__all__ = ["MedfeDiscriminator", "LamaDiscriminator", "generator_forward", "generator_loss", "discriminator_loss",
           "init_discriminator", "composite", "l1", "adaptive_max_pool", "feature_matching",
           "hinge_discriminator_loss", "medfe_generator_terms", "lama_generator_terms", "lama_discriminator_terms"]
