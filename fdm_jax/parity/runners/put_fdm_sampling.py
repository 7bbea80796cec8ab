"""Parity runner for the PUT + FDM inference fixtures (shared/fixtures/put_fdm/sampling_greedy.npz and
sampling_greedy_k4.npz): InpaintingModel.sample with greedy sampling (filter_ratio 1 -> top-1) and
meta.kwargs.num_token_per_iter tokens per pass (1 when absent), the first step of a top-50 run, and
the transformer's training forward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.put_fdm import FeatureDequantizer
from fdm_jax.parity.harness import Fixture, Weights, register
from fdm_jax.nn.layout import to_nchw, to_nhwc
from fdm_jax.parity.runners.put_fdm import codec_from_kwargs, sampler_from_kwargs
from fdm_jax.put_fdm.sampler_loss import masked_token_cross_entropy, sampler_training_inputs
from fdm_jax.put_fdm.sampling import inpaint, iteration_table, select_positions, top_k_filter

R50_TOP_K = 50  # configs/paris/inpainting/task_config.yaml generate_config.filter_ratio


@register(r"model/inpainting_model\.py:InpaintingModel")
def run_inpainting(fx: Fixture, weights: Weights) -> dict:
    kw = fx.kwargs
    models = {"codec": codec_from_kwargs(kw), "sampler": sampler_from_kwargs(kw["transformer"]),
              "fdm": FeatureDequantizer(embed_dim=kw["e_dim"])}
    v = weights.inpainting_variables(models)
    codec, sampler, fdm = models["codec"], models["sampler"], models["fdm"]
    image, mask = to_nhwc(fx.inputs["image"]), to_nhwc(fx.inputs["mask"])

    per_iter = int(kw.get("num_token_per_iter", 1))

    # 1) model.sample with filter_ratio=1 (k = 1: greedy, so the key does not matter); num_token_per_iter
    #    is passed as a traced argument, as users' runs do.
    o = jax.jit(lambda cv, sv, fv, x, m, n: inpaint(codec, cv, sampler, sv, fdm, fv, x, m, jax.random.key(0),
                                                    top_k=1, num_token_per_iter=n))(
        v["codec"], v["sampler"], v["fdm"], image, mask, np.int32(per_iter))
    n_iter = int(o["num_iterations"])
    n_fill = int(np.max(o["num_filled"]))
    img = np.asarray(o["inpainted_image"])
    out = {
        "token_type": to_nchw(o["token_type"]),
        "input_feature": to_nchw(o["input_feature"]),
        "input_token": np.asarray(o["input_token"]),
        "tokens": np.asarray(o["tokens"]),
        "fill_positions": np.asarray(o["fill_positions"])[:, :n_fill],
        "fill_tokens": np.asarray(o["fill_tokens"])[:, :n_fill],
        "fill_iteration": np.asarray(o["fill_iteration"])[:, :n_fill],
        "num_iterations": np.asarray(n_iter),
        "generated_feature": to_nchw(o["generated_feature"]),
        "masked_patch_idx": to_nchw(o["masked_patch_idx"]),
        "pv": to_nchw(o["pv"]),
        "feature_after_fdm": to_nchw(o["feature_after_fdm"]),
        "inpainted_image": to_nchw(img),
        "inpainted_image_uint8": to_nchw(img.astype(np.uint8)),  # tensor2image: .to(torch.uint8) truncates
        **iteration_table(o["fill_positions"], o["fill_tokens"], o["fill_iteration"], per_iter, n_iter),
    }

    # 2) the first get_sample_token call of a filter_ratio=50 run (both images unfinished).
    b, h, w, c = o["input_feature"].shape
    seq = o["input_feature"].reshape(b, h * w, c)
    known = (o["token_type"] == 1).reshape(b, h * w)
    logits = sampler.apply(v["sampler"], seq)
    p = select_positions(logits, known, per_iter)                                       # (B, k)
    filtered = top_k_filter(jnp.take_along_axis(logits, p[..., None], 1), R50_TOP_K)  # (B, k, K)
    out.update({
        "r50_first_logits": np.asarray(logits),
        "r50_first_index": np.asarray(p),
        "r50_first_filtered_logits": np.asarray(filtered),
        "r50_first_probs": np.asarray(jax.nn.softmax(filtered, axis=-1)),
    })

    # 3) forward(name="transformer") with mask.bool() and torch.rand -> in/train_rand (only sampling_greedy
    #    records it: it does not depend on num_token_per_iter).
    if "train_rand" not in fx.inputs:
        return out
    t = sampler_training_inputs(codec, v["codec"], image, mask > 0.5, rand=to_nhwc(fx.inputs["train_rand"])[..., 0],
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
