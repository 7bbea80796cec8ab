"""fdm_jax: JAX/Flax reimplementation of PUT + FDM pluralistic inpainting, Big-LaMa's multiscale
feature refinement and TSGL, numerically matched to the original PyTorch code.

    import fdm_jax
    model = fdm_jax.load("runs/demo")
    samples = model.inpaint(image, mask, key=jax.random.key(0), num_samples=4)

(fdm_jax/api.py documents the inputs, outputs and the functional layer underneath.)"""

__version__ = "0.1.0"

__all__ = ["Generator", "InputError", "PutFdm", "load", "__version__"]


def __getattr__(name):
    # The API is imported on first use, so `import fdm_jax.<tool>` does not start JAX (commands set
    # XLA flags before JAX initialises).
    if name in ("Generator", "InputError", "PutFdm", "load"):
        from fdm_jax import api

        return getattr(api, name)
    raise AttributeError(f"module 'fdm_jax' has no attribute {name!r}")
