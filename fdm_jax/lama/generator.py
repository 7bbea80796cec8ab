"""LaMa's FFC ResNet generator (Big-LaMa when built from configs/big_lama.py), NHWC, Flax Linen.

Follows saicinpainting/training/modules/ffc.py:FFCResNetGenerator of geomagical/lama-with-refiner@
d4239d8 with the constructor defaults Big-LaMa keeps (generator: of configs/training/big-lama.yaml):

    ReflectionPad(3) -> FFC_BN_ACT k7 (init)                               } front: image, mask -> z
    n_downsampling x FFC_BN_ACT k3 s2 p1 (the last one splits off global)  }
    n_blocks x FFCResnetBlock                                              } rear: z -> image
    concat(local, global) -> n_downsampling x (ConvTranspose k3 s2 p1 op1 + BN + ReLU)
    ReflectionPad(3) -> Conv k7 (bias) -> sigmoid

The refiner optimises z = (z_l, z_g), the output of the last downsampling layer (`front`), and runs
only the `rear` per iteration (refinement.py splits at the first FFCResnetBlock, index 5).

Input contract of the library (converted here once, at the edge): image RGB in [0, 1], mask
(B, H, W, 1) with 1 = known pixel. The original's generator input is
concat([image * (1 - hole), hole]) with hole = 1 - mask (trainers/default.py forward, concat_mask).
H and W must be multiples of 2**n_downsampling (8 for Big-LaMa); `predict` pads.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.lama.ffc import FFCBnAct, FFCResnetBlock, ReflectConv, Split, batch_norm, reflect_pad
from fdm_jax.nn.layers import ConvTranspose2d
from fdm_jax.nn.padding import pad_to_modulo
from fdm_jax.nn.params import abstract_variables, count_params

OUT_ACTIVATIONS = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "none": lambda x: x}


class UpBlock(nn.Module):
    """ConvTranspose2d(k3, s2, p1, op1) -> BatchNorm -> ReLU (up_norm_layer, up_activation)."""

    features: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        up = ConvTranspose2d(self.features, kernel_size=3, output_padding=1, name="conv")  # pads the dilated input (1, 2)
        return nn.relu(batch_norm("bn")(up(x), train))


class FFCResNetGenerator(nn.Module):
    """ffc.py:FFCResNetGenerator (norm BatchNorm, ReLU, reflect padding, no spatial transform, no out_ffc).

    Submodules: init, down_0..down_{n-1}, block_0..block_{B-1}, up_0..up_{n-1}, out_conv. Outputs of
    each stage are sown into `intermediates` (init_out, down_i_out, block_i_out, concat, up_i_out,
    logits).
    `remat=True` rematerialises each resblock in the backward pass (jax.checkpoint per block: only the
    block inputs are kept, about +1 rear forward of compute per gradient).
    """

    input_nc: int = 4
    output_nc: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 9
    max_features: int = 1024
    init_ratio_gin: float = 0.0
    init_ratio_gout: float = 0.0
    downsample_ratio_gin: float = 0.0
    downsample_ratio_gout: float = 0.0
    resnet_ratio_gin: float = 0.75
    resnet_ratio_gout: float = 0.75
    out_activation: str = "sigmoid"
    remat: bool = False

    def setup(self):
        if self.out_activation not in OUT_ACTIVATIONS:
            raise ValueError(f"FFCResNetGenerator.out_activation={self.out_activation!r}; expected one of "
                             f"{sorted(OUT_ACTIVATIONS)}")
        mf, ngf, n = self.max_features, self.ngf, self.n_downsampling
        self.stem = FFCBnAct(ngf, 7, self.init_ratio_gin, self.init_ratio_gout, padding=0, name="init")
        downs = []
        for i in range(n):
            # ffc.py: the last downsampling layer outputs the resblocks' split (ratio_gout = their ratio_gin).
            gout = self.resnet_ratio_gin if i == n - 1 else self.downsample_ratio_gout
            downs.append(FFCBnAct(min(mf, ngf * 2 ** (i + 1)), 3, self.downsample_ratio_gin, gout,
                                  stride=2, padding=1, name=f"down_{i}"))
        self.downs = downs
        block = nn.remat(FFCResnetBlock, static_argnums=(2,)) if self.remat else FFCResnetBlock  # (self, x, train)
        self.blocks = [block(self.bottleneck_channels, self.resnet_ratio_gin, self.resnet_ratio_gout,
                             name=f"block_{i}") for i in range(self.n_blocks)]
        self.ups = [UpBlock(min(mf, int(ngf * 2 ** (n - i) / 2)), name=f"up_{i}") for i in range(n)]
        self.out_conv = ReflectConv(self.output_nc, 7, padding=3, use_bias=True, name="out_conv")

    @property
    def bottleneck_channels(self) -> int:
        return min(self.max_features, self.ngf * 2 ** self.n_downsampling)

    @property
    def modulo(self) -> int:
        """H and W must be multiples of this (the stride-2 convs and transposed convs)."""
        return 2 ** self.n_downsampling

    def encode(self, x: jax.Array, train: bool = False) -> Split:
        """model[0 : split]: the generator input x (B, H, W, input_nc) -> z = (z_l, z_g)."""
        if x.ndim != 4 or x.shape[-1] != self.input_nc:
            raise ValueError(f"generator input: expected (B, H, W, {self.input_nc}), got {x.shape}")
        if x.shape[1] % self.modulo or x.shape[2] % self.modulo:
            raise ValueError(f"generator input: H and W must be multiples of {self.modulo}, got "
                             f"{x.shape[1]}x{x.shape[2]} (pad first, e.g. with `predict`)")
        z = self.stem((reflect_pad(x, 3), None), train)
        self.sow("intermediates", "init_out", z)
        for i, down in enumerate(self.downs):
            z = down(z, train)
            self.sow("intermediates", f"down_{i}_out", z)
        return z

    def front(self, image: jax.Array, mask: jax.Array) -> Split:
        """image (B, H, W, 3) in [0, 1], mask (B, H, W, 1) with 1 = known -> z."""
        return self.encode(generator_input(image, mask))

    def rear(self, z: Split, train: bool = False) -> jax.Array:
        """model[split:]: z -> the raw generator output (sigmoid RGB for Big-LaMa), (B, H, W, output_nc)."""
        for i, block in enumerate(self.blocks):
            z = block(z, train)
            self.sow("intermediates", f"block_{i}_out", z)
        z_l, z_g = z
        x = z_l if z_g is None else jnp.concatenate([z_l, z_g], axis=-1)  # ConcatTupleLayer: local first
        self.sow("intermediates", "concat", x)
        for i, up in enumerate(self.ups):
            x = up(x, train)
            self.sow("intermediates", f"up_{i}_out", x)
        x = self.out_conv(x)  # ReflectionPad2d(3) + Conv2d k7 with bias
        self.sow("intermediates", "logits", x)
        return OUT_ACTIVATIONS[self.out_activation](x)

    def __call__(self, image: jax.Array, mask: jax.Array) -> jax.Array:
        """predicted_image = generator(concat([image * known, hole]))."""
        return self.rear(self.front(image, mask))


def generator_input(image: jax.Array, mask: jax.Array) -> jax.Array:
    """trainers/default.py forward with concat_mask: concat([image * (1 - hole), hole]), hole = 1 - mask."""
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"image: expected (B, H, W, 3) RGB in [0, 1], got shape {image.shape}")
    if mask.shape != image.shape[:3] + (1,):
        raise ValueError(f"mask: expected {image.shape[:3] + (1,)} (1 = known), got {mask.shape}")
    hole = 1.0 - mask
    return jnp.concatenate([image * (1.0 - hole), hole], axis=-1)


class FrontRear(NamedTuple):
    """The refiner's view of a generator: front(variables, image, mask) -> z, rear(variables, z) -> image."""

    front: Callable
    rear: Callable


@functools.lru_cache(maxsize=None)
def front_rear(model: nn.Module) -> FrontRear:
    """Pure functions over a model exposing `front` and `rear` methods (cached per model, so jitted
    callers see the same function objects and compile once)."""
    cls = type(model)

    def front(variables, image, mask):
        return model.apply(variables, image, mask, method=cls.front)

    def rear(variables, z):
        return model.apply(variables, z, method=cls.rear)

    return FrontRear(front, rear)


def predict(model: FFCResNetGenerator, variables, image: jax.Array, mask: jax.Array) -> jax.Array:
    """LaMa's plain (unrefined) prediction, bin/predict.py without refine=True.

    image (B, H, W, 3) in [0, 1], mask (B, H, W, 1) with 1 = known (any H, W). The hole is binarised as
    the original does (`mask > 0` on the hole map, so any partially unknown pixel is a hole); image and
    mask are padded to a multiple of 8 with numpy 'symmetric' (InpaintingDataset pad_out_to_modulo),
    the generator runs, known pixels are copied back (`inpainted`) and the result is cropped.
    """
    h, w = image.shape[1:3]
    known = jnp.where(1.0 - mask > 0, 0.0, 1.0).astype(image.dtype)
    img_p = pad_to_modulo(image, model.modulo, mode="symmetric")
    known_p = pad_to_modulo(known, model.modulo, mode="symmetric")
    pred = model.apply(variables, img_p, known_p)
    inpainted = (1.0 - known_p) * pred + known_p * img_p
    return inpainted[:, :h, :w]


def count_parameters(model: FFCResNetGenerator) -> dict[str, int]:
    """{'front', 'rear', 'total' (trainable parameters), 'batch_stats' (BN running-stat elements)},
    from `jax.eval_shape` of init, so Big-LaMa is counted without allocating it."""
    s = model.modulo
    v = abstract_variables(model, jnp.zeros((1, s, s, 3)), jnp.ones((1, s, s, 1)))

    p = v["params"]
    front = count_params(p["init"]) + sum(count_params(p[f"down_{i}"]) for i in range(model.n_downsampling))
    total = count_params(p)
    return {"front": front, "rear": total - front, "total": total, "batch_stats": count_params(v["batch_stats"])}


def random_variables(model: FFCResNetGenerator, seed: int = 0) -> dict:
    """Random variables without running `init` (whose jitted RNG program takes far longer to compile
    than the model itself): numpy-filled from `jax.eval_shape`, kernels and biases U(+-1/sqrt(fan_in))
    as PyTorch's default init, BatchNorm scale 1, bias 0, running mean 0, var 1. For smoke tests and
    benchmarks; weights do not change the cost."""
    rng = np.random.default_rng(seed)
    s = model.modulo
    abstract = abstract_variables(model, jnp.zeros((1, s, s, 3)), jnp.ones((1, s, s, 1)))
    fan_in: dict[tuple, int] = {}

    def leaf(path, x):
        names = tuple(str(getattr(p, "key", p)) for p in path)
        if names[-1] == "kernel":
            kh, kw, cin, cout = x.shape
            # ConvTranspose2d's PyTorch fan_in is out * k * k (weight dim 1); every other conv in * k * k.
            fan = cout * kh * kw if names[-2] == "conv" and names[-3].startswith("up_") else cin * kh * kw
            fan_in[names[:-1]] = fan
            return jnp.asarray(rng.uniform(-1, 1, x.shape).astype(np.float32) / np.sqrt(fan))
        if names[-1] in ("scale", "var"):
            return jnp.ones(x.shape, x.dtype)
        if names[-1] == "mean" or names[-2].startswith("bn"):
            return jnp.zeros(x.shape, x.dtype)
        return None  # conv biases: filled below, once their kernel's fan_in is known

    tree = jax.tree_util.tree_map_with_path(leaf, abstract)

    def bias(path, x, a):
        if x is not None:
            return x
        names = tuple(str(getattr(p, "key", p)) for p in path)
        return jnp.asarray(rng.uniform(-1, 1, a.shape).astype(np.float32) / np.sqrt(fan_in[names[:-1]]))

    return jax.tree_util.tree_map_with_path(bias, tree, abstract, is_leaf=lambda t: t is None)
