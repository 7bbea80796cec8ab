"""Parity runners for the TSGL fixtures (shared/fixtures/tsgl, htyjers/ConvInpaint-TSGL@e9f6438):
the structure inputs of both pipelines, the SPADE blocks, and both generators at reduced width."""

from __future__ import annotations

import numpy as np

from fdm_jax.convert import tsgl as conv
from fdm_jax.tsgl import structure
from fdm_jax.tsgl.spade import SPADE, SPADEResnetBlock
from fdm_jax.tsgl.lama import TSGLLamaGenerator
from fdm_jax.tsgl.medfe import TSGLMedfeGenerator
from fdm_jax.nn.layout import to_nchw, to_nhwc
from fdm_jax.parity.harness import Fixture, Weights, register


def _state_dict(fx: Fixture, weights: Weights) -> dict:
    """The fixture's param/* or the original checkpoint file given with --weights (`module.` stripped)."""
    if len(weights.files) > 1:
        raise ValueError(f"one generator checkpoint expected, got {len(weights.files)}")
    return conv.read_state_dict(weights.files[0]) if weights.files else fx.params


def lama_from_kwargs(kw: dict) -> TSGLLamaGenerator:
    return TSGLLamaGenerator(ngf=kw["ngf"], max_features=kw["max_features"], n_blocks=kw["n_blocks"])


def medfe_from_kwargs(kw: dict) -> TSGLMedfeGenerator:
    return TSGLMedfeGenerator(cnum=kw["cnum"], tdim=kw["tdim"], num_heads=kw["num_heads"],
                              depths=tuple(kw["depths"]), window_sizes=tuple(kw["window_sizes"]),
                              mlp_ratio=kw.get("mlp_ratio", 2.0), spade_hidden=kw.get("spade_hidden", 128))


@register(r"^canny\.image_to_edge")
def run_structure_inputs(fx: Fixture, weights: Weights) -> dict:
    sigma = float(fx.kwargs.get("sigma", structure.CANNY_SIGMA))
    out = {}
    u = fx.inputs["medfe_rgb_uint8"]
    out["medfe_image"] = to_nchw(structure.normalize_image(u))
    out["medfe_wrapped_uint8"] = structure.wrapped_uint8(u)
    edge, gray = structure.edge_and_gray(u, wraparound=True, sigma=sigma)
    out["medfe_high"], out["medfe_gray"] = to_nchw(edge), to_nchw(gray)
    out["medfe_high_skimage0172"] = out["medfe_high"]  # the same edges (0.17.2 agrees on these images)
    size = u.shape[1:3]
    out["medfe_mask"] = to_nchw(structure.known_mask(fx.inputs["medfe_mask_uint8"], size))
    v = fx.inputs["lama_rgb_uint8"]
    out["lama_image"] = to_nchw(structure.to_unit_range(v))
    out["lama_pil_uint8"] = structure.tensor_to_uint8(structure.to_unit_range(v))
    edge, gray = structure.edge_and_gray(v, wraparound=False, sigma=sigma)
    out["lama_high"], out["lama_gray"] = to_nchw(edge), to_nchw(gray)
    out["lama_high_skimage0172"] = out["lama_high"]
    out["lama_mask"] = to_nchw(structure.known_mask(fx.inputs["lama_mask_uint8"]))
    return out


def _sub(params: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


@register(r"ModuleDict of four original modules: spade_global")
def run_spade_blocks(fx: Fixture, weights: Weights) -> dict:
    hidden = int(fx.kwargs.get("spade_nhidden", 128))
    inp, out = fx.inputs, {}
    for name, norm in (("spade_global", "batch"), ("spade_local", "position")):
        x, seg = to_nhwc(inp[f"{name}.x"], np.float32), to_nhwc(inp[f"{name}.segmap"], np.float32)
        module = SPADE(norm, hidden)
        v = conv.convert_spade(_sub(fx.params, name + "."), module, x.shape[-1], seg.shape[-1],
                               what=f"{fx.path} [{name}]")
        out[name] = to_nchw(module.apply(v, x, seg))
    for name, skip in (("resblock_medfe", False), ("resblock_lama", True)):
        x, s1, s2 = (to_nhwc(inp[f"{name}.{k}"], np.float32) for k in ("x", "seg1", "seg2"))
        module = SPADEResnetBlock(identity_skip=skip, hidden=hidden)
        v = conv.convert_spade_resblock(_sub(fx.params, name + "."), module, x.shape[-1], s1.shape[-1],
                                        s2.shape[-1], what=f"{fx.path} [{name}]")
        out[name] = to_nchw(module.apply(v, x, s1, s2))
    return out


def _flat(inter: dict, prefix: str = "") -> dict:
    """intermediates tree -> {'a/b': value} (the sown tuple's single entry; the models' "_out" suffix dropped)."""
    out = {}
    for k, v in inter.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[prefix + k.removesuffix("_out")] = v[0]
    return out


@register(r"TSGL_Lama/test/model\.py:FFCResNetGenerator")
def run_lama_generator(fx: Fixture, weights: Weights) -> dict:
    model = lama_from_kwargs(fx.kwargs)
    v = conv.convert_lama_generator(_state_dict(fx, weights), model, what=weights.source())
    hole = to_nhwc(fx.inputs["mask"], np.float32)  # the original's 4th argument: 1 = hole
    out, state = model.apply(v, to_nhwc(fx.inputs["image"], np.float32), to_nhwc(fx.inputs["high"], np.float32), to_nhwc(fx.inputs["gray"], np.float32),
                             1.0 - hole, mutable=["intermediates"])
    inter = _flat(state["intermediates"])
    res = {"output": to_nchw(out)}
    for name in fx.outputs:
        if name in inter:
            res[name] = to_nchw(inter[name])
    z = inter[f"decoder/block_{model.n_blocks - 1}"]  # lama_generator sows block_<i>_out
    res["resblocks_l"], res["resblocks_g"] = to_nchw(z[0]), to_nchw(z[1])
    return res


@register(r"TSGL_MEDFE/test/model\.py:Generator")
def run_medfe_generator(fx: Fixture, weights: Weights) -> dict:
    model = medfe_from_kwargs(fx.kwargs)
    v = conv.convert_medfe_generator(_state_dict(fx, weights), model, what=weights.source())
    i = fx.inputs
    out, state = model.apply(v, to_nhwc(i["image"], np.float32), to_nhwc(i["high"], np.float32), to_nhwc(i["low"], np.float32), to_nhwc(i["gray"], np.float32), to_nhwc(i["mask"], np.float32),
                             mutable=["intermediates"])
    inter = _flat(state["intermediates"])
    res = {"output": to_nchw(out)}
    for name in fx.outputs:
        key = name.replace("pc_block.", "pc_block/")
        if key in inter:
            res[name] = to_nchw(inter[key])
    return res
