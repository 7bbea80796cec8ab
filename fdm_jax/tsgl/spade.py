"""TSGL's SPADE-style normalisation blocks (NHWC, Flax Linen), as htyjers/ConvInpaint-TSGL@e9f6438
computes them (TSGL_*/test/spade.py, spectral_norm.py, model.py:SPDNormResnetBlock).

    SPADE(norm, C):  out = norm(x) * (1 + gamma(s)) + beta(s),  s = nearest-resize(segmap, size(x))
                     gamma, beta = conv3x3(relu(conv3x3(s; 128 hidden)))       (spade.py:SPADE)
      norm 'batch'    the "global" normalisation: SynchronizedBatchNorm2d(affine=False). Eval uses the
                      RUNNING statistics (a fixed per-channel affine), not per-image statistics (paper Eq. 7);
                      train uses batch statistics and updates the running ones (PyTorch's rule).
      norm 'position' the "local" normalisation: per position over channels, UNBIASED variance (C - 1),
                      (x - mean_c) / sqrt(var_c + 1e-5)                       (spade.py:PositionalNorm2d)

    SPADEResnetBlock (model.py:SPDNormResnetBlock, "2Global(Local) -> Global(Local)"):
      low = conv_s(lrelu(SPADE_position(x; seg_local)))
      h   = conv_0(lrelu(SPADE_batch(x; seg_global)))
      h   = conv_1(lrelu(SPADE_batch(h; seg_global)))
      out = h + low          TSGL_MEDFE/test/model.py (identity_skip=False)
      out = h + low + x      TSGL_Lama/test/model.py  (identity_skip=True)
    conv_* are 3x3 convs with bias wrapped in torch.nn.utils.spectral_norm.

Spectral norm (`SNConv2d`): the trainable kernel is PyTorch's `weight_orig` (HWIO here) and the power-
iteration vectors u (out,), v (in*k*k,) live in the `spectral_norm` collection, in PyTorch's order (the
weight reshaped to (out, in*kh*kw)). Eval (torch eval mode): W = W_orig / (u . W_orig v) with the STORED
u, v (never an exact SVD). Train: one power iteration per call first (v <- normalize(W^T u), then
u <- normalize(W v)), returned through the mutable collection.

Also here, because every TSGL module uses them: `Conv2d` with the original's initialisation
(BaseNetwork.init_weights('normal', 0.02): weights N(0, 0.02), biases 0), `BatchNorm` with PyTorch's train
semantics (batch statistics with the biased variance, running variance updated with the unbiased one,
momentum 0.1). The segmap resize is fdm_jax.nn.resize.nearest_resize (F.interpolate(mode='nearest')).
Model code knows nothing about training: `train` only selects batch vs running statistics and whether
the spectral-norm vectors advance, as PyTorch's module.train()/eval() does.
"""

from __future__ import annotations

from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from fdm_jax.nn.normalization import (BN_MOMENTUM, SN_COLLECTION, SN_EPS, batch_statistics,  # noqa: F401
                                          spectral_norm_vectors)
from fdm_jax.nn.resize import nearest_resize

INIT_STD = 0.02  # model.py BaseNetwork.init_weights(init_type='normal', gain=0.02)
BN_EPS = 1e-5  # nn.BatchNorm2d / SynchronizedBatchNorm2d / PositionalNorm2d epsilon
LRELU_SLOPE = 0.2  # SPDNormResnetBlock.actvn: F.leaky_relu(x, 2e-1)
SPADE_HIDDEN = 128  # spade.py: "nhidden = 128 ... Yes, hardcoded."

normal_init = nn.initializers.normal(INIT_STD)


def _ones_normal(std: float = INIT_STD):
    """BatchNorm2d weight init of init_weights: N(1, 0.02)."""
    def init(key, shape, dtype=jnp.float32):
        return 1.0 + std * jax.random.normal(key, shape, dtype)
    return init


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: int = 0, groups: int = 1) -> jax.Array:
    """PyTorch Conv2d (cross-correlation, zero padding) on NHWC with an HWIO kernel."""
    return lax.conv_general_dilated(x, kernel, (stride, stride), ((padding, padding), (padding, padding)),
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)


class Conv2d(nn.Module):
    """`nn.Conv2d` (zero padding) on NHWC; kernel (kh, kw, in, out) = weight.transpose(2, 3, 1, 0).

    Initialised as the original's init_weights does: N(0, 0.02) weights, zero bias.
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = True
    kernel_init: Callable = normal_init

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
        y = conv2d(x, kernel, self.stride, self.padding)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


class BatchNorm(nn.Module):
    """`nn.BatchNorm2d` / `SynchronizedBatchNorm2d` (eps 1e-5, momentum 0.1) over the last axis.

    train=False: (x - running_mean) / sqrt(running_var + eps) [* weight + bias].
    train=True: batch statistics (biased variance) normalise; the running statistics move by
    momentum 0.1 toward the batch mean and the UNBIASED batch variance (PyTorch's rule, also
    sync_batchnorm's _compute_mean_std), so they need mutable=['batch_stats'].
    Under a batch-sharded jit the batch statistics are global (what SyncBN intends).
    """

    affine: bool = True
    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPS
    scale_init: Callable = _ones_normal()  # init_weights: N(1, 0.02); nn.initializers.ones = PyTorch's default

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c = x.shape[-1]
        mean, var = batch_statistics(self, x, train, self.momentum)
        y = (x - mean) * lax.rsqrt(var + self.epsilon)
        if self.affine:
            y = y * self.param("scale", self.scale_init, (c,)) + self.param("bias", nn.initializers.zeros, (c,))
        return y


def positional_norm(x: jax.Array, eps: float = BN_EPS) -> jax.Array:
    """spade.py:PositionalNorm2d on NHWC: per position over channels, unbiased variance (C - 1)."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True, ddof=1)
    return (x - mean) / jnp.sqrt(var + eps)


class SNConv2d(nn.Module):
    """`spectral_norm(nn.Conv2d(in, out, k, stride=s, padding=p, bias=...))` on NHWC.

    params: kernel (= weight_orig, HWIO), bias; spectral_norm collection: u (out,), v (in*k*k,).
    `update` = torch train mode: one power iteration before the weight is normalised (needs
    mutable=['spectral_norm']); u, v get no gradient (torch: no_grad), sigma is differentiable in W.
    """

    features: int
    kernel_size: int = 3
    padding: int = 1
    use_bias: bool = True
    stride: int = 1
    eps: float = SN_EPS

    @nn.compact
    def __call__(self, x: jax.Array, update: bool = False) -> jax.Array:
        k, cin = self.kernel_size, x.shape[-1]
        kernel = self.param("kernel", normal_init, (k, k, cin, self.features))
        sigma = spectral_norm_vectors(self, kernel, update, self.eps)
        y = conv2d(x, kernel / sigma, self.stride, self.padding)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


class SPADE(nn.Module):
    """spade.py:SPADE('spade<norm>3x3', C, label_nc): out = norm(x) * (1 + gamma) + beta.

    norm: 'batch' (the original's 'syncbatch') or 'position'. Submodule names follow the state_dict:
    param_free_norm (batch only; running stats, no affine), mlp_shared (conv + ReLU), mlp_gamma, mlp_beta.
    The segmap may have any size: it is resized to x's with PyTorch's nearest rule first.
    """

    norm: str
    hidden: int = SPADE_HIDDEN
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, segmap: jax.Array, train: bool = False) -> jax.Array:
        if self.norm == "batch":
            normalized = BatchNorm(affine=False, name="param_free_norm")(x, train)
        elif self.norm == "position":
            normalized = positional_norm(x)
        else:
            raise ValueError(f"SPADE.norm must be 'batch' or 'position', got {self.norm!r}")
        if segmap.ndim != 4 or segmap.shape[0] != x.shape[0]:
            raise ValueError(f"SPADE({self.name}): segmap must be (B, H, W, C) with B = {x.shape[0]}, "
                             f"got {segmap.shape}")
        seg = nearest_resize(segmap, x.shape[1:3])
        k, p = self.kernel_size, self.kernel_size // 2
        actv = nn.relu(Conv2d(self.hidden, k, padding=p, name="mlp_shared")(seg))
        gamma = Conv2d(x.shape[-1], k, padding=p, name="mlp_gamma")(actv)
        beta = Conv2d(x.shape[-1], k, padding=p, name="mlp_beta")(actv)
        return normalized * (1 + gamma) + beta


class SPADEResnetBlock(nn.Module):
    """model.py:SPDNormResnetBlock(fin, fout, semantic_nc_low, semantic_nc_high,
    norm_G='spectralspadesyncbatch3x3'), with fin = x's channels.

    identity_skip=False: TSGL_MEDFE (h + low); True: TSGL_Lama (h + low + x, needs fout == fin).
    seg_local: the local residual structure (the 'position' SPADE norm_s); seg_global: the structure
    feature map (the two 'batch' SPADEs norm_0, norm_1). `train`: batch statistics in norm_0/norm_1 and
    one spectral-norm power iteration per conv (the original's train mode).
    """

    features: Optional[int] = None  # fout; None = fin (both TSGL generators use fin = fout)
    identity_skip: bool = False
    hidden: int = SPADE_HIDDEN

    @nn.compact
    def __call__(self, x: jax.Array, seg_local: jax.Array, seg_global: jax.Array, train: bool = False):
        fin = x.shape[-1]
        fout = fin if self.features is None else self.features
        fmiddle = min(fin, fout)
        if self.identity_skip and fout != fin:
            raise ValueError(f"SPADEResnetBlock({self.name}): h + low + x needs fout == fin, got {fout} != {fin}")
        act = lambda t: nn.leaky_relu(t, LRELU_SLOPE)  # noqa: E731
        low = SNConv2d(fout, name="conv_s")(
            act(SPADE("position", self.hidden, name="norm_s")(x, seg_local)), update=train)
        h = SNConv2d(fmiddle, name="conv_0")(
            act(SPADE("batch", self.hidden, name="norm_0")(x, seg_global, train)), update=train)
        h = SNConv2d(fout, name="conv_1")(
            act(SPADE("batch", self.hidden, name="norm_1")(h, seg_global, train)), update=train)
        out = h + low
        return out + x if self.identity_skip else out
