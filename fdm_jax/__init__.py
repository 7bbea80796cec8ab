"""fdm_jax: JAX/Flax reimplementation of PUT + FDM pluralistic inpainting (and, later, multiscale
feature refinement and TSGL), numerically matched to the original PyTorch code."""

__version__ = "0.1.0"
