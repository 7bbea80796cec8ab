"""TSGL's LaMa variant ("Ours (LaMa)", 512x512), NHWC, Flax Linen: TSGL_Lama/test/model.py:
FFCResNetGenerator of htyjers/ConvInpaint-TSGL@e9f6438.

LaMa's FFC generator given two 5-level conv streams and a SPADE ResBlock after every texture level:

    structure stream  cat(E*M, Gray*M, H) -> ReflectionPad 3 + FFC_BN_ACT k7 (model_high)
                      -> 5 x FFC_BN_ACT k3 s2 (model_high_0..4; level 4 splits 1/4 local, 3/4 global)
    texture stream    cat(I*M, H)         -> ReflectionPad 3 + FFC_BN_ACT k7 (model_low, max_features ch)
                      -> 5 x FFC_BN_ACT k3 s2 on the RECONSTRUCTED previous level (model_low_0..4)
    level i           L_i = SPADEResnetBlock(h + low + x)(T_i, seg_local = L_{i-1} - up2(T_i), S_i)
                      (L_{-1} = the texture stem output; the local residual stays at 2x resolution and
                      the SPADE's nearest resize picks its even pixels; at level 4 the residual of the
                      concatenated (local, global) texture is split at max_features // 4)
    decoder           LaMa's rear: n_blocks FFC ResNet blocks, concat, 5 x (ConvT + BN + ReLU),
                      ReflectionPad 3 + conv k7 -> tanh         (self.model of the original)
    H = 1 - M is the hole map (the original's 4th argument), M = 1 on known pixels.

The FFC pieces (FFC_BN_ACT streams, the resblocks, the up path) are the project's Big-LaMa modules
(fdm_jax.lama.ffc, fdm_jax.lama.generator.FFCResNetGenerator.rear), so both generators share
one implementation of LaMa. `front`/`rear` split at the decoder input (L4_l, L4_g), like Big-LaMa's
split before its resblocks, so multiscale refinement (fdm_jax.lama.refine) runs on this model through
`front_rear(model)`.

Training-only: `with_structure_decoder=True` adds `up_high` (3 FFC resblocks + the same up path +
conv k7 -> sigmoid) on the structure level 4 (S4_l, S4_g): the edge prediction of the training loss.

Library conventions: NHWC; mask (B, H, W, 1) with 1 = known; image RGB as the caller's pipeline has it
(the original TEST pipeline feeds [0, 1], its TRAIN pipeline [-1, 1]); edge {0, 1} and gray [0, 1]
(fdm_jax.tsgl.structure). The inputs need not be pre-multiplied by the mask: the model does it (for a
binary mask, multiplying twice changes nothing). H and W must be multiples of 32.
`train=True` is the original's train mode everywhere: BatchNorm batch statistics (FFC streams, decoder,
SPADE blocks; running statistics updated as PyTorch) and the spectral-norm power iteration.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from fdm_jax.lama.ffc import FFCBnAct, reflect_pad
from fdm_jax.lama.generator import FFCResNetGenerator, FrontRear
from fdm_jax.nn.resize import upsample_nearest2x
from fdm_jax.tsgl.spade import SPADE_HIDDEN, SPADEResnetBlock

N_DOWNSAMPLING = 5  # model.py: `n_downsampling = 5` overrides the constructor argument
RESNET_RATIO = 0.75  # model.py defaults: resnet_conv_kwargs ratio_gin = ratio_gout = 0.75 (also level 4's ratio_gout)
N_STRUCTURE_BLOCKS = 3  # model.py: up_high has `for i in range(3)` FFC resblocks


class TSGLLamaGenerator(nn.Module):
    """TSGL_Lama FFCResNetGenerator(ngf, max_features, n_blocks); defaults = the released model
    (64 / 256 / 9: 34,468,035 test-time parameters in the original).

    Submodules (names = the original's): model_high, model_high_0..4, model_low, model_low_0..4,
    h2l_0_l..h2l_3_l, h2l_4_l, h2l_4_g, decoder (= self.model), [up_high].
    Intermediates sown (`intermediates`, each name + "_out": Flax forbids a variable named like a
    submodule): model_high, model_high_i (structure levels), model_low (texture stem), model_low_i
    (texture levels before their SPADE block), h2l_* (after).
    """

    ngf: int = 64
    max_features: int = 256
    n_blocks: int = 9
    spade_hidden: int = SPADE_HIDDEN
    with_structure_decoder: bool = False
    remat: bool = False  # jax.checkpoint per decoder resblock (memory only, no numerical change)

    def setup(self):
        ngf, mf = self.ngf, self.max_features
        if not 4 * ngf <= mf <= 8 * ngf or mf % 4:
            raise ValueError(f"TSGLLamaGenerator(ngf={ngf}, max_features={mf}): the original's SPADE blocks "
                             f"need 4*ngf <= max_features <= 8*ngf and max_features divisible by 4 "
                             f"(h2l_0/1 take ngf*2 / ngf*4 structure channels, h2l_2/3 take max_features)")
        n = N_DOWNSAMPLING
        self.model_high = FFCBnAct(ngf, 7, 0.0, 0.0, padding=0)
        self.highs = [FFCBnAct(min(mf, ngf * 2 ** (i + 1)), 3, 0.0, RESNET_RATIO if i == n - 1 else 0.0,
                               stride=2, padding=1, name=f"model_high_{i}") for i in range(n)]
        tex = min(mf, ngf * 2 ** n)
        self.model_low = FFCBnAct(tex, 7, 0.0, 0.0, padding=0)
        self.lows = [FFCBnAct(tex, 3, 0.0, RESNET_RATIO if i == n - 1 else 0.0, stride=2, padding=1,
                              name=f"model_low_{i}") for i in range(n)]
        spade = dict(identity_skip=True, hidden=self.spade_hidden)
        self.h2l = [SPADEResnetBlock(name=f"h2l_{i}_l", **spade) for i in range(n - 1)]
        self.h2l_4_l = SPADEResnetBlock(**spade)
        self.h2l_4_g = SPADEResnetBlock(**spade)
        rear = dict(input_nc=4, ngf=ngf, n_downsampling=n, max_features=mf, resnet_ratio_gin=RESNET_RATIO,
                    resnet_ratio_gout=RESNET_RATIO, remat=self.remat)
        self.decoder = FFCResNetGenerator(output_nc=3, n_blocks=self.n_blocks, out_activation="tanh", **rear)
        if self.with_structure_decoder:
            self.up_high = FFCResNetGenerator(output_nc=1, n_blocks=N_STRUCTURE_BLOCKS,
                                              out_activation="sigmoid", **rear)

    @property
    def modulo(self) -> int:
        """H and W must be multiples of this (five stride-2 levels)."""
        return 2 ** N_DOWNSAMPLING

    def _check(self, image, edge, gray, mask):
        if image.ndim != 4 or image.shape[-1] != 3:
            raise ValueError(f"image: expected (B, H, W, 3), got shape {image.shape}")
        want = image.shape[:3] + (1,)
        for name, a in (("edge", edge), ("gray", gray), ("mask", mask)):
            if a.shape != want:
                raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
        h, w = image.shape[1:3]
        if h % self.modulo or w % self.modulo:
            raise ValueError(f"image: H and W must be multiples of {self.modulo}, got {h}x{w}")

    def encode(self, image, edge, gray, mask, train: bool = False):
        """-> (z = (L4_l, L4_g), structure level 4 (S4_l, S4_g))."""
        self._check(image, edge, gray, mask)
        hole = 1.0 - mask
        x_high = jnp.concatenate([edge * mask, gray * mask, hole], axis=-1)  # G(image*M, high*M, gray*M, 1-M)
        x_low = jnp.concatenate([image * mask, hole], axis=-1)
        s = self.model_high((reflect_pad(x_high, 3), None), train)
        prev, _ = self.model_low((reflect_pad(x_low, 3), None), train)
        self.sow("intermediates", "model_high_out", s[0])
        self.sow("intermediates", "model_low_out", prev)
        n = N_DOWNSAMPLING
        for i in range(n - 1):
            s = self.highs[i](s, train)
            t, _ = self.lows[i]((prev, None), train)
            self.sow("intermediates", f"model_high_{i}_out", s[0])
            self.sow("intermediates", f"model_low_{i}_out", t)
            prev = self.h2l[i](t, prev - upsample_nearest2x(t), s[0], train)
            self.sow("intermediates", f"h2l_{i}_l_out", prev)
        s_l, s_g = self.highs[n - 1](s, train)
        t_l, t_g = self.lows[n - 1]((prev, None), train)
        for name, v in (("model_high_4_l_out", s_l), ("model_high_4_g_out", s_g), ("model_low_4_l_out", t_l),
                        ("model_low_4_g_out", t_g)):
            self.sow("intermediates", name, v)
        res = prev - upsample_nearest2x(jnp.concatenate([t_l, t_g], axis=-1))
        c_l = t_l.shape[-1]  # = max_features // 4: the original splits at [256 // 4, 256 * 3 // 4]
        z_l = self.h2l_4_l(t_l, res[..., :c_l], s_l, train)
        z_g = self.h2l_4_g(t_g, res[..., c_l:], s_g, train)
        self.sow("intermediates", "h2l_4_l_out", z_l)
        self.sow("intermediates", "h2l_4_g_out", z_g)
        return (z_l, z_g), (s_l, s_g)

    def front(self, image, mask, edge, gray, train: bool = False):
        """(image, mask 1 = known, edge, gray) -> z = (L4_l, L4_g), the decoder input."""
        return self.encode(image, edge, gray, mask, train)[0]

    def rear(self, z, train: bool = False):
        """z -> the tanh output (B, H, W, 3): the original's self.model."""
        return self.decoder.rear(z, train)

    def __call__(self, image, edge, gray, mask, train: bool = False, return_structure: bool = False):
        """The generator output (tanh). return_structure=True (needs with_structure_decoder): also the
        training-only edge prediction (B, H, W, 1) in (0, 1), as the original's train model returns it."""
        if return_structure and not self.with_structure_decoder:
            raise ValueError("return_structure=True needs TSGLLamaGenerator(with_structure_decoder=True)")
        z, s4 = self.encode(image, edge, gray, mask, train)
        out = self.rear(z, train)
        return (out, self.up_high.rear(s4, train)) if return_structure else out


@functools.lru_cache(maxsize=None)
def front_rear(model: TSGLLamaGenerator, wraparound: bool = False) -> FrontRear:
    """The refiner's view (fdm_jax.lama.refine): front(variables, image, mask) -> z, rear(variables, z).

    `front` computes the Canny edge map and gray image of each (pyramid level's) image on the host
    with the original's recipe (fdm_jax.tsgl.structure.structure_maps_jax; `wraparound` as there:
    False for the original's [0, 1] test pipeline), so `image` is RGB in [0, 1] and mask 1 = known.
    Cached per (model, wraparound): jitted callers see the same function objects and compile once.
    """
    from fdm_jax.tsgl.structure import structure_maps_jax  # host-side preprocessing, kept out of the model

    cls = type(model)

    def front(variables, image, mask):
        edge, gray = structure_maps_jax(image, wraparound=wraparound)
        return model.apply(variables, image, mask, edge, gray, method=cls.front)

    def rear(variables, z):
        return model.apply(variables, z, method=cls.rear)

    return FrontRear(front, rear)
