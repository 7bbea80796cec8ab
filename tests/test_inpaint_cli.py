"""The `inpaint` command end to end on real images, and its one-line errors."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from fdm_jax.inpaint import main
from shared_paths import fixtures_dir, require, shared_dir

PLACES = shared_dir() / "data/images/places2_256_freeform"
PUT = fixtures_dir() / "put_fdm"
TINY = "configs/paris.py:tiny"


def _weights():
    return ["--checkpoint", str(require(PUT / "put_fdm_codec_fdm_tuning.pth")),
            "--checkpoint", str(require(PUT / "put_fdm_transformer.pth")), "--config", TINY]


def _image(name="Places365_val_00000262"):
    return str(require(PLACES / f"images/{name}.jpg")), str(require(PLACES / f"masks/{name}.png"))


def test_end_to_end_with_converted_weights(tmp_path):
    image, mask = _image()
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "fdm_jax.inpaint", *_weights(), "--image", image, "--mask", mask,
                        "--num-samples", "2", "--seed", "3", "--out", str(out), "--paste-known"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "patches filled" in r.stderr  # the progress bar
    assert "compiling the PUT+FDM sampler" in r.stderr  # said before the first compilation
    s0, s1 = cv2.imread(str(out / "sample_0.png")), cv2.imread(str(out / "sample_1.png"))
    assert s0.shape == (64, 64, 3) and not np.array_equal(s0, s1)  # two different samples
    # grid.png: input | masked input | 2 samples, labelled above; the cells are the written PNGs.
    grid = cv2.imread(str(out / "grid.png"))
    assert grid.shape[0] > 64 and grid.shape[1] >= 64 * 4
    assert np.array_equal(grid[-4 - 64:-4, -4 - 64:-4], s1)
    assert (grid[:grid.shape[0] - 64 - 8] < 128).any()  # label text above the images
    # --paste-known: known pixels are the (resized) input exactly.
    masked = cv2.imread(str(out / "masked_input.png"))
    known = masked.sum(-1) > 0
    np.testing.assert_array_equal(s0[known], masked[known])


def test_same_seed_same_samples_and_random_init(tmp_path):
    image, _ = _image()
    args = ["--checkpoint", "random", "--config", TINY, "--image", image, "--mask-ratio", "0.3", "--seed", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "a/sample_0.png")),
                                  cv2.imread(str(tmp_path / "b/sample_0.png")))


@pytest.mark.parametrize("case,expect", [
    ("unreadable_image", "not a readable image"),
    ("mask_other_size", "matches neither the image"),
    ("mask_no_hole", "no hole"),
    ("mask_all_hole", "no known pixel"),
    ("missing_checkpoint", "no such file or directory"),
    ("wrong_config_for_weights", "mis-shaped"),
])
def test_bad_input_is_one_line_error(tmp_path, capsys, case, expect):
    image, mask = _image()
    weights = _weights()
    if case == "unreadable_image":
        (tmp_path / "bad.jpg").write_text("nope")
        image = str(tmp_path / "bad.jpg")
    elif case == "mask_other_size":
        mask = str(tmp_path / "m.png")
        cv2.imwrite(mask, np.zeros((10, 20), np.uint8))
    elif case in ("mask_no_hole", "mask_all_hole"):
        mask = str(tmp_path / "m.png")
        cv2.imwrite(mask, np.full((256, 256), 0 if case == "mask_no_hole" else 255, np.uint8))
    elif case == "missing_checkpoint":
        weights = ["--checkpoint", str(tmp_path / "nothing.pth"), "--config", TINY]
    elif case == "wrong_config_for_weights":
        weights = weights[:-1] + ["configs/places.py"]
    code = main([*weights, "--image", image, "--mask", mask, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0], err


def test_non_binary_mask_warns_and_runs(tmp_path):
    image, mask = _image()
    m = cv2.imread(mask, cv2.IMREAD_UNCHANGED)
    m = np.where(m > 0, 200, 30).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), m)
    with pytest.warns(UserWarning, match="thresholded"):
        assert main([*_weights(), "--image", image, "--mask", str(tmp_path / "grey.png"),
                     "--out", str(tmp_path / "o")]) == 0


@pytest.mark.slow  # trains two phases unless CI's demo run is given, then samples
def test_end_to_end_with_an_fdm_jax_training_run(tmp_path, demo_run):
    """inpaint takes the codec and FDM from the latest phase, the transformer from `sampler`, and the
    model sizes from the run's own config (no --config)."""
    run = demo_run
    image = require(shared_dir() / "data" / "images" / "places2_256_freeform" / "images")
    img = sorted(image.iterdir())[0]
    rc = main(["--checkpoint", str(run), "--image", str(img), "--mask-ratio", "0.4",
               "--num-samples", "2", "--top-k", "2", "--out", str(tmp_path / "out")])
    assert rc == 0
    samples = [cv2.imread(str(tmp_path / "out" / f"sample_{k}.png")) for k in range(2)]
    assert all(s.shape == (64, 64, 3) for s in samples)  # the run's (tiny) model size, not paris' 256


# -- sampling settings from the run's config, one compiled program --------------------------------

def _spy(monkeypatch):
    """Record the sampling settings `inpaint` passes to the compiled sampler; return grey samples
    instead of compiling one program per top_k."""
    import fdm_jax.put_fdm.sampling as sampling

    calls = []

    def spy(codec, cv, sampler, sv, fdm, fv, image, mask, key, num_samples, **kwargs):
        calls.append(kwargs)
        return {"inpainted_image": np.full((num_samples, *image.shape), 128.0, np.float32)}

    monkeypatch.setattr(sampling, "jit_inpaint_samples", spy)
    return calls


def test_top_k_and_tokens_per_pass_come_from_the_config_unless_given(tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    image, _ = _image()
    args = ["--checkpoint", "random", "--image", image, "--mask-ratio", "0.3"]
    assert main([*args, "--config", "configs/demo.py", "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--config", "configs/demo.py", "--top-k", "3", "--num-token-per-iter", "4",
                 "--out", str(tmp_path / "b")]) == 0
    assert main([*args, "--config", TINY, "--out", str(tmp_path / "c")]) == 0
    got = [(c["top_k"], int(c["num_token_per_iter"])) for c in calls]
    assert got == [(2, 1), (3, 4), (50, 1)]  # demo.py's top_k 2; the command line wins; paris tiny's 50


def test_compiled_once_across_images_and_seeds(tmp_path):
    """A second image and seed with the same model reuse the compiled sampler: the weights, image, mask
    and key are arguments, not constants of the program."""
    import fdm_jax.put_fdm.sampling as sampling

    args = ["--checkpoint", "random", "--config", TINY, "--mask-ratio", "0.3"]
    first, second = _image("Places365_val_00000262")[0], _image("Places365_val_00000285")[0]
    assert main([*args, "--image", first, "--seed", "1", "--out", str(tmp_path / "a")]) == 0
    size = sampling.jit_inpaint_samples._cache_size()
    assert main([*args, "--image", second, "--seed", "2", "--num-token-per-iter", "3",
                 "--out", str(tmp_path / "b")]) == 0
    assert sampling.jit_inpaint_samples._cache_size() == size


def test_second_process_loads_compiled_programs_from_the_persistent_cache(tmp_path):
    """The inpaint command sets up JAX's persistent compilation cache (--compilation-cache DIR, else
    $FDM_JAX_COMPILATION_CACHE): a second process compiles nothing it can load, and `none` disables."""
    import os

    image, mask = _image()
    cache = tmp_path / "cache"
    script = ("import sys; from jax import monitoring; hits = []; "
              "monitoring.register_event_listener(lambda n, **k: hits.append(n) if n.endswith('cache_hits') else None); "
              "from fdm_jax.inpaint import main; rc = main(sys.argv[1:]); print('HITS', len(hits)); sys.exit(rc)")
    # The tiny model's programs compile in under JAX's default 1 s threshold for writing an entry.
    env = {**os.environ, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    env.pop("FDM_JAX_COMPILATION_CACHE", None)

    def run(out, *flags, **extra):
        r = subprocess.run([sys.executable, "-c", script, *_weights(), "--image", image, "--mask", mask,
                            "--out", str(tmp_path / out), *flags], capture_output=True, text=True,
                           env={**env, **extra})
        assert r.returncode == 0, r.stderr
        return int(r.stdout.split("HITS")[1].split()[0])

    assert run("a", "--compilation-cache", str(cache)) == 0
    entries = set(os.listdir(cache))
    assert entries  # the first process wrote its programs
    assert run("b", FDM_JAX_COMPILATION_CACHE=str(cache)) >= 1  # the variable names the folder; loads
    assert set(os.listdir(cache)) == entries  # nothing compiled anew
    assert run("c", "--compilation-cache", "none", FDM_JAX_COMPILATION_CACHE=str(cache)) == 0
