"""Image losses shared by the papers' training phases: EdgeConnectLoss (pixel, gradient, perceptual,
style, nsGAN with a spectral-norm discriminator) and the VGG feature networks. The losses of one paper
only live with it (fdm_jax/put_fdm/quantization_error.py: FDM's L_qe; fdm_jax/tsgl/losses.py)."""

from fdm_jax.losses.adversarial import binary_cross_entropy, nsgan_loss
from fdm_jax.losses.discriminator import (SN_COLLECTION, Discriminator, discriminator_apply, init_discriminator,
                                          power_iteration, spectral_sigma)
from fdm_jax.losses.edge_connect import EdgeConnectLoss
from fdm_jax.losses.perceptual import content_loss, gram_matrix, style_loss
from fdm_jax.losses.reconstruction import gradient_loss, hole_fraction, hole_normalised_l1, image_gradients
from fdm_jax.losses.vgg import (PerceptualNet, VGGFeatures, build_perceptual, convert_vgg19, load_lpips_vgg16,
                                load_vgg19)

__all__ = [
    "SN_COLLECTION", "Discriminator", "EdgeConnectLoss", "PerceptualNet", "VGGFeatures", "binary_cross_entropy",
    "build_perceptual", "content_loss", "convert_vgg19", "discriminator_apply", "gradient_loss", "gram_matrix",
    "hole_fraction", "hole_normalised_l1", "image_gradients", "init_discriminator", "load_lpips_vgg16",
    "load_vgg19", "nsgan_loss", "power_iteration", "spectral_sigma", "style_loss",
]
