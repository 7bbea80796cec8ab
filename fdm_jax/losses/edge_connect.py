"""EdgeConnectLoss: the generator and discriminator losses of PUT/FDM training
(hyudsl/FDM:image_synthesis/modeling/modules/edge_connect/losses.py:EdgeConnectLoss).

Driven by a phase's `config.train.<phase>.loss` (configs/put_fdm_common.py: edge_connect_loss):
    kind 'image'    -> branch 'generator' (phase 1): image terms + quantize * quantize_loss
    kind 'qe'       -> branch 'fdm' (phase 2): only qe * L_qe
    kind 'image+qe' -> branch 'fdm_decoder_tuning' (phase 3): image terms + qe * L_qe
Image terms, with Y = reconstruction and I = image in [0, 1] (NHWC) and M_h = 1 - mask:
    adv_loss     g_adv      * BCE(D(Y), 1)                                   step >= disc_start
    rec_loss     g_rec      * mean|Y - I| / mean(M_h)                        always
    grad_loss    g_gradient * ImageGradientLoss(Y, I)                        step >= gradient_start
    content_loss g_content  * sum_l mean|phi_l(Y) - phi_l(I)|                step >= content_start
    style_loss   g_style    * sum_l mean|G(phi_l(Y M_h)) - G(phi_l(I M_h))|  step >= style_start
A term whose weight is 0 is not computed and not reported (as in the original). The start-step
gates accept a traced `step`: inactive terms are 0 (jnp.where), and the discriminator's
spectral-norm state only advances when D actually ran in the original. In the original L_qe's
weight is g_rec_loss_weight; here it is the config's `qe` key (both 1.0 in every shipped config).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp

from fdm_jax.losses.adversarial import nsgan_loss
from fdm_jax.losses.discriminator import Discriminator, discriminator_apply
from fdm_jax.losses.perceptual import content_loss, style_loss
from fdm_jax.put_fdm.quantization_error import quantization_error_loss
from fdm_jax.losses.reconstruction import gradient_loss, hole_normalised_l1
from fdm_jax.losses.vgg import PerceptualNet

KINDS = ("image", "qe", "image+qe")
# losses.py EdgeConnectLoss defaults (also configs/put_fdm_common.py edge_connect_loss).
DEFAULTS = dict(kind="image", gan_loss="nsgan", g_rec=1.0, g_gradient=1.0, g_content=0.1, g_style=250.0,
                g_adv=0.1, disc_start=-1, content_start=-1, style_start=-1, gradient_start=-1,
                norm_to_0_1=True, quantize=0.0, qe=0.0)


def _gate(step, start, value):
    """value if step >= start else 0, for a Python or traced step."""
    return jnp.where(jnp.asarray(step) >= start, value, jnp.zeros_like(value))


def _select_state(step, start, new, old):
    active = jnp.asarray(step) >= start
    return jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, old)


@dataclasses.dataclass(frozen=True)
class EdgeConnectLoss:
    kind: str = "image"
    g_rec: float = 1.0
    g_gradient: float = 1.0
    g_content: float = 0.1
    g_style: float = 250.0
    g_adv: float = 0.1
    disc_start: int = -1
    content_start: int = -1
    style_start: int = -1
    gradient_start: int = -1
    quantize: float = 0.0
    qe: float = 0.0
    discriminator: Discriminator | None = None
    perceptual: PerceptualNet | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"loss.kind {self.kind!r}: expected one of {KINDS}")
        if self.has_image_terms:
            if self.g_adv > 0 and self.discriminator is None:
                raise ValueError("loss.g_adv > 0 needs a discriminator (pass discriminator=Discriminator(...)) "
                                 "or set loss.g_adv = 0")
            for key in ("g_content", "g_style"):
                if getattr(self, key) > 0 and self.perceptual is None:
                    raise ValueError(f"loss.{key} > 0 needs a perceptual network (build_perceptual('vgg19' | "
                                     f"'lpips_vgg16')); with backbone 'none' set loss.{key} = 0")

    @classmethod
    def from_config(cls, loss_config: Mapping, *, discriminator: Discriminator | None = None,
                    perceptual: PerceptualNet | None = None) -> "EdgeConnectLoss":
        """From `config.train.<phase>.loss` (a ConfigDict or dict with the keys of edge_connect_loss())."""
        cfg = dict(DEFAULTS)
        given = dict(loss_config.items()) if hasattr(loss_config, "items") else dict(loss_config)
        unknown = sorted(set(given) - set(DEFAULTS))
        if unknown:
            raise KeyError(f"unknown EdgeConnect loss config key(s) {unknown}; known: {sorted(DEFAULTS)}")
        cfg.update(given)
        if cfg["gan_loss"] != "nsgan":
            raise NotImplementedError(f"loss.gan_loss {cfg['gan_loss']!r}: the original implements only 'nsgan'")
        if not cfg["norm_to_0_1"]:
            raise ValueError("loss.norm_to_0_1 = False is not supported: FDM feeds [0, 1] images to every term")
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in cfg.items() if k in fields}
        for k in ("disc_start", "content_start", "style_start", "gradient_start"):
            kw[k] = int(kw[k])
        for k in ("g_rec", "g_gradient", "g_content", "g_style", "g_adv", "quantize", "qe"):
            kw[k] = float(kw[k])
        return cls(**kw, discriminator=discriminator, perceptual=perceptual)

    @property
    def has_image_terms(self) -> bool:
        return self.kind in ("image", "image+qe")

    @property
    def uses_discriminator(self) -> bool:
        return self.has_image_terms and self.g_adv > 0

    # ---------------------------------------------------------------------------------------
    def perceptual_features(self, variables, reconstruction, image, hole) -> dict:
        """{'content_x', 'content_y', 'style_x', 'style_y': {tap: map}} in one batched VGG pass over
        [Y, I, Y M_h, I M_h] (each image is processed independently, so batching changes nothing)."""
        net = self.perceptual
        b = reconstruction.shape[0]
        x = jnp.concatenate([reconstruction, image, reconstruction * hole, image * hole], axis=0)
        feats = net.features(variables, x)
        part = lambda k, i: {l: feats[l][i * b:(i + 1) * b] for l in k}
        return {"content_x": part(net.content_layers, 0), "content_y": part(net.content_layers, 1),
                "style_x": part(net.style_layers, 2), "style_y": part(net.style_layers, 3)}

    def generator_loss(self, reconstruction=None, image=None, mask=None, step=0, *, disc_variables=None,
                       perceptual_variables=None, perceptual_features: Mapping | None = None,
                       lost_feature=None, gt_feature=None, quantize_loss=None, train: bool = True):
        """-> (total, {term name: scalar, 'loss': total}, new spectral_norm state or None).

        reconstruction Y, image I: NHWC in [0, 1] (Y may carry gradients); mask (B, H, W, 1), 1 = known.
        disc_variables {'params', 'spectral_norm'} when g_adv > 0; the returned state has advanced by one
        power iteration iff step >= disc_start (train=True). perceptual_variables: the frozen VGG
        variables; or pass `perceptual_features` (see perceptual_features()) computed elsewhere.
        lost_feature pv and gt_feature (f - q) m for the L_qe term; quantize_loss for kind 'image'.
        """
        terms = {}
        new_state = None if disc_variables is None else disc_variables["spectral_norm"]
        if self.has_image_terms:
            if reconstruction is None or image is None or mask is None:
                raise ValueError(f"loss kind {self.kind!r} needs reconstruction, image and mask")
            if self.uses_discriminator:
                if disc_variables is None:
                    raise ValueError("loss.g_adv > 0: generator_loss needs disc_variables")
                probs, sn = discriminator_apply(self.discriminator, disc_variables, reconstruction, train)
                terms["adv_loss"] = _gate(step, self.disc_start, nsgan_loss(probs, True) * self.g_adv)
                new_state = _select_state(step, self.disc_start, sn, disc_variables["spectral_norm"])
            if self.g_rec > 0:
                terms["rec_loss"] = hole_normalised_l1(reconstruction, image, mask) * self.g_rec
            if self.g_gradient > 0:
                terms["grad_loss"] = _gate(step, self.gradient_start,
                                           gradient_loss(reconstruction, image) * self.g_gradient)
            if self.g_content > 0 or self.g_style > 0:
                if perceptual_features is None:
                    if perceptual_variables is None:
                        raise ValueError("content/style terms need perceptual_variables (or perceptual_features)")
                    hole = 1.0 - mask.astype(reconstruction.dtype)
                    perceptual_features = self.perceptual_features(perceptual_variables, reconstruction, image, hole)
                pf = perceptual_features
                if self.g_content > 0:
                    c, _ = content_loss(pf["content_x"], pf["content_y"], self.perceptual.content_layers)
                    terms["content_loss"] = _gate(step, self.content_start, c * self.g_content)
                if self.g_style > 0:
                    s, _ = style_loss(pf["style_x"], pf["style_y"], self.perceptual.style_layers)
                    terms["style_loss"] = _gate(step, self.style_start, s * self.g_style)
            if self.kind == "image" and self.quantize > 0:
                if quantize_loss is None:
                    raise ValueError("loss.quantize > 0 (kind 'image'): generator_loss needs quantize_loss")
                terms["quantize_loss"] = quantize_loss * self.quantize
        if self.kind in ("qe", "image+qe") and self.qe > 0:
            if lost_feature is None or gt_feature is None:
                raise ValueError(f"loss kind {self.kind!r} with qe > 0 needs lost_feature (pv) and gt_feature")
            terms["fdm_loss"] = quantization_error_loss(lost_feature, gt_feature, self.qe)
        if not terms:
            raise ValueError(f"loss kind {self.kind!r}: every weight is 0, nothing to compute")
        total = sum(terms.values())
        terms["loss"] = total
        return total, terms, new_state

    def discriminator_loss(self, disc_variables, reconstruction, image, step, train: bool = True):
        """losses.py name='discriminator' -> (loss, {'loss', 'real_loss', 'fake_loss'}, new spectral_norm state).

        step >= disc_start: (BCE(D(I), 1) + BCE(D(sg Y), 0)) / 2, with D run twice (I, then Y; two power
        iterations). Before: 0 * BCE(D(I), 1), D run once on I (the state advances once, the gradient is
        zero). real_loss / fake_loss are reported as 0 before disc_start.
        """
        if not self.uses_discriminator:
            raise ValueError("discriminator_loss: this loss has no adversarial term (loss.g_adv = 0 or kind 'qe')")
        y = jax.lax.stop_gradient(reconstruction)
        real_probs, sn1 = discriminator_apply(self.discriminator, disc_variables, image, train)
        real = nsgan_loss(real_probs, True)
        fake_probs, sn2 = discriminator_apply(self.discriminator, {**disc_variables, "spectral_norm": sn1}, y, train)
        fake = nsgan_loss(fake_probs, False)
        active = jnp.asarray(step) >= self.disc_start
        loss = jnp.where(active, (real + fake) / 2.0, real * 0)
        terms = {"loss": loss, "real_loss": jnp.where(active, real, 0.0), "fake_loss": jnp.where(active, fake, 0.0)}
        return loss, terms, _select_state(step, self.disc_start, sn2, sn1)
