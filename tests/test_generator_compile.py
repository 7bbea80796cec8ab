"""The one-shot generators behind `inpaint --model ...` compile once per model and input shape:
their variables and images are arguments of module-level jitted functions (fdm_jax.inference.generators)."""

import jax
import numpy as np

from fdm_jax.inference import generators as gi
from fdm_jax.lama.generator import FFCResNetGenerator, random_variables


def test_lama_compiles_once_across_images_and_weights():
    model = FFCResNetGenerator(ngf=4, n_blocks=1)
    gen = gi.Generator("lama", {}, model, random_variables(model, seed=3))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(2)]
    known = np.ones((40, 48), np.float32)
    known[10:30, 12:36] = 0
    a = gi.inpaint(gen, images[0], known)
    size = gi._lama_predict._cache_size()
    b = gi.inpaint(gen, images[1], known)
    other = gi.Generator("lama", {}, model, jax.tree.map(lambda x: x * 1.1, gen.variables))
    c = gi.inpaint(other, images[0], known)
    assert gi._lama_predict._cache_size() == size
    hole = known == 0
    assert (a[hole] != b[hole]).any() and (a[hole] != c[hole]).any()  # new images and weights are used
