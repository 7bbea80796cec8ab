"""TSGL's structure inputs and preprocessing, exactly as the original pipelines compute them
(htyjers/ConvInpaint-TSGL@e9f6438: TSGL_*/{train,test}/canny.py,
dataset_loader*.py).

canny.image_to_edge(image_tensor, sigma=2) turns the *tensor the pipeline holds* back into a uint8
image with torchvision's ToPILImage (`(x * 255).byte()`: truncation toward zero, wrapping modulo 256),
then
    gray = skimage.color.rgb2gray(uint8)            (0.2125 R + 0.7154 G + 0.0721 B of u / 255, float64;
                                                      PIL mode 'F' makes it float32)
    edge = skimage.feature.canny(gray, sigma=2.0)   (default thresholds 0.1 / 0.2, mode 'constant')

The quirk (`wraparound=True`): the MEDFE pipelines (train and test) and the LaMa TRAIN pipeline call it
on the Normalize(0.5, 0.5)-ed [-1, 1] tensor, so every byte u becomes ((u/255 - 0.5)/0.5 * 255) cast to
uint8 = ((2u - 255) truncated) mod 256 (0 -> 1, 127 -> 0, 128 -> 1, 255 -> 255): the gray image and the
edges are computed from this intensity-doubled, wrapped image, and the released MEDFE checkpoints were
trained on it. The LaMa TEST pipeline feeds the [0, 1] ToTensor image (`wraparound=False`) and sees the
raw bytes. Canny's output depends on the scikit-image version (the implementation changed in 0.19;
TSGL_Lama pins 0.17.2); the fixtures were made with 0.26 and agree with 0.17.2 on their images.

Masks: the files use 255 = hole; the loaders do `1 - ToTensor(Resize(size, NEAREST)(img.convert('1')))`,
so M = 1 on known pixels (the library polarity). PIL does the conversion and the resize here, exactly.

Everything is numpy on the host (scikit-image has no JAX version); `structure_maps_jax` wraps it in a
`jax.pure_callback` for use inside jitted code (e.g. TSGL-LaMa under multiscale refinement).
Layouts: images (H, W, 3) or (B, H, W, 3); outputs (H, W, 1) or (B, H, W, 1) float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from skimage.color import rgb2gray
from skimage.feature import canny

CANNY_SIGMA = 2.0  # canny.image_to_edge(image, sigma=2.) in every dataset loader


def _as_batch(x: np.ndarray, name: str, channels: int | None) -> tuple[np.ndarray, bool]:
    x = np.asarray(x)
    single = x.ndim == (3 if channels else 2)
    if single:
        x = x[None]
    want = 4 if channels else 3
    if x.ndim != want or (channels and x.shape[-1] != channels):
        shape = "(H, W, 3) or (B, H, W, 3)" if channels else "(H, W) or (B, H, W)"
        raise ValueError(f"{name}: expected {shape}, got shape {x.shape}")
    return x, single


def normalize_image(rgb_uint8: np.ndarray) -> np.ndarray:
    """ToTensor + Normalize((0.5,)*3, (0.5,)*3): (u/255 - 0.5)/0.5 in float32 -> [-1, 1] (MEDFE; LaMa train)."""
    u = np.asarray(rgb_uint8)
    if u.dtype != np.uint8:
        raise ValueError(f"rgb_uint8: expected a uint8 image, got dtype {u.dtype}")
    return (u.astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)


def to_unit_range(rgb_uint8: np.ndarray) -> np.ndarray:
    """ToTensor only: u/255 in float32 -> [0, 1] (the LaMa test pipeline)."""
    u = np.asarray(rgb_uint8)
    if u.dtype != np.uint8:
        raise ValueError(f"rgb_uint8: expected a uint8 image, got dtype {u.dtype}")
    return u.astype(np.float32) / np.float32(255)


def tensor_to_uint8(x: np.ndarray) -> np.ndarray:
    """torchvision ToPILImage on a float tensor: (x * 255).byte(), i.e. truncation toward zero and
    wrap-around modulo 256 (what makes a [-1, 1] input garbled), computed in float32 like torch."""
    y = np.asarray(x, np.float32) * np.float32(255)
    return (y.astype(np.int32) & 255).astype(np.uint8)


def wrapped_uint8(rgb_uint8: np.ndarray) -> np.ndarray:
    """The uint8 image the MEDFE pipeline's image_to_edge actually sees: ToPILImage of the [-1, 1] tensor."""
    return tensor_to_uint8(normalize_image(rgb_uint8))


def edge_and_gray_from_uint8(pil_uint8: np.ndarray, sigma: float = CANNY_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """image_to_edge on the uint8 image ToPILImage produced: (edge {0, 1}, gray [0, 1]), float32,
    (..., H, W, 1). One image or a batch; each image is processed on its own, as the loaders do."""
    u, single = _as_batch(pil_uint8, "pil_uint8", 3)
    if u.dtype != np.uint8:
        raise ValueError(f"pil_uint8: expected dtype uint8, got {u.dtype}")
    edges, grays = [], []
    for img in u:
        gray = rgb2gray(img)  # float64
        edges.append(canny(gray, sigma=sigma).astype(np.float32))  # bool -> PIL '1' -> ToTensor: {0, 1}
        grays.append(gray.astype(np.float32))  # PIL mode 'F' -> ToTensor (no /255)
    edge, gray = np.stack(edges)[..., None], np.stack(grays)[..., None]
    return (edge[0], gray[0]) if single else (edge, gray)


def edge_and_gray(rgb_uint8: np.ndarray, wraparound: bool, sigma: float = CANNY_SIGMA):
    """(edge, gray) of raw RGB bytes as a TSGL pipeline computes them.

    wraparound=True: the MEDFE (256) pipelines and the LaMa train pipeline (image_to_edge on the
    [-1, 1] tensor, the uint8 wrap-around quirk); False: the LaMa test pipeline ([0, 1] tensor).
    """
    u = np.asarray(rgb_uint8)
    if u.dtype != np.uint8:
        raise ValueError(f"rgb_uint8: expected a uint8 image, got dtype {u.dtype}")
    pil = wrapped_uint8(u) if wraparound else tensor_to_uint8(to_unit_range(u))
    return edge_and_gray_from_uint8(pil, sigma)


def known_mask(mask_uint8: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """dataset_loader1.py: M = 1 - ToTensor(Resize(size, NEAREST)(mask.convert('1'))), float32 (..., H, W, 1).

    mask_uint8: the mask file's gray values (255 = hole), (H, W) or (B, H, W); size = (H, W) of the
    Resize (MEDFE 256x256, LaMa test 512x512; None = keep). PIL does convert('1') (threshold, with
    dithering for grey values) and the NEAREST resize, as in the original.
    """
    m, single = _as_batch(mask_uint8, "mask_uint8", None)
    if m.dtype != np.uint8:
        raise ValueError(f"mask_uint8: expected dtype uint8, got {m.dtype}")
    out = []
    for one in m:
        img = Image.fromarray(np.ascontiguousarray(one)).convert("1")  # uint8 (H, W) -> mode L
        if size is not None:
            img = img.resize((int(size[1]), int(size[0])), Image.NEAREST)
        out.append(1.0 - np.asarray(img, dtype=np.float32))  # mode '1' -> {0, 1}
    k = np.stack(out)[..., None].astype(np.float32)
    return k[0] if single else k


def structure_maps_jax(image: jax.Array, wraparound: bool = False, sigma: float = CANNY_SIGMA):
    """(edge, gray) of a float image batch (B, H, W, 3) inside jitted code, via jax.pure_callback.

    `image` is the tensor the original pipeline would hand to image_to_edge: [0, 1] for the LaMa test
    pipeline (wraparound=False: ToPILImage of it, truncated), or [-1, 1] with wraparound=True (the same
    ToPILImage, which then wraps). Not differentiable (the original computes it in the data loader).
    """
    image = jnp.asarray(image)
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"image: expected (B, H, W, 3), got shape {image.shape}")
    shape = jax.ShapeDtypeStruct(image.shape[:3] + (1,), jnp.float32)

    def host(x):
        x = np.asarray(x, np.float32)
        if not wraparound and (x.min() < 0 or x.max() > 1):
            x = np.clip(x, 0.0, 1.0)  # a [0, 1] pipeline: keep ToPILImage from wrapping refined pixels
        return edge_and_gray_from_uint8(tensor_to_uint8(x), sigma)

    return jax.pure_callback(host, (shape, shape), jax.lax.stop_gradient(image), vmap_method="sequential")
