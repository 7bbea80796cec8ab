"""The image-side losses of phases codec and fdm_tuning (EdgeConnectLoss + discriminator) bound to
a config: the one place where the train steps meet fdm_jax.losses."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from fdm_jax.losses.discriminator import Discriminator, init_discriminator
from fdm_jax.losses.edge_connect import EdgeConnectLoss
from fdm_jax.losses.vgg import build_perceptual
from fdm_jax.nn.params import abstract_variables


@dataclasses.dataclass(frozen=True, eq=False)
class ImageLosses:
    loss: EdgeConnectLoss
    perceptual_variables: Any  # frozen VGG variables, or None

    @classmethod
    def from_config(cls, loss_cfg, disc_cfg, perceptual_cfg, *, perceptual_override=None) -> "ImageLosses":
        """`perceptual_override` = (PerceptualNet, variables) replaces the configured backbone (e.g. a
        random-weight VGG19 for timing in benchmarks/train_step.py)."""
        weights_ok = float(loss_cfg.g_content) == 0 and float(loss_cfg.g_style) == 0
        if perceptual_override is not None:
            net, variables = perceptual_override
        elif perceptual_cfg is None or weights_ok:
            net, variables = None, None
        else:
            backbone = perceptual_cfg.backbone
            path = perceptual_cfg.vgg19_path if backbone == "vgg19" else None
            try:
                net, variables = build_perceptual(backbone, path)
            except FileNotFoundError as e:
                raise FileNotFoundError(
                    f"config perceptual.backbone={backbone!r}: {e}. Give torchvision's VGG19 file with "
                    f"--config.perceptual.vgg19_path=PATH, or use --config.perceptual.backbone=lpips_vgg16 "
                    f"(python -m fdm_jax.weights fetch lpips_vgg16), or set the content/style weights to 0"
                ) from None
        disc = None
        if disc_cfg.enabled:
            disc = Discriminator(widths=tuple(int(w) for w in disc_cfg.widths))
        loss = EdgeConnectLoss.from_config(loss_cfg, discriminator=disc, perceptual=net)
        if loss.uses_discriminator != bool(disc_cfg.enabled):
            raise ValueError(f"config: loss.g_adv={loss_cfg.g_adv} but disc.enabled={disc_cfg.enabled}; "
                             f"an adversarial term needs the discriminator optimizer and vice versa")
        return cls(loss=loss, perceptual_variables=variables)

    @property
    def uses_discriminator(self) -> bool:
        return self.loss.uses_discriminator

    def init_discriminator(self, key) -> dict:
        """{'params', 'spectral_norm'} (N(0, 0.02) weights; eager: not jittable)."""
        return init_discriminator(self.loss.discriminator, key)

    def abstract_discriminator(self) -> dict:
        d = self.loss.discriminator
        return abstract_variables(d, jnp.zeros((1, 32, 32, 3)), update_sn=False)

    def generator_loss(self, disc_variables, y, target, mask, step, **kw):
        """-> (total, terms, new spectral_norm state or None); y, target NHWC in [0, 1]."""
        return self.loss.generator_loss(y, target, mask, step, disc_variables=disc_variables,
                                        perceptual_variables=self.perceptual_variables, **kw)

    def discriminator_loss(self, disc_variables, y, target, step):
        return self.loss.discriminator_loss(disc_variables, y, target, step)
