"""Parity runners for the PUT + FDM fixtures (shared/fixtures/put_fdm, hyudsl/FDM@3d3c30fd)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from fdm_jax.convert import put_fdm as conv
from fdm_jax.put_fdm import (FeatureDequantizer, FeatureSampler, PatchVQVAE, apply_fdm, mask_pixels,
                            masked_patch_index, preprocess)
from fdm_jax.put_fdm.feature_sampler import block_intermediates
from fdm_jax.nn.layout import to_nchw, to_nhwc
from fdm_jax.parity.harness import Fixture, Weights, register


def codec_from_kwargs(kw: dict) -> PatchVQVAE:
    """The fixtures' codec kwargs (R, enc_out, e_dim, dec_in, n_e, mes, stride) -> PatchVQVAE."""
    return PatchVQVAE(res_ch=kw["R"], encoder_out_ch=kw["enc_out"], embed_dim=kw["e_dim"],
                      decoder_in_ch=kw["dec_in"], num_embed=kw["n_e"], masked_embed_start=kw["mes"],
                      patch_size=kw.get("stride", 8), in_ch=kw.get("in_ch", 3), out_ch=kw.get("out_ch", 3))


def sampler_from_kwargs(t: dict) -> FeatureSampler:
    """generator_config params (n_layer, n_embd, n_head, mlp_hidden_times, content_seq_len, num_token,
    embed_dim) -> FeatureSampler."""
    return FeatureSampler(num_layers=t["n_layer"], width=t["n_embd"], num_heads=t["n_head"],
                          mlp_ratio=t.get("mlp_hidden_times", 4), seq_len=t["content_seq_len"],
                          num_tokens=t["num_token"], feature_dim=t["embed_dim"])


@register(r"codecs/image_codec/patch_vqgan\.py:PatchVQGAN")
def run_codec(fx: Fixture, weights: Weights) -> dict:
    codec = codec_from_kwargs(fx.kwargs)
    variables = conv.convert_codec(weights.part("codec"), codec)
    image, mask = to_nhwc(fx.inputs["image"]), to_nhwc(fx.inputs["mask"])

    def call(method, *args, **kw):
        return codec.apply(variables, *args, method=method, **kw)

    g = call(PatchVQVAE.get_features, image, mask)
    gf = call(PatchVQVAE.get_features, image)
    out = {
        "masked_input": to_nchw(mask_pixels(preprocess(image), mask)),
        "feature": to_nchw(g["feature"]),
        "token_type": to_nchw(g["token_type"]),
        "token": np.asarray(g["token"]),
        "feature_quantize": to_nchw(g["feature_quantize"]),
        "feature_full": to_nchw(gf["feature"]),
        "token_full": np.asarray(gf["token"]),
        "feature_quantize_full": to_nchw(gf["feature_quantize"]),
        "decoder_out": to_nchw(call(PatchVQVAE.decode_with_feature, g["feature"], image, mask, post_process=False)),
        "decoded_image": to_nchw(call(PatchVQVAE.decode_with_feature, g["feature"], image, mask)),
        "decoded_image_quantized": to_nchw(call(PatchVQVAE.decode_with_feature, g["feature_quantize"], image, mask)),
        "reconstruction": to_nchw(call(PatchVQVAE.reconstruct, image, mask)),
    }
    if "erase_mask" in fx.inputs:
        erase = to_nhwc(fx.inputs["erase_mask"])
        # The phase-1 dataset feeds image*erase_mask; token types come from the erase mask.
        (_, rec, q), state = codec.apply(variables, image * erase, mask, erase, method=PatchVQVAE.train_forward,
                                         mutable=["codebook"])
        cb = state["codebook"]["quantizer"]
        out.update({
            "train_reconstruction": to_nchw(rec),
            "train_index": np.asarray(q["index"]),
            "train_quantize_loss": np.asarray(q["quantize_loss"]),
            "train_ema_embedding": np.asarray(cb["embedding"]),
            "train_ema_cluster_size": np.asarray(cb["cluster_size"]),
            "train_ema_embedding_avg": np.asarray(cb["embedding_avg"]),
        })
    return out


@register(r"modules/FDM/fdm\.py:FDM")
def run_fdm(fx: Fixture, weights: Weights) -> dict:
    fdm = FeatureDequantizer(embed_dim=fx.kwargs["e_dim"])
    variables = conv.convert_fdm(weights.part("fdm"), fdm)
    qv, mask = to_nhwc(fx.inputs["qv"]), to_nhwc(fx.inputs["mask"])
    patch = mask.shape[1] // qv.shape[1]
    m = masked_patch_index(mask, patch)
    v, pv = apply_fdm(lambda q, mm: fdm.apply(variables, q, mm), qv, qv, m)
    return {"masked_patch_idx": to_nchw(m), "pv": to_nchw(pv), "v": to_nchw(v)}


@register(r"vector_predictor/transformer\.py:MaskedImageInpaintingTransformer")
def run_sampler(fx: Fixture, weights: Weights) -> dict:
    sampler = sampler_from_kwargs(fx.kwargs["transformer"])
    variables = conv.convert_sampler(weights.part("sampler"), sampler)
    logits, state = sampler.apply(variables, jnp.asarray(fx.inputs["features"]), mutable=["intermediates"])
    out = {"logits": np.asarray(logits)}
    for name, value in block_intermediates(state["intermediates"]).items():  # either block layout
        out[name] = np.asarray(value)
    return out
