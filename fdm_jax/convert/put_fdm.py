"""Strict PyTorch state_dict -> Flax variable converters for PUT + FDM (checkpoints of
hyudsl/FDM:image_synthesis/modeling/model/inpainting_model.py:InpaintingModel and of liuqk3/PUT).

Every original key is either consumed or listed as ignored with a reason; a missing, extra or
mis-shaped key raises `ConversionError` naming the key and both shapes. Expected Flax shapes come
from `jax.eval_shape` of the module's init, so any width/depth converts (no shape special cases).

Layouts: Linear (out, in) -> kernel (in, out); Conv2d (O, I, kh, kw) -> (kh, kw, I, O);
ConvTranspose2d (I, O, kh, kw) -> (kh, kw, I, O); LayerNorm weight -> scale.
"""

from __future__ import annotations

import re
from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.nn.layout import TORCH_TO_FLAX, torch_shape
from fdm_jax.nn.params import abstract_variables
from fdm_jax.put_fdm import FeatureDequantizer, FeatureSampler, PatchVQVAE
from fdm_jax.put_fdm.feature_sampler import match_layout


class ConversionError(ValueError):
    """A checkpoint does not fit the module: names the key(s) and the shapes."""


def _layer(torch_prefix: str, kind: str, leaf: str) -> tuple[str, str]:
    torch_leaf = {"kernel": "weight", "bias": "bias", "scale": "weight"}[leaf]
    return f"{torch_prefix}.{torch_leaf}", ("same" if leaf != "kernel" else kind)


def _codec_key(path: tuple[str, ...]) -> tuple[str, str]:
    """Flax path of PatchVQVAE variables -> (state_dict key of PatchVQGAN, layout)."""
    col, *p = path
    if col == "codebook":  # ('codebook', 'quantizer', name)
        return f"quantize.{p[1]}", "same"
    leaf = p[-1]
    match p[:-1]:
        case ["encoder", "pre"]:
            return _layer("encoder.pre_layers.0", "linear", leaf)
        case ["encoder", "post"]:
            return _layer("encoder.post_layers.0", "linear", leaf)
        case ["encoder", res, fc]:
            i = int(res.split("_")[1])
            return _layer(f"encoder.res_layers.{i}.layers.{0 if fc == 'fc1' else 2}", "linear", leaf)
        case ["quant_conv"] | ["post_quant_conv"]:
            return _layer(p[0], "conv", leaf)
        case ["decoder", "pre"]:
            return _layer("decoder.pre_layers.0", "conv", leaf)
        case ["decoder", "post"]:
            return _layer("decoder.post_layers.0", "conv", leaf)
        case ["decoder", "image_encoder", conv]:
            return _layer(f"decoder.encoder.layers.{conv[len('conv'):]}", "conv", leaf)
        case ["decoder", up] if up.startswith("up_"):
            return _layer(f"decoder.up_layers.{up[3:]}.deconv", "convT", leaf)
        case ["decoder", res, conv]:
            i = int(res.split("_")[1])
            return _layer(f"decoder.res_layers.{i}.conv.{0 if conv == 'conv1' else 2}", "conv", leaf)
    raise KeyError(path)


def _fdm_key(num_res_blocks: int):
    def key(path):
        _, *p = path
        leaf = p[-1]
        match p[:-1]:
            case ["conv_in"]:
                return _layer("mix.0", "conv", leaf)
            case ["conv_out"]:
                return _layer(f"mix.{num_res_blocks + 2}", "conv", leaf)
            case [res, conv]:
                i = int(res.split("_")[1]) + 2  # mix.0 conv, mix.1 ReLU, then the blocks
                return _layer(f"mix.{i}.conv.{0 if conv == 'conv1' else 2}", "conv", leaf)
        raise KeyError(path)
    return key


def _sampler_key(path):
    _, *p = path
    leaf = p[-1]
    match p[:-1]:
        case []:  # pos_emb
            return leaf, "same"
        case ["emb_proj"] | ["to_logits"]:
            return _layer(p[0], "linear", leaf)
        case ["ln_f"]:
            return _layer("layer_norm", "same", leaf)
        case [block, "attn", lin]:
            return _layer(f"blocks.{block[6:]}.attn.{lin}", "linear", leaf)
        case [block, ln] if ln in ("ln1", "ln2"):
            return _layer(f"blocks.{block[6:]}.{ln}", "same", leaf)
        case [block, fc]:
            return _layer(f"blocks.{block[6:]}.mlp.{0 if fc == 'mlp_fc1' else 2}", "linear", leaf)
    raise KeyError(path)


def _path_names(path) -> tuple[str, ...]:
    return tuple(getattr(k, "key", getattr(k, "name", str(k))) for k in path)


def convert_with(abstract_vars, state_dict: Mapping[str, np.ndarray], key_fn, what: str,
                 ignored: Mapping[str, str] | None = None) -> dict:
    """Build a variables tree shaped like `abstract_vars` from `state_dict` using key_fn(path) -> (key, layout).

    `ignored` maps keys that may be present but are deliberately unused to the reason.
    """
    ignored = dict(ignored or {})
    used: set[str] = set()
    missing, bad_shape = [], []

    def one(path, leaf):
        names = _path_names(path)
        key, kind = key_fn(names)
        used.add(key)
        if key not in state_dict:
            missing.append(f"{key} (expected PyTorch shape {torch_shape(kind, leaf.shape)} "
                           f"for {'/'.join(names)})")
            return None
        w = np.asarray(state_dict[key])
        out = TORCH_TO_FLAX[kind](w)
        if out.shape != leaf.shape:
            bad_shape.append(f"{key}: checkpoint shape {tuple(w.shape)}, expected "
                             f"{torch_shape(kind, leaf.shape)} for {'/'.join(names)}")
            return None
        return jnp.asarray(out, dtype=leaf.dtype)

    tree = jax.tree_util.tree_map_with_path(one, abstract_vars)
    extra = [k for k in state_dict if k not in used and k not in ignored]
    problems = []
    if missing:
        problems.append("missing keys: " + "; ".join(missing))
    if bad_shape:
        problems.append("mis-shaped keys: " + "; ".join(bad_shape))
    if extra:
        problems.append("unexpected keys: " + ", ".join(
            f"{k} {tuple(np.shape(state_dict[k]))}" for k in extra))
    if problems:
        raise ConversionError(f"{what}: " + " | ".join(problems))
    return tree


def convert_codec(state_dict, codec: PatchVQVAE, what: str = "codec (PatchVQGAN) state_dict") -> dict:
    """PatchVQGAN.state_dict() (no `content_codec.` prefix) -> PatchVQVAE variables {params, codebook}."""
    s = 8 * codec.patch_size
    abstract = abstract_variables(codec, jnp.zeros((1, s, s, codec.in_ch)), jnp.ones((1, s, s, 1)))
    return convert_with(abstract, state_dict, _codec_key, what)


def convert_fdm(state_dict, fdm: FeatureDequantizer, what: str = "FDM state_dict") -> dict:
    """FDM.state_dict() (`mix.*`) -> FeatureDequantizer variables {params}."""
    abstract = abstract_variables(fdm, jnp.zeros((1, 4, 4, fdm.embed_dim)), jnp.ones((1, 4, 4, 1)))
    return convert_with(abstract, state_dict, _fdm_key(fdm.num_res_blocks), what)


def convert_sampler(state_dict, sampler: FeatureSampler, what: str = "transformer state_dict") -> dict:
    """MaskedImageInpaintingTransformer.state_dict() -> FeatureSampler variables {params}, in the
    layout of `sampler` (a scanned sampler, scan_blocks=True, gets its blocks stacked: the keys are
    matched block by block on the per-block layout, then `stack_blocks`)."""
    unrolled = sampler.clone(scan_blocks=False)
    abstract = abstract_variables(unrolled, jnp.zeros((1, sampler.seq_len, sampler.feature_dim)))
    return match_layout(convert_with(abstract, state_dict, _sampler_key, what), sampler)


# --- InpaintingModel checkpoints (`temp`, `content_codec.*`, `fdm.*`, `generator.*`, `loss.*`) -------

IGNORED_PREFIXES = {
    "temp": "dummy parameter InpaintingModel uses only to find its device",
    "loss.": "training-only discriminator / VGG weights (converted by the training code, not the model)",
}
PARTS = {"content_codec.": "codec", "fdm.": "fdm", "lip.": "fdm", "generator.": "sampler"}


def split_inpainting_state_dict(state_dict: Mapping[str, np.ndarray], source: str = "state_dict"):
    """Split an InpaintingModel state_dict into {'codec'|'fdm'|'sampler': sub-state_dict} plus
    {ignored key: reason}. Legacy `lip.*` keys are FDM keys (inpainting_model.py init_from_ckpt).
    A key with no known prefix is a ConversionError."""
    parts: dict[str, dict] = {}
    ignored: dict[str, str] = {}
    unknown = []
    for k, v in state_dict.items():
        reason = next((r for p, r in IGNORED_PREFIXES.items() if k == p or (p.endswith(".") and k.startswith(p))), None)
        if reason:
            ignored[k] = reason
            continue
        prefix = next((p for p in PARTS if k.startswith(p)), None)
        if prefix is None:
            unknown.append(k)
            continue
        parts.setdefault(PARTS[prefix], {})[k[len(prefix):]] = v
    if unknown:
        raise ConversionError(f"{source}: unexpected keys (not content_codec./fdm./generator./temp/loss.): "
                              + ", ".join(unknown))
    return parts, ignored


def convert_inpainting_parts(parts: Mapping[str, Mapping], models: Mapping[str, nn.Module],
                             source: str = "state_dict") -> dict:
    """Convert the parts present for which a module is given. Returns {'codec': vars, ...}."""
    fns = {"codec": convert_codec, "fdm": convert_fdm, "sampler": convert_sampler}
    out = {}
    for name, sd in parts.items():
        if name in models:
            out[name] = fns[name](sd, models[name], what=f"{source} [{name}]")
    return out


PUT_CODEC_RENAMES = [  # liuqk3/PUT P-VQVAE -> FDM PatchVQGAN key names (PatchEncoder2 / PatchConvDecoder2 of
    # liuqk3/PUT@cvpr2022:image_synthesis/modeling/codecs/image_codec/patch_vqgan.py)
    (r"^encoder\.res_layers\.(\d+)\.layers\.1\.", r"encoder.res_layers.\1.layers.0."),
    (r"^encoder\.res_layers\.(\d+)\.layers\.3\.", r"encoder.res_layers.\1.layers.2."),
    (r"^encoder\.post_layers\.1\.", "encoder.post_layers.0."),
    (r"^decoder\.res_layers\.(\d+)\.conv\.1\.", r"decoder.res_layers.\1.conv.0."),
    (r"^decoder\.res_layers\.(\d+)\.conv\.3\.", r"decoder.res_layers.\1.conv.2."),
    (r"^decoder\.post_layers\.1\.", "decoder.post_layers.0."),
]


def rename_put_codec_keys(state_dict: Mapping[str, np.ndarray]) -> dict:
    """Rename a liuqk3/PUT P-VQVAE state_dict to FDM's PatchVQGAN names (the two are numerically
    identical modules; PUT's in-place ReLUs make its blocks post-activation)."""
    out = {}
    for k, v in state_dict.items():
        for pat, rep in PUT_CODEC_RENAMES:
            k = re.sub(pat, rep, k)
        out[k] = v
    return out
