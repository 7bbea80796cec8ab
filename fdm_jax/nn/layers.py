"""PyTorch-equivalent building blocks (NHWC) with explicit parameters.

The layers hold their parameters in Flax layout (`kernel` HWIO / (in, out), `bias`) and reproduce the
original's PyTorch layers exactly, including PyTorch's default initialisation U(±1/sqrt(fan_in))
(hyudsl/FDM's codec and FDM set no init of their own). Padding is always explicit so
that no layer depends on Flax's 'SAME' conventions.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


def torch_uniform_init(fan_in: int):
    """PyTorch's default Linear/Conv init for both weight and bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / float(fan_in) ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def compute_dtype(name):
    """A module's `dtype` field ('float32', 'bfloat16' or a jnp dtype) -> the layers' `dtype`
    argument: None for float32 (no casts at all, the original's numbers), else the jnp dtype."""
    return None if jnp.dtype(name) == jnp.float32 else jnp.dtype(name)


def compute_cast(dtype, *arrays):
    """The arrays in the computation dtype `dtype` (None: unchanged, the layers' float32 default).
    Parameters are stored in float32 whatever `dtype` (a bfloat16 model is float32 parameters with
    bfloat16 arithmetic: param_dtype float32, dtype bfloat16)."""
    if dtype is None:
        return arrays if len(arrays) > 1 else arrays[0]
    out = tuple(jnp.asarray(a).astype(dtype) for a in arrays)
    return out if len(out) > 1 else out[0]


class Linear(nn.Module):
    """`torch.nn.Linear`: kernel (in, out) = W.T."""

    features: int
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer | None = None
    dtype: Any = None  # computation dtype (None: the input's); parameters stay float32 (compute_cast)

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        init = torch_uniform_init(fan_in)
        kernel = self.param("kernel", self.kernel_init or init, (fan_in, self.features))
        x, kernel = compute_cast(self.dtype, x, kernel)
        y = jnp.dot(x, kernel)
        if self.use_bias:
            bias_init = nn.initializers.zeros if self.kernel_init is not None else init
            y = y + compute_cast(self.dtype, self.param("bias", bias_init, (self.features,)))
        return y


class Conv2d(nn.Module):
    """`torch.nn.Conv2d` on NHWC input: kernel (kh, kw, in, out) = W.transpose(2, 3, 1, 0)."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = True
    dtype: Any = None  # computation dtype (None: the input's); parameters stay float32

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        in_ch = x.shape[-1]
        init = torch_uniform_init(in_ch * k * k)
        kernel = self.param("kernel", init, (k, k, in_ch, self.features))
        x, kernel = compute_cast(self.dtype, x, kernel)
        y = lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(self.stride, self.stride),
            padding=((self.padding, self.padding), (self.padding, self.padding)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        if self.use_bias:
            y = y + compute_cast(self.dtype, self.param("bias", init, (self.features,)))
        return y


def conv_transpose2d(x: jax.Array, kernel: jax.Array, *, stride: int, padding: int,
                     output_padding: int = 0) -> jax.Array:
    """`torch.nn.functional.conv_transpose2d` (no bias, dilation 1, groups 1) on NHWC input, kernel
    (kh, kw, in, out) = the torch weight (in, out, kh, kw).transpose(2, 3, 0, 1).

    A transposed convolution is a convolution of the stride-dilated input with the spatially flipped
    kernel, padded k - 1 - p before and k - 1 - p + output_padding after; its output size is the one
    torch.nn.ConvTranspose2d documents, (in - 1) * stride - 2 * padding + k + output_padding.
    """
    kh, kw = kernel.shape[:2]
    pads = tuple((k - 1 - padding, k - 1 - padding + output_padding) for k in (kh, kw))
    return lax.conv_general_dilated(x, kernel[::-1, ::-1], window_strides=(1, 1), padding=pads,
                                    lhs_dilation=(stride, stride), dimension_numbers=("NHWC", "HWIO", "NHWC"))


class ConvTranspose2d(nn.Module):
    """`torch.nn.ConvTranspose2d` on NHWC input (`conv_transpose2d` plus bias). Default init is
    PyTorch's (fan_in from weight dim 1, i.e. out_ch * k * k); a port whose original re-initialises
    (TSGL-MEDFE's N(0, 0.02), zero bias) passes kernel_init / bias_init."""

    features: int
    kernel_size: int = 4
    stride: int = 2
    padding: int = 1
    output_padding: int = 0
    kernel_init: Callable | None = None
    bias_init: Callable | None = None
    dtype: Any = None  # computation dtype (None: the input's); parameters stay float32

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        default = torch_uniform_init(self.features * k * k)
        kernel = self.param("kernel", self.kernel_init or default, (k, k, x.shape[-1], self.features))
        x, kernel = compute_cast(self.dtype, x, kernel)
        y = conv_transpose2d(x, kernel, stride=self.stride, padding=self.padding, output_padding=self.output_padding)
        return y + compute_cast(self.dtype, self.param("bias", self.bias_init or default, (self.features,)))


class LinearResBlock(nn.Module):
    """basic_module.py:LinearResBlock: h <- ReLU(h + L2(ReLU(L1(h)))) (post-activation)."""

    hidden: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x):
        h = nn.relu(Linear(self.hidden, name="fc1", dtype=self.dtype)(x))
        h = Linear(x.shape[-1], name="fc2", dtype=self.dtype)(h)
        return nn.relu(x + h)


class ConvResBlock(nn.Module):
    """basic_module.py:ConvResBlock: h <- ReLU(h + Conv1x1(ReLU(Conv3x3(h))))."""

    hidden: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x):
        h = nn.relu(Conv2d(self.hidden, 3, padding=1, name="conv1", dtype=self.dtype)(x))
        h = Conv2d(x.shape[-1], 1, name="conv2", dtype=self.dtype)(h)
        return nn.relu(x + h)


def patchify(x: jax.Array, patch: int) -> jax.Array:
    """(B, H, W, C) -> (B, H/p, W/p, C*p*p) with PyTorch `F.unfold`'s in-patch order c*p*p + ky*p + kx."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // patch, patch, w // patch, patch, c)
    x = x.transpose(0, 1, 3, 5, 2, 4)
    return x.reshape(b, h // patch, w // patch, c * patch * patch)


def block_reduce(x: jax.Array, patch: int, reducer=jnp.sum) -> jax.Array:
    """Reduce each non-overlapping patch x patch block: (B, H, W, C) -> (B, H/p, W/p, C)."""
    b, h, w, c = x.shape
    return reducer(x.reshape(b, h // patch, patch, w // patch, patch, c), axis=(2, 4))

