"""TSGL's 256x256 generator (the model behind the paper's main tables), NHWC, Flax Linen:
TSGL_MEDFE/test/model.py:Generator of htyjers/ConvInpaint-TSGL@e9f6438 (with its
pconv.py, trans.py, spade.py, pcconv_cross.py, util/util.py), following the CODE where it differs from the paper:

    structure encoder  5 x PartialConv2d(multi-channel) + BN + ReLU on cat(E*M, Gray*M, M)  -> S1..S5
    texture encoder    MAT partial-conv head on cat(I*M, T*M, M) (A @ H, B @ H/2), then 4 MAT-style
                       window-transformer stages (PatchMerging + Swin blocks without residual + partial
                       conv + skip), depths (2, 2, 6, 6) (the paper says 2, 2, 6, 2), 4 heads, window 8,
                       no LayerNorm; q, k from L2-normalised tokens; tau = -100 added AFTER the 1/sqrt(d)
                       scaling to logits of invalid keys; stage 5 gets no mask (no tau, no partial ratio)
    reconstruction     L_k = SPADEResnetBlock(h + low, no identity)(T_k, R_k, S_k) with the local residual
                       R_k = bilinear_align_corners(L_{k-1} - up2(T_k), size(S_k)) (R_1 from A - up2(B))
    projections        F_k = ReLU(conv1x1(L_k)); F6 = ReLU(conv3x3 s2(cat(bilinear_ac(F1..F4 -> F5 size), F5)))
    balance module     MEDFE's cross-layer balance (pcconv_cross.py:PCconv): its feature mask is always 1
                       (cal_feat_mask thresholds an average of the hole map at > 1); the partial convs divide
                       by conv(mask, mask_conv) with the checkpoint's RANDOM frozen mask_conv weights; SE
                       channel equaliser; Gaussian (sigma 1.5 over the whole map) and range equalisers with
                       softmax over POSITIONS and the (B, HW, C) -> (B, C, H, W) row-major reshape "scramble"
    decoder            6 x (ReLU, ConvTranspose k4 s2 p1, BN | tanh) U-Net on the balance module's outputs

Training-only (`with_structure_decoder=True`): the structure decoder D_S (en_high_6/7, de_high_7..0) whose
sigmoid edge prediction feeds the training loss.

Sizes. The original is hard-wired to 256x256 (fixed resize targets, a 32x32 Gaussian table and reshapes).
Here those sizes are derived from the input (H/2, H/4, H/8, a (H/8 x W/8) table), which reproduces the
original exactly at 256x256; any H, W that are multiples of 64 (128 with the structure decoder) run, with
Swin windows min(8, map size) and shifts only where the map exceeds the window, as the original decides
from its input_resolution. Widths: `cnum` (64) and `tdim` (180); the balance module's inner widths are the
full model's scaled by cnum/64 (inner 4*cnum, fused 8*cnum, SE hidden 8*cnum // 16), as the reduced fixture
builds them.

Library conventions: NHWC; mask (B, H, W, 1) with 1 = known (the original's M); image and texture (RTV)
RGB in [-1, 1]; edge {0, 1}; gray [0, 1] (fdm_jax.tsgl.structure, wraparound=True to match the released
checkpoints). Inputs need not be pre-multiplied by the mask: the model does it. Output: tanh in [-1, 1];
the original composites image*M + out*(1-M).
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fdm_jax.nn.layers import ConvTranspose2d
from fdm_jax.nn.resize import resize_bilinear, upsample_nearest2x
from fdm_jax.tsgl.spade import (BN_EPS, LRELU_SLOPE, SPADE_HIDDEN, BatchNorm, Conv2d, SPADEResnetBlock,
                                  conv2d, normal_init)

SQRT2 = np.float32(np.sqrt(2.0))  # bias_act.activation_funcs['lrelu'].def_gain
MAT_LRELU = 0.2  # bias_act 'lrelu' default alpha
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)  # trans.py Conv2dLayer(resample_filter=[1, 3, 3, 1])
TAU = -100.0  # trans.py WindowAttention: masked_fill(mask == 0, float(-100.0)), after the 1/sqrt(d) scaling
PARTIAL_EPS = 1e-8  # pconv.py / trans.py: slide_winsize / (update_mask + 1e-8)
GAUSS_SIGMA = 1.5  # pcconv_cross.py BASE: util.gussin(1.5)
SE_REDUCTION = 16  # pcconv_cross.py BASE: SELayer(inner_nc, 16)
CNUM, TDIM = 64, 180  # model.py Generator.__init__
DEPTHS = (2, 2, 6, 6)  # model.py: depths = [2, 2, 6, 6] (paper: {2, 2, 6, 2})
NUM_HEADS = 4  # model.py: num_heads = 4
WINDOW_SIZES = (8, 8, 8, 8)  # model.py: window_sizes = [8, 8, 8, 8]
MLP_RATIO = 2.0  # trans.py BasicLayer(mlp_ratio=2.) default


def lrelu(x, slope=LRELU_SLOPE):
    return nn.leaky_relu(x, slope)


def instance_norm(x: jax.Array, eps: float = BN_EPS) -> jax.Array:
    """nn.InstanceNorm2d statistics (per image and channel over H, W; biased variance)."""
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps)


# ------------------------------------------------------------------------------------ partial convs

class PartialConv2d(nn.Module):
    """pconv.py:PartialConv2d(multi_channel=True, bias=False): out = conv(x*m) * (Ci*k^2 / (U + 1e-8)) *
    clamp(U, 0, 1), U = conv(m, ones(Co, Ci, k, k)); returns (out, clamp(U, 0, 1) on Co channels).

    U is the same for every output channel, so it is computed once with a one-output ones kernel (sums of
    0/1 values: exact in float32, identical to the original's Co-channel convolution)."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, m: jax.Array):
        k, cin = self.kernel_size, x.shape[-1]
        if m.shape != x.shape:
            raise ValueError(f"PartialConv2d({self.name}): mask shape {m.shape} != input shape {x.shape} "
                             "(multi-channel mask)")
        kernel = self.param("kernel", normal_init, (k, k, cin, self.features))
        raw = conv2d(x * m, kernel, self.stride, self.padding)
        m = lax.stop_gradient(m)
        u = conv2d(m, jnp.ones((k, k, cin, 1), m.dtype), self.stride, self.padding)
        ratio = np.float32(cin * k * k) / (u + np.float32(PARTIAL_EPS))
        update = jnp.clip(u, 0, 1)
        out = raw * (ratio * update)
        return out, jnp.broadcast_to(update, out.shape)


class PConvBNActiv(nn.Module):
    """pconv.py:PConvBNActiv (bias=False): PartialConv2d -> [BatchNorm] -> ReLU | LeakyReLU(0.2)."""

    features: int
    kernel_size: int = 3
    stride: int = 1
    padding: int = 1
    bn: bool = True
    activation: str = "relu"

    @nn.compact
    def __call__(self, x, m, train: bool = False):
        x, m = PartialConv2d(self.features, self.kernel_size, self.stride, self.padding, name="conv")(x, m)
        if self.bn:
            x = BatchNorm(name="bn")(x, train)
        x = nn.relu(x) if self.activation == "relu" else lrelu(x)
        return x, m


# ------------------------------------------------------------------------------------ MAT layers

def _fir_kernel(channels: int) -> jnp.ndarray:
    """upfirdn2d.setup_filter([1, 3, 3, 1]): outer product / sum (= /64), depthwise HWIO (4, 4, 1, C)."""
    f = np.outer(FIR_TAPS, FIR_TAPS).astype(np.float32)
    f = f / f.sum(dtype=np.float32)
    return jnp.asarray(np.broadcast_to(f[:, :, None, None], (4, 4, 1, channels)).copy())


class MATConv2d(nn.Module):
    """trans.py:Conv2dLayer(activation='lrelu' | 'linear', up=1, down=1|2): the stored weight is unscaled,
    w = weight / sqrt(Ci*k^2) (equalised learning rate, kept at run time so training matches);
    down=2 is conv2d_resample: zero-pad k//2 + 1, the [1,3,3,1] FIR (depthwise), then a stride-2 conv;
    then bias_act: lrelu(y + b, 0.2) * sqrt(2) (or y + b)."""

    features: int
    kernel_size: int = 3
    down: int = 1
    activation: str = "lrelu"

    @nn.compact
    def __call__(self, x):
        k, cin = self.kernel_size, x.shape[-1]
        weight = self.param("kernel", normal_init, (k, k, cin, self.features))  # init_weights: N(0, 0.02)
        w = weight * np.float32(1.0 / np.sqrt(cin * k * k))
        if self.down == 1:
            y = conv2d(x, w, 1, k // 2)
        elif self.down == 2:
            p = k // 2 + 1  # padding k//2 plus (fw - down + 1)//2 = (fw - down)//2 = 1 for the 4-tap filter
            x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
            x = conv2d(x, _fir_kernel(cin), 1, 0, groups=cin)
            y = conv2d(x, w, 2, 0)
        else:
            raise ValueError(f"MATConv2d({self.name}): down must be 1 or 2, got {self.down}")
        y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        if self.activation == "lrelu":
            return nn.leaky_relu(y, MAT_LRELU) * SQRT2
        if self.activation == "linear":
            return y
        raise ValueError(f"MATConv2d({self.name}): activation must be 'lrelu' or 'linear'")


class MATConv2dPartial(nn.Module):
    """trans.py:Conv2dLayerPartial: y = Conv2dLayer(x) (x NOT multiplied by the mask); with a 1-channel mask
    m: y *= k^2 / (U + 1e-8) * clamp(U, 0, 1), U = conv(m, ones(1, 1, k, k), stride=down, pad=k//2);
    returns (y, clamp(U, 0, 1)); with m None returns (y, None)."""

    features: int
    kernel_size: int = 3
    down: int = 1

    @nn.compact
    def __call__(self, x, m: Optional[jax.Array] = None):
        k = self.kernel_size
        y = MATConv2d(self.features, k, self.down, "lrelu", name="conv")(x)
        if m is None:
            return y, None
        m = lax.stop_gradient(m)
        u = conv2d(m, jnp.ones((k, k, 1, 1), m.dtype), self.down, k // 2)
        ratio = np.float32(k * k) / (u + np.float32(PARTIAL_EPS))
        update = jnp.clip(u, 0, 1)
        return y * (ratio * update), update


class FullyConnected(nn.Module):
    """trans.py:FullyConnectedLayer: y = x @ (W / sqrt(in)).T + b, [lrelu(., 0.2) * sqrt(2)].
    W is stored unscaled (kernel (in, out) = W.T); init torch.randn (it escapes init_weights), bias 0."""

    features: int
    activation: str = "linear"

    @nn.compact
    def __call__(self, x):
        cin = x.shape[-1]
        w = self.param("kernel", nn.initializers.normal(1.0), (cin, self.features))
        y = jnp.dot(x, w * np.float32(1.0 / np.sqrt(cin))) + self.param("bias", nn.initializers.zeros,
                                                                          (self.features,))
        return nn.leaky_relu(y, MAT_LRELU) * SQRT2 if self.activation == "lrelu" else y


def _safe_norm(x: jax.Array) -> jax.Array:
    """||x||_2 over the last axis with torch's gradient 0 at x = 0 (jnp.linalg.norm's is NaN there).
    Zero tokens are common: MAT's partial convs zero every fully masked window."""
    sq = jnp.sum(x * x, axis=-1, keepdims=True)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def window_partition(x: jax.Array, ws: int) -> jax.Array:
    """(B, H, W, C) -> (B, nW, ws*ws, C), windows row-major (trans.py window_partition, per image)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // ws, ws, w // ws, ws, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // ws) * (w // ws), ws * ws, c)


def window_reverse(x: jax.Array, ws: int, h: int, w: int) -> jax.Array:
    b, _, _, c = x.shape
    x = x.reshape(b, h // ws, w // ws, ws, ws, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shift_attention_mask(h: int, w: int, ws: int, shift: int) -> np.ndarray:
    """SwinTransformerBlock.calculate_mask: (nW, N, N) with -100 between tokens of different regions."""
    img = np.zeros((1, h, w, 1), np.float32)
    slices = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    cnt = 0
    for hs in slices:
        for wsl in slices:
            img[:, hs, wsl, :] = cnt
            cnt += 1
    win = window_partition(img, ws)[0, :, :, 0]  # (nW, N)
    diff = win[:, None, :] - win[:, :, None]
    return np.where(diff != 0, np.float32(-100.0), np.float32(0.0)).astype(np.float32)


class WindowAttention(nn.Module):
    """trans.py:WindowAttention (no relative position bias; q, k from L2-normalised tokens, v from x).

    x (B, nW, N, C); key mask (B, nW, N, 1) or None. logits = q k^T * d^-0.5 [+ shift mask]
    [+ tau on invalid keys: -100 where mask == 0, 0 where == 1]; a window with any valid token becomes
    all-valid in the returned mask. Submodules q, k, v, proj."""

    num_heads: int

    @nn.compact
    def __call__(self, x, mask_windows=None, shift_mask=None):
        b, nw, n, c = x.shape
        heads = self.num_heads
        if c % heads:
            raise ValueError(f"WindowAttention: {c} channels not divisible by {heads} heads")
        d = c // heads
        norm_x = x / jnp.maximum(_safe_norm(x), 1e-12)  # F.normalize(p=2, dim=-1)
        q = FullyConnected(c, name="q")(norm_x).reshape(b, nw, n, heads, d)
        k = FullyConnected(c, name="k")(norm_x).reshape(b, nw, n, heads, d)
        v = FullyConnected(c, name="v")(x).reshape(b, nw, n, heads, d)
        attn = jnp.einsum("bwnhd,bwmhd->bwhnm", q, k) * np.float32(d ** -0.5)
        if shift_mask is not None:
            attn = attn + shift_mask[None, :, None]
        new_mask = None
        if mask_windows is not None:
            mw = mask_windows[..., 0]
            tau = jnp.where(mw == 0, np.float32(TAU), jnp.where(mw == 1, np.float32(0), mw))
            attn = attn + tau[:, :, None, None, :]
            new_mask = jnp.broadcast_to(jnp.clip(jnp.sum(mask_windows, axis=2, keepdims=True), 0, 1),
                                        mask_windows.shape)
        attn = jax.nn.softmax(attn, axis=-1)
        out = jnp.einsum("bwhnm,bwmhd->bwnhd", attn, v).reshape(b, nw, n, c)
        return FullyConnected(c, name="proj")(out), new_mask


class Mlp(nn.Module):
    """trans.py:Mlp: fc1 (lrelu) -> fc2 (linear)."""

    hidden: int

    @nn.compact
    def __call__(self, x):
        return FullyConnected(x.shape[-1], name="fc2")(FullyConnected(self.hidden, "lrelu", name="fc1")(x))


class SwinBlock(nn.Module):
    """trans.py:SwinTransformerBlock as MAT uses it, on a feature map (B, H, W, C) and mask (B, H, W, 1):
    [roll by -shift] -> windows -> attention -> reverse [roll back]; NO residual: the output is
    mlp(fuse_lrelu(cat[x, attention(x)])). A map no larger than the window is one unshifted window."""

    num_heads: int
    window_size: int
    shifted: bool
    mlp_ratio: float = MLP_RATIO

    @nn.compact
    def __call__(self, x, mask=None):
        b, h, w, c = x.shape
        ws, shift = self.window_size, (self.window_size // 2 if self.shifted else 0)
        if min(h, w) <= ws:
            ws, shift = min(h, w), 0
        if h % ws or w % ws:
            raise ValueError(f"SwinBlock({self.name}): a {h}x{w} map is not a whole number of {ws}x{ws} windows")
        shortcut = x
        if shift:
            x = jnp.roll(x, (-shift, -shift), axis=(1, 2))
            if mask is not None:
                mask = jnp.roll(mask, (-shift, -shift), axis=(1, 2))
        shift_mask = jnp.asarray(shift_attention_mask(h, w, ws, shift)) if shift else None
        mw = None if mask is None else window_partition(mask, ws)
        out, mw = WindowAttention(self.num_heads, name="attn")(window_partition(x, ws), mw, shift_mask)
        x = window_reverse(out, ws, h, w)
        if mask is not None:
            mask = window_reverse(mw, ws, h, w)
        if shift:
            x = jnp.roll(x, (shift, shift), axis=(1, 2))
            if mask is not None:
                mask = jnp.roll(mask, (shift, shift), axis=(1, 2))
        x = FullyConnected(c, "lrelu", name="fuse")(jnp.concatenate([shortcut, x], axis=-1))
        return Mlp(int(c * self.mlp_ratio), name="mlp")(x), mask


class PatchMerging(nn.Module):
    """trans.py:PatchMerging: Conv2dLayerPartial(k3, lrelu, down=2) (state_dict `downsample.conv.conv`)."""

    features: int

    @nn.compact
    def __call__(self, x, mask=None):
        return MATConv2dPartial(self.features, 3, down=2, name="conv")(x, mask)


class BasicLayer(nn.Module):
    """trans.py:BasicLayer with downsample: PatchMerging -> identity -> Swin blocks (odd ones shifted)
    -> Conv2dLayerPartial(k3, lrelu) -> + identity. Returns (features, mask or None)."""

    depth: int
    num_heads: int
    window_size: int
    mlp_ratio: float = MLP_RATIO

    @nn.compact
    def __call__(self, x, mask=None):
        c = x.shape[-1]
        x, mask = PatchMerging(c, name="downsample")(x, mask)
        identity = x
        for i in range(self.depth):
            x, mask = SwinBlock(self.num_heads, self.window_size, i % 2 == 1, self.mlp_ratio,
                                name=f"blocks_{i}")(x, mask)
        x, mask = MATConv2dPartial(c, 3, name="conv")(x, mask)
        return x + identity, mask


# ------------------------------------------------------------------------------------ balance module

class InstanceNorm(nn.Module):
    """nn.InstanceNorm2d(affine=True): weight 1, bias 0 at init (not touched by init_weights)."""

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        return (instance_norm(x) * self.param("scale", nn.initializers.ones, (c,))
                + self.param("bias", nn.initializers.zeros, (c,)))


class ConvDown(nn.Module):
    """pcconv_cross.py:ConvDown as its constructor resolves: a chain of conv (no bias) -> IN (no affine)
    -> [LeakyReLU 0.2]. `layers` = ((out_channels, activation), ...); the convs are named model_<i> by
    their nn.Sequential index (3 per activated layer, 2 otherwise)."""

    layers: Sequence[tuple[int, bool]]
    kernel_size: int
    stride: int = 1
    padding: int = 0

    @nn.compact
    def __call__(self, x):
        idx = 0
        for feats, act in self.layers:
            x = instance_norm(Conv2d(feats, self.kernel_size, self.stride, self.padding, use_bias=False,
                                     name=f"model_{idx}")(x))
            if act:
                x = lrelu(x)
            idx += 3 if act else 2
        return x


class ConvUp(nn.Module):
    """pcconv_cross.py:ConvUp: bilinear (align_corners=False) to `size` -> conv1x1 (no bias) -> IN -> LReLU."""

    features: int

    @nn.compact
    def __call__(self, x, size):
        x = resize_bilinear(x, size, align_corners=False)
        return lrelu(instance_norm(Conv2d(self.features, 1, use_bias=False, name="conv")(x)))


class _FrozenKernel(nn.Module):
    """A conv kernel that is loaded but never trained (pcconv_cross.py PartialConv.mask_conv: requires_grad
    False, used under no_grad): stop_gradient makes its gradient exactly 0."""

    shape: tuple

    @nn.compact
    def __call__(self):
        return lax.stop_gradient(self.param("kernel", normal_init, self.shape))


class BalancePartialConv(nn.Module):
    """pcconv_cross.py:PartialConv(bias=False): out = conv(x*m, W) / S, S = conv(m, W_mask), with S == 0
    set to 1 and out set to 0 there; new mask = (S != 0). W_mask (`mask_conv`) was meant to be ones but
    init_weights overwrote it with N(0, 0.02) in every released checkpoint: it is loaded, not assumed."""

    features: int
    kernel_size: int

    @nn.compact
    def __call__(self, x, m):
        k, p = self.kernel_size, self.kernel_size // 2
        out = Conv2d(self.features, k, padding=p, use_bias=False, name="input_conv")(x * m)
        w_mask = _FrozenKernel((k, k, m.shape[-1], self.features), name="mask_conv")()
        s = conv2d(lax.stop_gradient(m), w_mask, 1, p)
        holes = s == 0
        out = jnp.where(holes, 0.0, out / jnp.where(holes, 1.0, s))
        return out, jnp.where(holes, 0.0, 1.0).astype(out.dtype)


class PCBActiv(nn.Module):
    """pcconv_cross.py:PCBActiv(innorm=True): PartialConv -> InstanceNorm(affine) -> LeakyReLU(0.2)."""

    features: int
    kernel_size: int

    @nn.compact
    def __call__(self, x, m):
        x, m = BalancePartialConv(self.features, self.kernel_size, name="conv")(x, m)
        return lrelu(InstanceNorm(name="bn")(x)), m


def gaussian_table(h: int, w: int, sigma: float = GAUSS_SIGMA) -> np.ndarray:
    """util.gussin(sigma) for an h x w map: K[p, q] = exp(-|p - q|^2 / (2 sigma^2)) / (2 pi sigma^2),
    each row normalised to sum 1, in float64, then float32 (BASE: .double() ... .float())."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    py, px = yy.reshape(-1), xx.reshape(-1)
    d2 = (py[:, None] - py[None, :]) ** 2 + (px[:, None] - px[None, :]) ** 2
    k = np.exp(-d2 / (2 * sigma * sigma)) / (2 * np.pi * sigma * sigma)
    return (k / k.sum(axis=1, keepdims=True)).astype(np.float32)


def nchw_view(x: jax.Array, h: int, w: int) -> jax.Array:
    """torch `.view(b, c, h, w)` of a contiguous (b, h*w, c) tensor, returned as NHWC: a row-major
    reinterpretation that scrambles channels and positions (inherited from MEDFE; reproduced)."""
    b, n, c = x.shape
    return x.reshape(b, c, h, w).transpose(0, 2, 3, 1)


class Equalizer(nn.Module):
    """pcconv_cross.py:BASE: SE channel equaliser (Eq. 9), then the Gaussian (Eq. 10) and range (Eq. 11)
    spatial equalisers, concatenated and fused by conv1x1 -> IN -> LReLU (Eq. 12).

    Gaussian: G[b, p, c] = sum_q K[p, q] Y[b, q, c] over the whole map. Range: A[b, p, o] =
    mean_c sigmoid(Y)[p] * sigmoid(Y)_zero-padded[p + o] over the 3x3 offsets o, softmax over the
    POSITIONS p (the original's dim 1 of (B, HW, 9)), R[b, p, c] = sum_o A[b, p, o] Y_zero-padded[p + o, c].
    Both are (B, HW, C) tensors that the original `.view`s as (B, C, H, W). Submodules: se_fc0, se_fc2
    (model.0.fc.0 / fc.2), down (down.0)."""

    sigma: float = GAUSS_SIGMA

    @nn.compact
    def __call__(self, x):
        b, h, w, c = x.shape
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = nn.relu(Conv2d(c // SE_REDUCTION, 1, name="se_fc0")(s))
        y = x * jax.nn.sigmoid(Conv2d(c, 1, name="se_fc2")(s))
        yf = y.reshape(b, h * w, c)
        g = jnp.einsum("pq,bqc->bpc", jnp.asarray(gaussian_table(h, w, self.sigma)), yf)
        sg = jax.nn.sigmoid(y)
        pad = ((0, 0), (1, 1), (1, 1), (0, 0))
        sg_p, y_p = jnp.pad(sg, pad), jnp.pad(y, pad)
        offsets = [(dy, dx) for dy in range(3) for dx in range(3)]
        a = jnp.stack([jnp.mean(sg * sg_p[:, dy:dy + h, dx:dx + w], axis=-1) for dy, dx in offsets], axis=-1)
        a = jax.nn.softmax(a.reshape(b, h * w, 9), axis=1)
        r = sum(a[:, :, i, None] * y_p[:, dy:dy + h, dx:dx + w].reshape(b, h * w, c)
                for i, (dy, dx) in enumerate(offsets))
        z = jnp.concatenate([nchw_view(g, h, w), nchw_view(r, h, w)], axis=-1)
        return lrelu(instance_norm(Conv2d(c, 1, use_bias=False, name="down")(z)))


def feature_mask(hole: jax.Array, layers: int = 3, threshold: float = 1.0) -> jax.Array:
    """util.cal_feat_mask(1 - M, 3, 1): `layers` x conv(k4 s2 p1, weights 1/16), then > threshold.
    For a hole map in [0, 1] the average never exceeds 1, so this is always 0 (as pcconv_cross.py calls it)."""
    k = jnp.full((4, 4, 1, 1), 1.0 / 16.0, hole.dtype)
    for _ in range(layers):
        hole = conv2d(hole, k, 2, 1)
    return (hole > threshold).astype(hole.dtype)


class CrossLayerBalance(nn.Module):
    """pcconv_cross.py:PCconv at width cnum (64 in the original): F1..F6 and the hole map -> O1..O6.

    Shared modules as in the original: `up` serves F4, F5, F6; `down` reduces all four concatenations;
    cov_3/5/7 (5 partial convs each) serve both the early (texture) and late (structure) groups.
    Sows `fuse_out` (the fused map before equalisation) and `base_out` (the equaliser output)."""

    cnum: int

    def setup(self):
        c = self.cnum
        inner, fused = 4 * c, 8 * c
        self.down_128 = ConvDown(((2 * c, True), (inner, True)), 4, 2, 1)
        self.down_64 = ConvDown(((inner, True),), 4, 2, 1)
        self.down_32 = ConvDown(((inner, True),), 1)
        self.down_16 = ConvDown(((fused, False),), 4, 2, 1)
        self.down_8 = ConvDown(((fused, True), (fused, False)), 4, 2, 1)
        self.down_4 = ConvDown(((fused, True), (fused, True), (fused, False)), 4, 2, 1)
        self.down = ConvDown(((inner, True),), 1)
        self.fuse = ConvDown(((fused, True),), 1)
        self.up = ConvUp(inner)
        self.up_128 = ConvUp(c)
        self.up_64 = ConvUp(2 * c)
        self.up_32 = ConvUp(inner)
        self.base = Equalizer()
        self.cov_3 = [PCBActiv(inner, 3, name=f"cov_3_{i}") for i in range(5)]
        self.cov_5 = [PCBActiv(inner, 5, name=f"cov_5_{i}") for i in range(5)]
        self.cov_7 = [PCBActiv(inner, 7, name=f"cov_7_{i}") for i in range(5)]

    @staticmethod
    def _stream(layers, x, m):
        for layer in layers:
            x, m = layer(x, m)
        return x

    def __call__(self, feats: Sequence[jax.Array], hole: jax.Array):
        f1, f2, f3, f4, f5, f6 = feats
        b, h, w, _ = f3.shape
        mask1 = jnp.broadcast_to(1.0 - feature_mask(hole), (b, h, w, 4 * self.cnum))
        x1, x2, x3, x4, x5, x6 = (lrelu(f) for f in feats)
        x1, x2, x3 = self.down_128(x1), self.down_64(x2), self.down_32(x3)
        x4, x5, x6 = (self.up(x, (h, w)) for x in (x4, x5, x6))
        late = self.down(jnp.concatenate([x4, x5, x6], axis=-1))
        early = self.down(jnp.concatenate([x1, x2, x3], axis=-1))

        def streams(x):
            return self.down(jnp.concatenate([self._stream(self.cov_3, x, mask1), self._stream(self.cov_5, x, mask1),
                                              self._stream(self.cov_7, x, mask1)], axis=-1))

        early_fi, late_fi = streams(early), streams(late)
        fused = self.fuse(jnp.concatenate([late_fi, early_fi], axis=-1))  # late (structure) first
        self.sow("intermediates", "fuse_out", fused)
        z = self.base(fused)
        self.sow("intermediates", "base_out", z)
        return (self.up_128(z, f1.shape[1:3]) + f1, self.up_64(z, f2.shape[1:3]) + f2,
                self.up_32(z, f3.shape[1:3]) + f3, self.down_16(z) + f4, self.down_8(z) + f5, self.down_4(z) + f6)


# ------------------------------------------------------------------------------------ decoders

class DecoderBlock(nn.Module):
    """model.py:UnetSkipConnectionDBlock: ReLU -> ConvTranspose2d(k4 s2 p1) -> BatchNorm (tanh if outermost)."""

    features: int
    outermost: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        # nn.ConvTranspose2d(k4, s2, p1) with init_weights' N(0, 0.02) weights and zero bias
        up = ConvTranspose2d(self.features, kernel_init=normal_init, bias_init=nn.initializers.zeros, name="conv")
        y = up(nn.relu(x))
        return jnp.tanh(y) if self.outermost else BatchNorm(name="bn")(y, train)


class Bottleneck(nn.Module):
    """model.py:Bottleneck(c, c) (stride 1): relu(bn1(conv1(x))) -> bn2(conv2(.)) + x -> ReLU; convs 3x3, no bias."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        c = x.shape[-1]
        y = nn.relu(BatchNorm(name="bn1")(Conv2d(c, 3, padding=1, use_bias=False, name="conv1")(x), train))
        y = BatchNorm(name="bn2")(Conv2d(c, 3, padding=1, use_bias=False, name="conv2")(y), train)
        return nn.relu(y + x)


class StructureHead(nn.Module):
    """model.py:Feature2High (training only): Bottleneck (`structure_resolver`), then conv1x1 with bias
    (`out_layer`) -> sigmoid: the edge prediction."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        y = Bottleneck(name="structure_resolver")(x, train)
        return jax.nn.sigmoid(Conv2d(1, 1, name="out_layer")(y))


# ------------------------------------------------------------------------------------ generator

class TSGLMedfeGenerator(nn.Module):
    """TSGL_MEDFE Generator (defaults = the released model: 138,331,611 test-time parameters in the original).

    Submodules (names = the original's): en_high_1..5, en_low_1_f, en_low_1_s, en_low_2..5 (BasicLayer),
    h2l_1..5, en_fusion_1..6, pc_block, Decoder_1..6, and with the structure decoder en_high_6/7,
    de_high_7..1, de_high_0. Intermediates sown (each name + "_out": Flax forbids a variable named like a
    submodule): en_high_k (+ _mask), en_low_k (+ _mask), h2l_k, en_fusion_k, pc_block/{fuse, base},
    pc_block_k (the balance module's outputs).
    """

    cnum: int = CNUM
    tdim: int = TDIM
    num_heads: int = NUM_HEADS
    depths: Sequence[int] = DEPTHS
    window_sizes: Sequence[int] = WINDOW_SIZES
    mlp_ratio: float = MLP_RATIO
    spade_hidden: int = SPADE_HIDDEN
    with_structure_decoder: bool = False

    def setup(self):
        c, t = self.cnum, self.tdim
        if len(self.depths) != 4 or len(self.window_sizes) != 4:
            raise ValueError(f"TSGLMedfeGenerator: depths and window_sizes need 4 entries (stages 2..5), got "
                             f"{tuple(self.depths)} and {tuple(self.window_sizes)}")
        if t % self.num_heads:
            raise ValueError(f"TSGLMedfeGenerator: tdim={t} must be divisible by num_heads={self.num_heads}")
        if (8 * c) // SE_REDUCTION < 1:
            raise ValueError(f"TSGLMedfeGenerator: cnum={c} leaves the balance module's SE layer no channels "
                             f"(8*cnum // 16 must be >= 1)")
        self.en_high_1 = PConvBNActiv(c, 7, 2, 3, bn=False)
        self.en_high_2 = PConvBNActiv(2 * c, 5, 2, 2)
        self.en_high_3 = PConvBNActiv(4 * c, 5, 2, 2)
        self.en_high_4 = PConvBNActiv(8 * c, 3, 2, 1)
        self.en_high_5 = PConvBNActiv(16 * c, 3, 2, 1)
        self.en_low_1_f = MATConv2dPartial(t, 3)
        self.en_low_1_s = MATConv2dPartial(t, 3, down=2)
        self.stages = [BasicLayer(d, self.num_heads, ws, self.mlp_ratio, name=f"en_low_{k + 2}")
                       for k, (d, ws) in enumerate(zip(self.depths, self.window_sizes))]
        self.h2l = [SPADEResnetBlock(identity_skip=False, hidden=self.spade_hidden, name=f"h2l_{k}")
                    for k in range(1, 6)]
        self.fusion = [Conv2d(f, 1, name=f"en_fusion_{k + 1}") for k, f in enumerate((c, 2 * c, 4 * c, 8 * c, 8 * c))]
        self.en_fusion_6 = Conv2d(8 * c, 3, stride=2, padding=1)
        self.pc_block = CrossLayerBalance(c)
        self.decoders = [DecoderBlock(f, name=f"Decoder_{j + 1}")
                         for j, f in enumerate((8 * c, 8 * c, 4 * c, 2 * c, c))] + [
            DecoderBlock(3, outermost=True, name="Decoder_6")]
        if self.with_structure_decoder:
            self.en_high_6 = PConvBNActiv(16 * c, 3, 2, 1)
            self.en_high_7 = PConvBNActiv(16 * c, 3, 2, 1)
            widths = {7: 16 * c, 6: 16 * c, 5: 16 * c, 4: 8 * c, 3: 4 * c, 2: 2 * c, 1: c}
            self.de_high = {k: PConvBNActiv(f, 3, 1, 1, activation="leaky", name=f"de_high_{k}")
                            for k, f in widths.items()}
            self.de_high_0 = StructureHead()

    @property
    def modulo(self) -> int:
        """H and W must be multiples of this (128 with the structure decoder's two extra levels)."""
        return 128 if self.with_structure_decoder else 64

    def _check(self, image, edge, texture, gray, mask):
        if image.ndim != 4 or image.shape[-1] != 3:
            raise ValueError(f"image: expected (B, H, W, 3), got shape {image.shape}")
        for name, a, ch in (("edge", edge, 1), ("texture", texture, 3), ("gray", gray, 1), ("mask", mask, 1)):
            if a.shape != image.shape[:3] + (ch,):
                raise ValueError(f"{name}: expected shape {image.shape[:3] + (ch,)}, got {a.shape}")
        h, w = image.shape[1:3]
        if h % self.modulo or w % self.modulo:
            raise ValueError(f"image: H and W must be multiples of {self.modulo} (the original is fixed at "
                             f"256x256), got {h}x{w}")

    def __call__(self, image, edge, texture, gray, mask, train: bool = False, return_structure: bool = False):
        """G(image*M, high*M, low*M, gray*M, M) -> tanh image; with return_structure (needs
        with_structure_decoder) also the training-only edge prediction (B, H, W, 1) in (0, 1)."""
        self._check(image, edge, texture, gray, mask)
        if return_structure and not self.with_structure_decoder:
            raise ValueError("return_structure=True needs TSGLMedfeGenerator(with_structure_decoder=True)")
        m = mask
        sow = self.sow

        # structure encoder: S1..S5
        x, xm = jnp.concatenate([edge * m, gray * m, m], -1), jnp.concatenate([m, m, m], -1)
        s = []
        for k, layer in enumerate((self.en_high_1, self.en_high_2, self.en_high_3, self.en_high_4, self.en_high_5)):
            x, xm = layer(x, xm, train)
            sow("intermediates", f"en_high_{k + 1}_out", x)
            sow("intermediates", f"en_high_{k + 1}_mask_out", xm)
            s.append(x)

        # texture encoder with the SPADE reconstruction after every level
        a, ma = self.en_low_1_f(jnp.concatenate([image * m, texture * m, m], -1), m)
        t, tm = self.en_low_1_s(a, ma)
        prev = self.h2l[0](t, resize_bilinear(a - upsample_nearest2x(t), s[0].shape[1:3], True), s[0], train)
        levels = [prev]
        for k, stage in enumerate(self.stages):  # en_low_2..5; stage 5 gets no mask
            t, tm = stage(prev, tm if k < 3 else None)
            sow("intermediates", f"en_low_{k + 2}_out", t)
            if tm is not None:
                sow("intermediates", f"en_low_{k + 2}_mask_out", tm)
            sk = s[k + 1]
            prev = self.h2l[k + 1](t, resize_bilinear(prev - upsample_nearest2x(t), sk.shape[1:3], True), sk, train)
            sow("intermediates", f"h2l_{k + 2}_out", prev)
            levels.append(prev)

        # projections and the 6th level
        f = [nn.relu(conv(l)) for conv, l in zip(self.fusion, levels)]
        size5 = f[4].shape[1:3]
        f6_in = [resize_bilinear(fi, size5, True) for fi in f[:4]] + [f[4]]
        f.append(nn.relu(self.en_fusion_6(jnp.concatenate(f6_in, -1))))
        for k, fk in enumerate(f):
            sow("intermediates", f"en_fusion_{k + 1}_out", fk)

        o = self.pc_block(f, 1.0 - m)
        for k, ok in enumerate(o):
            sow("intermediates", f"pc_block_{k}_out", ok)
        y = self.decoders[0](o[5], train)
        for j in range(1, 6):
            y = self.decoders[j](jnp.concatenate([y, o[5 - j]], -1), train)
        if not return_structure:
            return y

        # training-only structure decoder on S5
        d, dm = self.en_high_6(s[4], xm, train)
        d, dm = self.en_high_7(d, dm, train)
        for k in range(7, 0, -1):
            d = resize_bilinear(d, (2 * d.shape[1], 2 * d.shape[2]), False)  # scale_factor 2, bilinear
            dm = upsample_nearest2x(dm)  # scale_factor 2, nearest
            d, dm = self.de_high[k](d, dm, train)
        return y, self.de_high_0(d, train)
