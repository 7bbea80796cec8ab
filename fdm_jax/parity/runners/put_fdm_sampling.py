"""Parity runner for the PUT + FDM inference fixture (shared/fixtures/put_fdm/sampling_greedy.npz):
InpaintingModel.sample with greedy sampling (filter_ratio 1 -> top-1), the first step of a top-50 run,
and the transformer's training forward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.models import FeatureDequantizer
from fdm_jax.parity.harness import Fixture, Weights, register
from fdm_jax.parity.runners.put_fdm import codec_from_kwargs, nchw, nhwc, sampler_from_kwargs
from fdm_jax.sampler_loss import masked_token_cross_entropy, sampler_training_inputs
from fdm_jax.sampling import inpaint, select_position, top_k_filter

R50_TOP_K = 50  # configs/paris/inpainting/task_config.yaml generate_config.filter_ratio


@register(r"model/inpainting_model\.py:InpaintingModel")
def run_inpainting(fx: Fixture, weights: Weights) -> dict:
    kw = fx.kwargs
    models = {"codec": codec_from_kwargs(kw), "sampler": sampler_from_kwargs(kw["transformer"]),
              "fdm": FeatureDequantizer(embed_dim=kw["e_dim"])}
    v = weights.inpainting_variables(models)
    codec, sampler, fdm = models["codec"], models["sampler"], models["fdm"]
    image, mask = nhwc(fx.inputs["image"]), nhwc(fx.inputs["mask"])

    # 1) model.sample with filter_ratio=1 (k = 1: greedy, so the key does not matter).
    o = jax.jit(lambda cv, sv, fv, x, m: inpaint(codec, cv, sampler, sv, fdm, fv, x, m, jax.random.key(0),
                                                 top_k=1))(v["codec"], v["sampler"], v["fdm"], image, mask)
    n_iter = int(o["num_iterations"])
    img = np.asarray(o["inpainted_image"])
    out = {
        "token_type": nchw(o["token_type"]),
        "input_feature": nchw(o["input_feature"]),
        "input_token": np.asarray(o["input_token"]),
        "tokens": np.asarray(o["tokens"]),
        "fill_positions": np.asarray(o["fill_positions"])[:, :n_iter],
        "fill_tokens": np.asarray(o["fill_tokens"])[:, :n_iter],
        "num_iterations": np.asarray(n_iter),
        "generated_feature": nchw(o["generated_feature"]),
        "masked_patch_idx": nchw(o["masked_patch_idx"]),
        "pv": nchw(o["pv"]),
        "feature_after_fdm": nchw(o["feature_after_fdm"]),
        "inpainted_image": nchw(img),
        "inpainted_image_uint8": nchw(img.astype(np.uint8)),  # tensor2image: .to(torch.uint8) truncates
    }

    # 2) the first get_sample_token call of a filter_ratio=50 run (both images unfinished).
    b, h, w, c = o["input_feature"].shape
    seq = o["input_feature"].reshape(b, h * w, c)
    known = (o["token_type"] == 1).reshape(b, h * w)
    logits = sampler.apply(v["sampler"], seq)
    p = select_position(logits, known)
    filtered = top_k_filter(logits[jnp.arange(b), p], R50_TOP_K)[:, None]  # (B, 1, K)
    out.update({
        "r50_first_logits": np.asarray(logits),
        "r50_first_index": np.asarray(p)[:, None],
        "r50_first_filtered_logits": np.asarray(filtered),
        "r50_first_probs": np.asarray(jax.nn.softmax(filtered, axis=-1)),
    })

    # 3) forward(name="transformer") with mask.bool() and torch.rand -> in/train_rand.
    t = sampler_training_inputs(codec, v["codec"], image, mask > 0.5, rand=nhwc(fx.inputs["train_rand"])[..., 0],
                                random_quantize=0.3)
    tl = sampler.apply(v["sampler"], t["features"])
    loss, acc = masked_token_cross_entropy(tl, t["token_target"], t["token_type"])
    out.update({
        "train_loss": np.asarray(loss),
        "train_accuracy": np.asarray(acc),
        "train_logits": np.asarray(tl),
        "train_token_target": np.asarray(t["token_target"]),
        "train_token_type": np.asarray(t["token_type"]),
    })
    return out
