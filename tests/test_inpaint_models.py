"""`python -m fdm_jax.inpaint --model lama|tsgl_lama|tsgl_medfe` with the fixtures' original
checkpoints (tiny configs), on real images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fdm_jax.inpaint import main
from shared_paths import require, shared_dir


def _image(tmp_path, folder, name, size=None):
    src = require(shared_dir() / "data" / "images" / folder)
    folder = src / "images" if (src / "images").is_dir() else src
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    img = cv2.imread(str(files[0]))
    if size is not None:
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    path = tmp_path / name
    cv2.imwrite(str(path), img)
    return path, img


def _known_pixels_kept(out_dir, image_bgr, hole_ratio_seed=0):
    out = cv2.imread(str(out_dir / "sample_0.png"))
    masked = cv2.imread(str(out_dir / "masked_input.png"))
    known = masked.sum(-1) > 0
    assert out.shape == image_bgr.shape
    # known pixels are the input's (the originals copy them back)
    assert np.abs(out[known].astype(int) - image_bgr[known].astype(int)).max() <= 1
    return out


def test_lama_with_refinement_on_a_real_image(tmp_path):
    path, img = _image(tmp_path, "sun_hays80", "img.png", size=(200, 152))  # not a multiple of 8
    ckpt = require(shared_dir() / "fixtures" / "lama" / "ffc_generator_small.pth")
    common = ["--model", "lama", "--config", "configs/big_lama.py:tiny", "--checkpoint", str(ckpt),
              "--image", str(path), "--mask-ratio", "0.3"]
    assert main(common + ["--refine", "--refine-n-iters", "2", "--out", str(tmp_path / "out")]) == 0
    refined = _known_pixels_kept(tmp_path / "out", img)
    assert main(common + ["--out", str(tmp_path / "plain")]) == 0
    plain = _known_pixels_kept(tmp_path / "plain", img)
    hole = cv2.imread(str(tmp_path / "out" / "masked_input.png")).sum(-1) == 0
    assert hole.mean() > 0.1
    # The generator fills the hole (an identity would leave it black, a constant flat) ...
    assert refined[hole].std() > 0 and np.abs(refined[hole].astype(int) - 0).mean() > 1
    # ... and the refinement's Adam steps change that fill (a no-op refinement returns the plain pass).
    assert np.abs(refined[hole].astype(int) - plain[hole].astype(int)).max() > 0


@pytest.mark.parametrize("model,size", [("tsgl_lama", (200, 152)), ("tsgl_medfe", (256, 256))])
def test_tsgl_generators_on_a_real_image(tmp_path, model, size):
    path, img = _image(tmp_path, "places2_256_freeform", "img.png", size=size)
    ckpt = require(shared_dir() / "fixtures" / "tsgl" / f"{model}_generator_small.pth")
    rc = main(["--model", model, "--config", f"configs/{model}.py:tiny", "--checkpoint", str(ckpt),
               "--image", str(path), "--mask-ratio", "0.3", "--out", str(tmp_path / "out")])
    assert rc == 0
    out = _known_pixels_kept(tmp_path / "out", img)
    hole = cv2.imread(str(tmp_path / "out" / "masked_input.png")).sum(-1) == 0
    assert out[hole].std() > 0  # the hole is filled by the generator, not left black


def test_model_specific_errors(tmp_path, capsys):
    path, _ = _image(tmp_path, "sun_hays80", "big.png", size=(320, 240))
    ckpt = require(shared_dir() / "fixtures" / "tsgl" / "tsgl_medfe_generator_small.pth")
    assert main(["--model", "tsgl_medfe", "--config", "configs/tsgl_medfe.py:tiny", "--checkpoint", str(ckpt),
                 "--image", str(path), "--mask-ratio", "0.3", "--out", str(tmp_path / "o")]) == 2
    assert "256x256 only" in capsys.readouterr().err
    assert main(["--model", "tsgl_medfe", "--refine", "--checkpoint", "random", "--image", str(path),
                 "--mask-ratio", "0.3", "--out", str(tmp_path / "o")]) == 2  # a one-line usage error
    assert "--refine needs --model lama or tsgl_lama" in capsys.readouterr().err
