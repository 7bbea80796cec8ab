"""TSGL structure inputs (Canny edges, gray, masks) against the original pipelines' outputs
(shared/fixtures/tsgl/structure_inputs.npz, htyjers/ConvInpaint-TSGL@e9f6438)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.tsgl import structure
from fdm_jax.parity.harness import EXIT_OK, load_fixture, run_fixture
from shared_paths import fixtures_dir, require

FIXTURE = fixtures_dir() / "tsgl" / "structure_inputs.npz"


def test_structure_inputs_fixture_passes_exactly():
    status, rows, msg = run_fixture(require(FIXTURE))
    assert status == EXIT_OK, (msg, [(r.name, r.error, r.tolerance) for r in rows if not r.ok])
    exact = [r for r in rows if r.tolerance == 0.0]
    assert {r.name for r in exact} >= {"medfe_high", "medfe_wrapped_uint8", "lama_high", "medfe_mask"}
    assert all(r.error == 0.0 for r in exact)


def test_wraparound_closed_form_over_all_bytes():
    """ToPILImage of the [-1, 1] tensor: the byte values the fixture records (0->1, 127->0, 128->1,
    255->255), and on every byte present in the fixture's images the recorded wrapped image."""
    u = np.arange(256, dtype=np.uint8)
    g = structure.wrapped_uint8(u)
    assert (g[0], g[127], g[128], g[255]) == (1, 0, 1, 255)
    fx = load_fixture(require(FIXTURE))
    raw, wrapped = fx.inputs["medfe_rgb_uint8"], fx.outputs["medfe_wrapped_uint8"]
    np.testing.assert_array_equal(g[raw], wrapped)  # the closed form is a per-byte table
    # the [0, 1] (LaMa test) pipeline does not garble
    np.testing.assert_array_equal(structure.tensor_to_uint8(structure.to_unit_range(u)), u)


def test_single_image_equals_batch_entry_and_jax_callback():
    fx = load_fixture(require(FIXTURE))
    rgb = fx.inputs["lama_rgb_uint8"][:2, :64, :96]
    e_b, g_b = structure.edge_and_gray(rgb, wraparound=True)
    e_1, g_1 = structure.edge_and_gray(rgb[1], wraparound=True)
    assert e_b.shape == (2, 64, 96, 1) and e_1.shape == (64, 96, 1)
    np.testing.assert_array_equal(e_b[1], e_1)
    np.testing.assert_array_equal(g_b[1], g_1)
    # inside jit, on the tensor the pipeline holds ([-1, 1] with the wrap-around)
    e_j, g_j = jax.jit(lambda x: structure.structure_maps_jax(x, wraparound=True))(
        jnp.asarray(structure.normalize_image(rgb)))
    np.testing.assert_array_equal(np.asarray(e_j), e_b)
    np.testing.assert_array_equal(np.asarray(g_j), g_b)
    assert set(np.unique(e_b)) <= {0.0, 1.0}


def test_known_mask_polarity_and_pil_nearest_resize():
    m = np.zeros((8, 8), np.uint8)
    m[2:5, 1:4] = 255  # 255 = hole in the files
    k = structure.known_mask(m)
    assert k.shape == (8, 8, 1) and k[3, 2, 0] == 0.0 and k[0, 0, 0] == 1.0
    # PIL NEAREST 8 -> 4 samples source pixels 2i+1 (dataset_loader1.py's Resize), not 2i as PyTorch would
    k4 = structure.known_mask(m, (4, 4))[..., 0]
    np.testing.assert_array_equal(k4, 1.0 - m[1::2, 1::2] / 255.0)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 4, 3), np.float32), "uint8"),
    (np.zeros((4, 4), np.uint8), r"\(H, W, 3\)"),
])
def test_bad_inputs_name_the_input(bad, match):
    with pytest.raises(ValueError, match=match):
        structure.edge_and_gray(bad, wraparound=False)


def test_bad_mask_and_callback_inputs():
    with pytest.raises(ValueError, match="mask_uint8"):
        structure.known_mask(np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="image"):
        structure.structure_maps_jax(jnp.zeros((4, 4, 3)))
