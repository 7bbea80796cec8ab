"""Fast Fourier Convolution pieces as LaMa uses them (NHWC, Flax Linen, PyTorch BatchNorm semantics).

Follows saicinpainting/training/modules/ffc.py of geomagical/lama-with-refiner@d4239d8 (identical in
advimman/lama): FourierUnit, SpectralTransform, FFC, FFC_BN_ACT and FFCResnetBlock. Big-LaMa and the
TSGL LaMa variant both build their generators from these, so they live here on their own.

Conventions (those of ffc.py and of its PyTorch state_dict):
  * A feature map with a local/global split is the tuple (x_l, x_g); x_g is None where the original
    passes the int 0 (no global part). Local comes first wherever the two are concatenated.
  * Convolutions are bias-free and pad with *reflection* (PyTorch padding_mode='reflect' = numpy
    'reflect', the edge pixel not repeated), then run VALID; Flax's own padding would be zeros.
  * BatchNorm (`TorchBatchNorm`) uses the running statistics by default (inference and refinement run
    the original frozen, `eval()`), epsilon 1e-5; the statistics live in the `batch_stats` collection
    as `mean` / `var`. `train=True` (threaded through every module here) is PyTorch's train mode:
    batch statistics (biased variance) normalise, and the running ones move by momentum 0.1 toward the
    batch mean and the UNBIASED batch variance (needs mutable=['batch_stats']). Under a batch-sharded
    jit the batch statistics are those of the global batch (SyncBatchNorm over all devices).
  * Parameter names mirror the original's state_dict names (convl2l, convg2g/fu/conv_layer, bn_l, ...)
    so the converter's key map is one rule per layer.
Only what the two generators use is implemented: stride-1 spectral transforms without the local
Fourier unit (enable_lfu=False), dilation 1, no gating, no spectral positional encoding, no SE.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from fdm_jax.nn.layers import Conv2d, torch_uniform_init
from fdm_jax.nn.normalization import BN_MOMENTUM, batch_statistics

Split = tuple[jax.Array, Optional[jax.Array]]

BN_EPS = 1e-5  # torch.nn.BatchNorm2d default eps


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    """nn.ReflectionPad2d(pad) / padding_mode='reflect' on an NHWC map."""
    if pad == 0:
        return x
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")




class TorchBatchNorm(nn.Module):
    """`nn.BatchNorm2d` over the last axis; variables as flax's BatchNorm (params scale/bias, batch_stats
    mean/var; init 1, 0, 0, 1 as PyTorch's).

    train=False: (x - running_mean) * (rsqrt(running_var + eps) * weight) + bias (flax BatchNorm's
    evaluation order, which the parity fixtures were checked with). train=True: batch mean and biased
    variance normalise; the running statistics update as PyTorch (momentum, unbiased variance), skipped
    while initialising."""

    epsilon: float = BN_EPS
    momentum: float = BN_MOMENTUM

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c = x.shape[-1]
        mean, var = batch_statistics(self, x, train, self.momentum)
        scale = self.param("scale", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        return (x - mean) * (lax.rsqrt(var + self.epsilon) * scale) + bias


def batch_norm(name: str) -> TorchBatchNorm:
    """`nn.BatchNorm2d` named `name`; call it as bn(x) (running statistics) or bn(x, train)."""
    return TorchBatchNorm(name=name)


class ReflectConv(nn.Module):
    """`nn.Conv2d(..., padding=p, padding_mode='reflect')`: reflect-pad by p, then a VALID conv.

    Kernel (kh, kw, in, out) = torch weight.transpose(2, 3, 1, 0); PyTorch's default init.
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = False

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        init = torch_uniform_init(x.shape[-1] * k * k)
        kernel = self.param("kernel", init, (k, k, x.shape[-1], self.features))
        y = lax.conv_general_dilated(reflect_pad(x, self.padding), kernel, (self.stride, self.stride),
                                     "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", init, (self.features,))
        return y


class FourierUnit(nn.Module):
    """ffc.py:FourierUnit with fft_norm='ortho' (the defaults Big-LaMa and TSGL use).

    rfft2 over (H, W) -> real/imaginary *interleaved* on channels (2k = Re of channel k, 2k+1 = Im,
    ffc.py's stack(dim=-1) + permute + view) -> 1x1 conv (2C -> 2F, no bias) -> BN -> ReLU ->
    complex -> irfft2 with the input's spatial size (odd widths need s=(H, W)).
    """

    features: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        b, h, w, c = x.shape
        spec = jnp.fft.rfft2(x, axes=(1, 2), norm="ortho")  # (B, H, W//2+1, C) complex
        wf = spec.shape[2]
        spec = jnp.stack([spec.real, spec.imag], axis=-1).reshape(b, h, wf, 2 * c)
        self.sow("intermediates", "spectrum", spec)
        y = Conv2d(2 * self.features, 1, use_bias=False, name="conv_layer")(spec)
        y = nn.relu(batch_norm("bn")(y, train))
        y = y.reshape(b, h, wf, self.features, 2)
        y = lax.complex(y[..., 0], y[..., 1])
        return jnp.fft.irfft2(y, s=(h, w), axes=(1, 2), norm="ortho")


class SpectralTransform(nn.Module):
    """ffc.py:SpectralTransform, stride 1, no LFU: conv2(u + FU(u)) with u = ReLU(BN(conv1(x))).

    State-dict names: conv1.0 -> conv1, conv1.1 -> bn1, fu.{conv_layer,bn}, conv2.
    """

    features: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        half = self.features // 2
        u = nn.relu(batch_norm("bn1")(Conv2d(half, 1, use_bias=False, name="conv1")(x), train))
        f = FourierUnit(half, name="fu")(u, train)
        return Conv2d(self.features, 1, use_bias=False, name="conv2")(u + f)


def _split_channels(channels: int, ratio: float) -> tuple[int, int]:
    """(local, global) channel counts exactly as ffc.py: global = int(channels * ratio)."""
    g = int(channels * ratio)
    return channels - g, g


class FFC(nn.Module):
    """ffc.py:FFC (gated=False): out_l = l2l(x_l) + g2l(x_g), out_g = l2g(x_l) + g2g(x_g).

    A path whose input or output side has no channels is the original's nn.Identity on the int 0 and
    contributes nothing. out_l is skipped when ratio_gout == 1 and out_g when ratio_gout == 0.
    """

    features: int
    kernel_size: int
    ratio_gin: float
    ratio_gout: float
    stride: int = 1
    padding: int = 0

    @nn.compact
    def __call__(self, x: Split, train: bool = False) -> Split:
        x_l, x_g = x
        in_ch = x_l.shape[-1] + (0 if x_g is None else x_g.shape[-1])
        in_cl, in_cg = _split_channels(in_ch, self.ratio_gin)
        got = (x_l.shape[-1], 0 if x_g is None else x_g.shape[-1])
        if got != (in_cl, in_cg):
            raise ValueError(f"FFC({self.name}): input has (local, global) channels {got}, but ratio_gin="
                             f"{self.ratio_gin} of {in_ch} channels means {(in_cl, in_cg)}")
        out_cl, out_cg = _split_channels(self.features, self.ratio_gout)
        conv = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)

        def total(parts, side):
            parts = [p for p in parts if p is not None]
            if not parts:
                raise ValueError(f"FFC({self.name}): no input path feeds the {side} output")
            return parts[0] if len(parts) == 1 else parts[0] + parts[1]

        out_l = out_g = None
        if self.ratio_gout != 1:
            out_l = total([
                ReflectConv(out_cl, name="convl2l", **conv)(x_l) if in_cl and out_cl else None,
                ReflectConv(out_cl, name="convg2l", **conv)(x_g) if in_cg and out_cl else None,
            ], "local")
        if self.ratio_gout != 0:
            if in_cg and out_cg and self.stride != 1:
                raise ValueError(f"FFC({self.name}): a strided spectral transform is not supported "
                                 "(neither Big-LaMa nor TSGL uses one)")
            out_g = total([
                ReflectConv(out_cg, name="convl2g", **conv)(x_l) if in_cl and out_cg else None,
                SpectralTransform(out_cg, name="convg2g")(x_g, train) if in_cg and out_cg else None,
            ], "global")
        return out_l, out_g


class FFCBnAct(nn.Module):
    """ffc.py:FFC_BN_ACT with ReLU: FFC, then BN + ReLU on each non-empty side (bn_l, bn_g)."""

    features: int
    kernel_size: int
    ratio_gin: float
    ratio_gout: float
    stride: int = 1
    padding: int = 0

    @nn.compact
    def __call__(self, x: Split, train: bool = False) -> Split:
        x_l, x_g = FFC(self.features, self.kernel_size, self.ratio_gin, self.ratio_gout, self.stride,
                       self.padding, name="ffc")(x, train)
        if x_l is not None:
            x_l = nn.relu(batch_norm("bn_l")(x_l, train))
        if x_g is not None:
            x_g = nn.relu(batch_norm("bn_g")(x_g, train))
        return x_l, x_g


class FFCResnetBlock(nn.Module):
    """ffc.py:FFCResnetBlock (dilation 1, not inline): x + conv2(conv1(x)) on both branches.

    There is no activation after the residual add. conv1's output is sown as `conv1_out` (intermediates).
    """

    dim: int
    ratio_gin: float = 0.75
    ratio_gout: float = 0.75

    @nn.compact
    def __call__(self, x: Split, train: bool = False) -> Split:
        kw = dict(kernel_size=3, ratio_gin=self.ratio_gin, ratio_gout=self.ratio_gout, padding=1)
        y = FFCBnAct(self.dim, name="conv1", **kw)(x, train)
        self.sow("intermediates", "conv1_out", y)
        y_l, y_g = FFCBnAct(self.dim, name="conv2", **kw)(y, train)
        x_l, x_g = x
        return x_l + y_l, (None if x_g is None else x_g + y_g)
