"""PUT + FDM (Liu et al., CVPR 2022; Park & Jung, WACV 2025).

Models (Flax Linen; they know nothing about training, data or files): patch_encoder, patch_decoder,
vector_quantizer (dual codebook) and codec (P-VQVAE); feature_sampler (the transformer);
feature_dequantizer (FDM). Inference: sampling (fill steps and schedules). Training: phases (the
four phases), sampler_loss, quantization_error (L_qe), image_losses."""

from fdm_jax.nn.resize import nearest_downsample
from fdm_jax.put_fdm.codec import PatchVQVAE, mask_pixels, postprocess, preprocess
from fdm_jax.put_fdm.feature_dequantizer import FeatureDequantizer, apply_fdm
from fdm_jax.put_fdm.feature_sampler import FeatureSampler
from fdm_jax.put_fdm.patch_decoder import PatchDecoder
from fdm_jax.put_fdm.patch_encoder import PatchEncoder
from fdm_jax.put_fdm.patch_masks import masked_patch_index, token_type
from fdm_jax.put_fdm.vector_quantizer import VectorQuantizer

__all__ = [
    "FeatureDequantizer", "FeatureSampler", "PatchDecoder", "PatchEncoder", "PatchVQVAE",
    "VectorQuantizer", "apply_fdm", "mask_pixels", "masked_patch_index", "nearest_downsample",
    "postprocess", "preprocess", "token_type", "build_models", "DTYPES",
]

DTYPES = ("float32", "bfloat16")  # model.dtype: the computation dtype; parameters are float32 either way


def build_models(model_config) -> dict:
    """{'codec': PatchVQVAE, 'sampler': FeatureSampler, 'fdm': FeatureDequantizer} from a config's
    `model` ConfigDict (configs/*.py); an unknown key is a TypeError naming it. `model.dtype`
    ('float32' when absent, as in runs saved before it existed; or 'bfloat16') is the computation
    dtype of all three (parameters stay float32)."""
    dtype = str(model_config.get("dtype", "float32"))
    if dtype not in DTYPES:
        raise ValueError(f"config key model.dtype: {dtype!r}; expected one of {DTYPES}")
    out = {}
    for name, cls in (("codec", PatchVQVAE), ("sampler", FeatureSampler), ("fdm", FeatureDequantizer)):
        if name in model_config:
            kwargs = {**dict(model_config[name]), "dtype": dtype}
            try:
                out[name] = cls(**kwargs)
            except TypeError as e:
                raise TypeError(f"config key model.{name}: {e}") from None
    return out
