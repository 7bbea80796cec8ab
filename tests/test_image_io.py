"""Input checks of image/mask reading: every bad input is a one-line InputError naming the problem."""

import warnings

import cv2
import numpy as np
import pytest

from fdm_jax.io.images import (HOLE_BLACK, InputError, check_mask, fit_mask, random_mask, read_image, read_mask,
                              resize_and_center_crop)
from shared_paths import shared_dir, require

PLACES = shared_dir() / "data/images/places2_256_freeform"


def test_real_mask_polarity():
    path = require(PLACES / "masks/Places365_val_00000262.png")
    white = read_mask(path)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(white == 0, raw == 255)  # 255 = hole on disk, 0 = hole in the model
    np.testing.assert_array_equal(read_mask(path, HOLE_BLACK), 1 - white)


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="x.png: not a readable image"):
        read_image(tmp_path / "x.png")
    with pytest.raises(InputError, match="no such file"):
        read_mask(tmp_path / "missing.png")
    with pytest.raises(InputError, match="polarity"):
        read_mask(tmp_path / "x.png", "hole-grey")


def test_non_binary_mask_is_thresholded_with_a_warning(tmp_path):
    m = np.zeros((16, 16), np.uint8)
    m[:8] = 200
    m[8:, :4] = 100
    cv2.imwrite(str(tmp_path / "m.png"), m)
    with pytest.warns(UserWarning, match="not binary"):
        known = read_mask(tmp_path / "m.png")
    assert (known[:8] == 0).all() and (known[8:] == 1).all()


def test_mask_content_and_size_checks():
    with pytest.raises(InputError, match="no hole"):
        check_mask(np.ones((8, 8), np.float32))
    with pytest.raises(InputError, match="no known pixel"):
        check_mask(np.zeros((8, 8), np.float32))
    img = np.zeros((300, 400, 3), np.uint8)
    _, geom = resize_and_center_crop(img, 256)
    with pytest.raises(InputError, match="matches neither the image"):
        fit_mask(np.ones((100, 100), np.float32), (300, 400), geom, 256)
    out = fit_mask(np.ones((300, 400), np.float32), (300, 400), geom, 256)
    assert out.shape == (256, 256)


def test_random_mask_is_seeded():
    a, b = random_mask(64, 0.3, 1), random_mask(64, 0.3, 1)
    np.testing.assert_array_equal(a, b)
    assert (a == 0).mean() >= 0.3
    with pytest.raises(InputError, match="mask-ratio"):
        random_mask(64, 1.5, 0)
