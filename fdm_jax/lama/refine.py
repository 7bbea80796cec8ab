"""Multiscale feature refinement (Kulshreshtha, Pugh & Jiddi 2022, arXiv 2206.13644), as the official code
does it: saicinpainting/evaluation/refinement.py of geomagical/lama-with-refiner@d4239d8
(refine_predict, _infer, _get_image_mask_pyramid).

    result = refine(front_rear(model), variables, image, mask)        # image (1,H,W,3), mask 1 = known

`front_rear(model)` (fdm_jax.lama.generator) splits a LaMa generator; any other generator works
through `FrontRear(front, rear)` with front(variables, image, mask) -> z (array or pytree) and
rear(variables, z) -> image.

Per image (batch size 1, as the original asserts):
  1. Pyramid (`image_mask_pyramid`): if H*W > px_budget the image and mask are first resized to
     int(H*r) x int(W*r), r = sqrt(px_budget/(H*W)) (bilinear, no antialias; mask > 1e-8 -> 1). Then
     n = min(1 + int(round(max(0, log2(min(H, W) / min_side)))), max_scales) levels, each the previous
     one blurred (5x5 Gaussian, sigma 1, reflect border) and bilinearly halved; masks are binarised
     after that with >= 1e-8 (so partial coverage counts as hole). The result is never resized back.
  2. Lowest level: one plain generator pass (front + rear), known pixels composited back.
  3. Every further level s: reflect-pad to multiples of `modulo`, binarise the hole (>= 1e-8),
     z = front(image, mask) (no gradient), then with a fresh Adam(lr, betas (0.9, 0.999), eps 1e-8) on z:
     n_iters rear forwards and n_iters - 1 updates of
        L(z) = mean_A |pred - image|  +  mean_B |pyrdown(pred[:h, :w]) - result_{s-1}|
     A: the 3-channel known pixels of the padded level (padding included);
     B: the 3-channel pixels of the level's hole, bilinearly halved without blur and kept only where
        the whole footprint is hole (>= 1 - 1e-8), then eroded with the 15x15 ellipse (border = 1).
     The last forward's prediction is composited with the known pixels and cropped: result_s.
  Each level runs three jitted programs: `prepare_scale` (the front and the loss targets), `refine_step`
  (one donated Adam step with `jax.value_and_grad` of `refinement_loss` over z = (z_l, z_g), any pytree
  the front returns), called n_iters - 1 times from Python, and `finish_scale` (the final forward). The
  learning rate and n_iters are values, not compile-time constants.

Deliberate difference: where the original's term B selects nothing (thin masks) torch's mean is
NaN (its printed loss is 'nan', its gradient zero). Here each term is sum / max(count, 1) and an empty
term contributes 0 to both the loss and the gradient, so losses and z stay finite. Same for term A
when everything is hole.

Masks: the public API takes the library polarity (1 = known; grey = partly known) and converts once
to the original's hole map (1 - mask), on which every threshold above is defined.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from fdm_jax.lama.generator import FrontRear  # the split interface: front(v, image, mask), rear(v, z)
from fdm_jax.nn.padding import pad_to_modulo
from fdm_jax.nn.resize import resize_bilinear

EPS = 1e-8  # refinement.py: every threshold (mask >= eps, >= 1 - eps, > eps)


@dataclasses.dataclass(frozen=True)
class RefineConfig:
    """configs/prediction/default.yaml `refiner:` (gpu_ids is placement only: one device here)."""

    modulo: int = 8  # ${dataset.pad_out_to_modulo}
    n_iters: int = 15  # forward passes per refined scale (n_iters - 1 Adam steps)
    lr: float = 0.002  # Adam learning rate
    min_side: int = 512  # pyramid size control
    max_scales: int = 3  # cap on pyramid levels
    px_budget: int = 1_800_000  # larger images are downscaled first (and stay downscaled)

    def __post_init__(self):
        for name in ("modulo", "n_iters", "min_side", "max_scales", "px_budget"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RefineConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"RefineConfig.lr must be > 0, got {self.lr}")


# ----------------------------------------------------------------------------------- image operators

def _gaussian_kernel_5x5() -> np.ndarray:
    """kornia 0.5.0 get_gaussian_kernel2d((5, 5), (1, 1)): outer product of the normalised float32 1-D
    kernel exp(-x^2 / 2), x = -2..2."""
    x = np.arange(5, dtype=np.float32) - np.float32(2)
    g = np.exp(-(x * x) / np.float32(2.0)).astype(np.float32)
    g = g / g.sum(dtype=np.float32)
    return np.outer(g, g).astype(np.float32)


def gaussian_blur(x: jax.Array) -> jax.Array:
    """kornia gaussian_blur2d(x, (5, 5), (1., 1.)) with its default border 'reflect' (edge excluded,
    = cv2 BORDER_REFLECT_101), per channel, on NHWC."""
    c = x.shape[-1]
    k = jnp.asarray(_gaussian_kernel_5x5())[:, :, None, None] * jnp.ones((1, 1, 1, c), x.dtype)
    xp = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    return lax.conv_general_dilated(xp, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    feature_group_count=c, precision=lax.Precision.HIGHEST)


def pyrdown(x: jax.Array) -> jax.Array:
    """refinement.py _pyrdown: Gaussian blur, then bilinear to (H//2, W//2)."""
    return resize_bilinear(gaussian_blur(x), (x.shape[1] // 2, x.shape[2] // 2))


def pyrdown_mask(hole: jax.Array, blur: bool = True, round_up: bool = True) -> jax.Array:
    """refinement.py _pyrdown_mask on a hole map: (blur,) bilinear halving, then binarise with
    >= 1e-8 (round_up: any coverage is hole) or >= 1 - 1e-8 (whole footprint hole). Thresholds are
    compared in float32, as torch compares a float32 tensor with a Python float."""
    y = gaussian_blur(hole) if blur else hole
    y = resize_bilinear(y, (hole.shape[1] // 2, hole.shape[2] // 2))
    thr = np.float32(EPS) if round_up else np.float32(1.0 - EPS)
    return (y >= thr).astype(hole.dtype)


def ellipse_kernel(size: int = 15) -> np.ndarray:
    """cv2.getStructuringElement(MORPH_ELLIPSE, (size, size)) as 0/1 (refinement.py _infer: 15)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)).astype(bool)


def erode(x: jax.Array, kernel: np.ndarray) -> jax.Array:
    """kornia 0.5.0 morphology.erosion: the minimum over the structuring element's support, with the
    border padded by 1 (so the image border does not erode), per channel, NHWC.

    Each kernel row must be one contiguous run (true of cv2's ellipses): a row's contribution is a
    horizontal running minimum, so the whole erosion is a few reduce_windows instead of one op per tap.
    """
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    h, w = x.shape[1:3]
    xp = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=1.0)
    runs: dict[tuple[int, int], list[int]] = {}
    for dy, row in enumerate(np.asarray(kernel, bool)):
        cols = np.flatnonzero(row)
        if cols.size == 0:
            continue
        if cols[-1] - cols[0] + 1 != cols.size:
            raise ValueError("erode: every structuring-element row must be one contiguous run")
        runs.setdefault((int(cols[0]), int(cols.size)), []).append(dy)
    out = None
    for (c0, length), rows in runs.items():
        hmin = lax.reduce_window(xp[:, :, c0:c0 + w + length - 1], jnp.inf, lax.min, (1, 1, length, 1),
                                 (1, 1, 1, 1), "VALID")  # (B, H + 2ph, w, C)
        for dy in rows:
            v = hmin[:, dy:dy + h]
            out = v if out is None else jnp.minimum(out, v)
    return out


def _binarise(x: jax.Array, thr: float) -> jax.Array:
    return (x >= np.float32(thr)).astype(x.dtype)


# ----------------------------------------------------------------------------------- pyramid

def pyramid_sizes(h: int, w: int, config: RefineConfig) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """((h, w) after the px_budget resize, [level sizes low -> high]) with the original's arithmetic."""
    if h * w > config.px_budget:
        ratio = math.sqrt(config.px_budget / float(h * w))
        h, w = int(h * ratio), int(w * ratio)
    n_scales = min(1 + int(round(max(0.0, float(np.log2(min(h, w) / config.min_side))))), config.max_scales)
    sizes = [(h, w)]
    for _ in range(n_scales - 1):
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    return (h, w), sizes[::-1]


def image_mask_pyramid(image: jax.Array, hole: jax.Array, config: RefineConfig):
    """See `_pyramid`; only the size settings are compile-time (lr and n_iters do not recompile it)."""
    return _pyramid(image, hole, min_side=int(config.min_side), max_scales=int(config.max_scales),
                    px_budget=int(config.px_budget))


@functools.partial(jax.jit, static_argnames=("min_side", "max_scales", "px_budget"))
def _pyramid(image: jax.Array, hole: jax.Array, *, min_side: int, max_scales: int, px_budget: int):
    """refinement.py _get_image_mask_pyramid on the unpadded image and raw hole map (1 = hole, grey
    allowed). Returns (images, holes), lists low -> high resolution; the top hole level stays raw."""
    h, w = image.shape[1:3]
    (bh, bw), sizes = pyramid_sizes(h, w, RefineConfig(min_side=min_side, max_scales=max_scales,
                                                       px_budget=px_budget))
    if (bh, bw) != (h, w):
        image = resize_bilinear(image, (bh, bw))
        hole = resize_bilinear(hole, (bh, bw))
        hole = jnp.where(hole > np.float32(EPS), jnp.ones_like(hole), hole)
    images, holes = [image], [hole]
    for _ in range(len(sizes) - 1):
        images.append(pyrdown(images[-1]))
        holes.append(pyrdown_mask(holes[-1]))
    return images[::-1], holes[::-1]


# ----------------------------------------------------------------------------------- one scale

def _abs(x: jax.Array) -> jax.Array:
    """|x| whose gradient is sign(x) with sign(0) = 0, as torch.abs (jnp.abs's gradient at 0 is 1)."""
    return lax.stop_gradient(jnp.sign(x)) * x


def _masked_mean(diff: jax.Array, sel: jax.Array):
    """(sum |diff| over sel / max(count, 1), count): torch.mean(|diff|[sel]) without its empty-set NaN
    (an empty selection contributes 0 and a zero gradient instead of NaN)."""
    count = jnp.sum(sel)
    total = jnp.sum(jnp.where(sel, _abs(diff), 0.0))
    return total / jnp.maximum(count, 1).astype(diff.dtype), count


@dataclasses.dataclass(frozen=True)
class ScaleTargets:
    """What one pyramid level's loss compares against (`prepare_scale`): the padded level image, its
    3-channel known-pixel selection (term A), the lower-resolution result and its selection (term B),
    and the level's unpadded size `hw` (static)."""

    image_p: jax.Array
    sel_a: jax.Array
    prev: jax.Array
    sel_b: jax.Array
    hw: tuple[int, int]


jax.tree_util.register_dataclass(ScaleTargets, data_fields=["image_p", "sel_a", "prev", "sel_b"],
                                 meta_fields=["hw"])


def refinement_loss(fr: FrontRear, variables, z, targets: ScaleTargets):
    """L(z) of one refined scale (refinement.py _infer): mean_A |rear(z) - image| +
    mean_B |pyrdown(rear(z)[:h, :w]) - result_{s-1}|. A pure function of z: `jax.grad(refinement_loss,
    argnums=2)` is the gradient the refiner's Adam follows. Returns (loss, (t1, t2, n1, n2, pred))."""
    h, w = targets.hw
    pred = fr.rear(variables, z)
    t1, n1 = _masked_mean(pred - targets.image_p, targets.sel_a)
    t2, n2 = _masked_mean(pyrdown(pred[:, :h, :w]) - targets.prev, targets.sel_b)
    return t1 + t2, (t1, t2, n1, n2, pred)


@functools.partial(jax.jit, static_argnames=("fr", "orig_hw"))
def prepare_scale(fr: FrontRear, variables, image_p, hole_p, prev, *, orig_hw: tuple[int, int]):
    """z0 = front(image, mask) (no gradient) and the loss targets of one refined level of unpadded
    size orig_hw."""
    h, w = orig_hw
    z0 = jax.tree.map(lax.stop_gradient, fr.front(variables, image_p, 1.0 - hole_p))
    hole3 = jnp.broadcast_to(hole_p, image_p.shape)
    sel_a = hole3 < np.float32(EPS)  # known pixels of the padded level, 3 channels
    d = pyrdown_mask(hole_p[:, :h, :w], blur=False, round_up=False)
    d = _binarise(erode(d, ellipse_kernel(15)), 1.0 - EPS)
    sel_b = jnp.broadcast_to(d, prev.shape) >= np.float32(EPS)
    return z0, ScaleTargets(image_p, sel_a, prev, sel_b, (int(h), int(w)))


def _adam(lr):
    # torch.optim.Adam defaults (eps_root 0); lr enters as a traced value (inject_hyperparams), so a
    # new learning rate reuses the compiled step.
    return optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=0.9, b2=0.999, eps=1e-8)


@functools.partial(jax.jit, static_argnames=("fr",), donate_argnames=("z", "opt_state"))
def refine_step(fr: FrontRear, variables, z, opt_state, targets: ScaleTargets):
    """One Adam step on z: rear forward + backward + update, z and the optimiser state donated. The
    refinement calls it n_iters - 1 times from Python: the same compiled program every iteration and
    for any n_iters (a `lax.fori_loop` around the same step ran 2.7x slower on CPU, and needed one
    program per n_iters)."""
    (loss, (t1, t2, n1, n2, _)), grad = jax.value_and_grad(
        lambda zz: refinement_loss(fr, variables, zz, targets), has_aux=True)(z)
    updates, opt_state = _adam(0.0).update(grad, opt_state, z)  # the update reads lr from opt_state
    return optax.apply_updates(z, updates), opt_state, jnp.stack([loss, t1, t2]), jnp.stack([n1, n2])


@functools.partial(jax.jit, static_argnames=("fr",))
def finish_scale(fr: FrontRear, variables, z, targets: ScaleTargets, hole_p):
    """The last forward of a level: the prediction composited with the known pixels and cropped, and its
    loss (computed, not used, as the original's last iteration)."""
    loss, (t1, t2, n1, n2, pred) = refinement_loss(fr, variables, z, targets)
    h, w = targets.hw
    hole3 = jnp.broadcast_to(hole_p, pred.shape)
    return (hole3 * pred + (1.0 - hole3) * targets.image_p)[:, :h, :w], jnp.stack([loss, t1, t2]), jnp.stack([n1, n2])


@functools.partial(jax.jit, static_argnames=("fr", "orig_hw"))
def plain_scale(fr: FrontRear, variables, image_p, hole_p, *, orig_hw: tuple[int, int]):
    """The lowest level: a plain generator pass (the original's loop breaks at iteration 0)."""
    h, w = orig_hw
    z0 = fr.front(variables, image_p, 1.0 - hole_p)
    hole3 = jnp.broadcast_to(hole_p, image_p.shape)
    return (hole3 * fr.rear(variables, z0) + (1.0 - hole3) * image_p)[:, :h, :w], z0


def refine_scale(fr: FrontRear, variables, image_p, hole_p, prev, *, n_iters: int, lr: float,
                 orig_hw: tuple[int, int], record: bool = False, on_iteration=None):
    """One pyramid level (refinement.py _infer) given the lower-resolution result `prev` (None at the
    lowest level: a plain generator pass). image_p (1, Hp, Wp, 3) and the binarised hole map hole_p
    (1, Hp, Wp, 1, 1 = hole) are padded to the modulo; orig_hw is the unpadded size. Returns the
    composite cropped to orig_hw and a dict of per-iteration diagnostics (see `refine`). on_iteration:
    optional callable run after every Adam step (a progress bar's update).

    Three compiled programs per level shape (prepare, step, finish), none depending on n_iters or lr."""
    if prev is None:
        out, z0 = plain_scale(fr, variables, image_p, hole_p, orig_hw=tuple(orig_hw))
        return out, {"z_it0": z0}
    n_iters = int(n_iters)
    z, targets = prepare_scale(fr, variables, image_p, hole_p, prev, orig_hw=tuple(orig_hw))
    z0 = jax.tree.map(jnp.copy, z) if record else None
    opt_state = _adam(jnp.asarray(lr, jnp.float32)).init(z)  # lr lives in the state, a traced value
    stats, counts, z_it1 = [], [], None
    for i in range(n_iters - 1):
        z, opt_state, st, ct = refine_step(fr, variables, z, opt_state, targets)
        stats.append(st)
        counts.append(ct)
        if record and i == 0:
            z_it1 = jax.tree.map(jnp.copy, z)
        if on_iteration is not None:
            on_iteration()
    out, st, ct = finish_scale(fr, variables, z, targets, hole_p)
    stats, counts = jnp.stack(stats + [st], axis=1), jnp.stack(counts + [ct], axis=1).astype(jnp.int32)
    aux = {"losses": stats[0], "loss_term1": stats[1], "loss_term2": stats[2],
           "loss_count_A": counts[0], "loss_count_B": counts[1]}
    if record:
        aux.update(z_it0=z0, z_it1=z0 if z_it1 is None else z_it1, z_last=z)
    return out, aux


# ----------------------------------------------------------------------------------- driver

def _check_inputs(image, mask):
    from fdm_jax.io.input_checks import InputError, check_image_mask

    image, mask = jnp.asarray(image), jnp.asarray(mask)
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[-1] != 3:
        raise InputError(f"refine: image must be (1, H, W, 3) RGB in [0, 1] (the refiner works on one "
                         f"image at a time), got shape {image.shape}")
    if mask.shape != image.shape[:3] + (1,):
        raise InputError(f"refine: mask must be {image.shape[:3] + (1,)} with 1 = known, got {mask.shape}")
    if not jnp.issubdtype(image.dtype, jnp.floating) or not jnp.issubdtype(mask.dtype, jnp.floating):
        raise InputError(f"refine: image and mask must be float arrays, got {image.dtype} and {mask.dtype}")
    # NaN at a hole would pass the composite as NaN x 0 = NaN; no range check on the image: callers
    # feed [0, 1] (LaMa) or other normalisations through FrontRear.
    return check_image_mask(image, mask, where="refine", batch=1, value_range=(-np.inf, np.inf))


def refine(fr: FrontRear | Any, variables, image: jax.Array, mask: jax.Array,
           config: RefineConfig = RefineConfig(), *, record: bool = False, progress: bool = False):
    """Inpaint one image with multiscale feature refinement (refinement.py refine_predict).

    Args:
      fr: an object with `front(variables, image, mask) -> z` and `rear(variables, z) -> image`, e.g.
        `fdm_jax.lama.generator.front_rear(model)`. Pass the same object every call so the
        per-scale programs compile once per shape.
      variables: the generator's variables ({'params', 'batch_stats'} for LaMa).
      image: (1, H, W, 3) float RGB in [0, 1], unpadded.
      mask: (1, H, W, 1) float, 1 = known (grey = partly known; any unknown share counts as hole).
      config: the refiner's hyper-parameters (defaults: configs/prediction/default.yaml).
      progress: show a progress bar (stderr) over the refined scales' Adam steps, with an ETA.
      record: also return the pyramid (images and hole maps, low -> high), every level's result
        (`scale`), and per level (`aux`) the per-iteration losses, terms and counts and z snapshots
        (`z_it0` = front output, `z_it1` after one Adam step, `z_last` fed to the last forward).

    Returns:
      The composited result (1, h, w, 3); (h, w) = (H, W) unless H*W > px_budget, in which case it is
      the budget-reduced size (the original never resizes back). With record=True: (result, dict).
    """
    image, mask = _check_inputs(image, mask)
    hole = 1.0 - mask  # the original's polarity, on which its thresholds are defined
    fr = fr if isinstance(fr, FrontRear) else FrontRear(fr.front, fr.rear)
    images, holes = image_mask_pyramid(image, hole, config)
    rec: dict[str, Any] = {"pyramid_image": images, "pyramid_mask": holes, "scale": [], "aux": []}
    prev, bar = None, None
    if progress and len(images) > 1:
        from tqdm import tqdm

        bar = tqdm(total=(len(images) - 1) * (int(config.n_iters) - 1), unit="step", desc="refining")
    try:
        for level, (img, hm) in enumerate(zip(images, holes)):
            orig_hw = tuple(int(s) for s in img.shape[1:3])
            # evaluation/data.py pad_tensor_to_modulo: torch F.pad 'reflect' at the bottom/right
            img_p = pad_to_modulo(img, config.modulo, mode="reflect")
            hole_p = _binarise(pad_to_modulo(hm, config.modulo, mode="reflect"), EPS)
            if bar is not None and level:
                bar.set_description(f"refining scale {level}/{len(images) - 1} ({orig_hw[1]}x{orig_hw[0]})")
            prev, aux = refine_scale(fr, variables, img_p, hole_p, prev, n_iters=config.n_iters,
                                     lr=float(config.lr), orig_hw=orig_hw, record=record,
                                     on_iteration=None if bar is None else (lambda: bar.update(1)))
            if record:
                rec["scale"].append(prev)
                rec["aux"].append(aux)
    finally:
        if bar is not None:
            bar.close()
    return (prev, rec) if record else prev
