"""Properties of the core modules that hold at any size (the fixtures pin the numbers at one size)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from fdm_jax.convert.put_fdm import convert_codec, convert_fdm, convert_sampler
from fdm_jax.put_fdm import (FeatureDequantizer, FeatureSampler, PatchVQVAE, masked_patch_index,
                            nearest_downsample, token_type)
from fdm_jax.put_fdm.vector_quantizer import nearest_codes

SMALL = dict(res_ch=32, encoder_out_ch=24, embed_dim=16, decoder_in_ch=40, num_embed=48, masked_embed_start=20)


def test_patch_mask_rules_differ_as_the_original():
    mask = np.ones((1, 16, 16, 1), np.float32)
    mask[0, 3, 5] = 0          # one hole pixel inside patch (0, 0), not its top-left pixel
    mask[0, 8:16, 8:16] = 0    # patch (1, 1) fully missing
    mask[0, 8, 0] = 0          # top-left pixel of patch (1, 0)
    tt = np.asarray(token_type(jnp.asarray(mask), 8))[0]
    np.testing.assert_array_equal(tt, [[2, 1], [2, 0]])
    m = np.asarray(masked_patch_index(jnp.asarray(mask), 8))[0, ..., 0]
    np.testing.assert_array_equal(m, [[1, 0], [1, 1]])
    near = np.asarray(nearest_downsample(jnp.asarray(mask), 8))[0, ..., 0]
    np.testing.assert_array_equal(near, [[1, 1], [0, 0]])  # the decoder sees patch (0, 0) as known


def test_dual_codebook_ranges():
    key = jax.random.key(1)
    z, e = jax.random.normal(key, (50, 8)), jax.random.normal(jax.random.key(2), (30, 8))
    tt = jnp.asarray(np.arange(50) % 3)
    idx = np.asarray(nearest_codes(z, e, tt, 12))
    assert (idx[np.asarray(tt) == 1] < 12).all() and (idx[np.asarray(tt) != 1] >= 12).all()
    d = ((np.asarray(z)[:, None] - np.asarray(e)[None]) ** 2).sum(-1)
    for i in range(50):
        lo, hi = (0, 12) if tt[i] == 1 else (12, 30)
        assert idx[i] == lo + np.argmin(d[i, lo:hi])


def _codec_and_vars(h=48, w=80, seed=0):
    codec = PatchVQVAE(**SMALL)
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    image = jax.random.uniform(k1, (4, h, w, 3), maxval=255.0)
    mask = (jax.random.uniform(k2, (4, h, w, 1)) > 0.3).astype(jnp.float32)
    variables = codec.init(k3, image, mask)
    return codec, variables, image, mask


def test_codec_non_square_and_patch_locality():
    codec, v, image, mask = _codec_and_vars()
    out = codec.apply(v, image, mask)
    assert out.shape == image.shape and float(out.min()) >= 0 and float(out.max()) <= 255
    # The encoder is patch-local: changing hole pixels of other patches leaves known patches unchanged.
    g1 = codec.apply(v, image, mask, method=PatchVQVAE.get_features)
    image2 = jnp.where(mask > 0, image, 255.0 - image)  # only hole pixels change, and holes are -1 anyway
    g2 = codec.apply(v, image2, mask, method=PatchVQVAE.get_features)
    np.testing.assert_array_equal(np.asarray(g1["feature"]), np.asarray(g2["feature"]))


def test_straight_through_gradient():
    codec, v, image, mask = _codec_and_vars()
    f = codec.apply(v, image, mask, method=PatchVQVAE.get_features)["feature"]
    grad = jax.grad(lambda z: codec.apply(v, z, method=PatchVQVAE.quantize)["quantize"].sum())(f)
    np.testing.assert_allclose(np.asarray(grad), 1.0)


def test_ema_update_same_on_one_and_eight_devices():
    """EMA statistics are global-batch sums under a batch-sharded jit (the original all-reduces them)."""
    codec, v, image, mask = _codec_and_vars(h=32, w=32)
    image, mask = jnp.tile(image, (2, 1, 1, 1)), jnp.tile(mask, (2, 1, 1, 1))  # batch 8

    def step(variables, image, mask):
        (_, rec, q), state = codec.apply(variables, image, mask, mask, method=PatchVQVAE.train_forward,
                                         mutable=["codebook"])
        return rec, state["codebook"]

    rec1, cb1 = jax.jit(step)(v, image, mask)
    assert len(jax.devices()) == 8
    # Auto axes: GSPMD propagates the batch sharding through the patch reshapes.
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    data = NamedSharding(mesh, P("data"))
    rep = NamedSharding(mesh, P())
    v8 = jax.device_put(v, rep)
    rec8, cb8 = jax.jit(step, out_shardings=(data, rep))(v8, jax.device_put(image, data), jax.device_put(mask, data))
    np.testing.assert_allclose(np.asarray(rec8), np.asarray(rec1), atol=1e-4)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6),
                 cb8, cb1)
    assert not np.allclose(np.asarray(cb1["quantizer"]["embedding"]), np.asarray(v["codebook"]["quantizer"]["embedding"]))


def _to_torch_layout(tree, key_fn):
    """Invert a conversion: Flax variables -> a PyTorch-layout state_dict (tests the converter generically)."""
    from fdm_jax.convert.put_fdm import _path_names
    from fdm_jax.nn.layout import FLAX_TO_TORCH
    sd = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key, kind = key_fn(_path_names(path))
        sd[key] = FLAX_TO_TORCH[kind](np.asarray(leaf))
    return sd


@pytest.mark.parametrize("seed", [0, 1])
def test_converters_round_trip_at_other_sizes(seed):
    from fdm_jax.convert import put_fdm as c
    codec, v, image, mask = _codec_and_vars(seed=seed)
    sd = _to_torch_layout(v, c._codec_key)
    assert sd["decoder.up_layers.2.deconv.weight"].shape == (16, 8, 4, 4)  # (in, out, k, k), R/2 -> R/4
    back = convert_codec(sd, codec)
    jax.tree.map(np.testing.assert_array_equal, back, v)

    fdm = FeatureDequantizer(embed_dim=12, num_res_blocks=3)
    fv = fdm.init(jax.random.key(seed), jnp.zeros((1, 5, 7, 12)), jnp.ones((1, 5, 7, 1)))
    sd = _to_torch_layout(fv, c._fdm_key(3))
    assert sd["mix.0.weight"].shape == (12, 13, 3, 3) and "mix.5.weight" in sd
    jax.tree.map(np.testing.assert_array_equal, convert_fdm(sd, fdm), fv)

    s = FeatureSampler(num_layers=3, width=24, num_heads=3, mlp_ratio=2, seq_len=35, num_tokens=20, feature_dim=16)
    sv = s.init(jax.random.key(seed), jnp.zeros((1, 35, 16)))
    sd = _to_torch_layout(sv, c._sampler_key)
    assert sd["blocks.2.mlp.0.weight"].shape == (48, 24) and sd["pos_emb"].shape == (1, 35, 24)
    jax.tree.map(np.testing.assert_array_equal, convert_sampler(sd, s), sv)


def test_fdm_output_is_zero_on_known_patches():
    fdm = FeatureDequantizer(embed_dim=8, num_res_blocks=2)
    qv = jax.random.normal(jax.random.key(0), (2, 6, 6, 8))
    m = (jax.random.uniform(jax.random.key(1), (2, 6, 6, 1)) > 0.5).astype(jnp.float32)
    v = fdm.init(jax.random.key(2), qv, m)
    pv = np.asarray(fdm.apply(v, qv, m))
    assert np.all(pv[np.asarray(m[..., 0]) == 0] == 0) and np.abs(pv).sum() > 0


def test_sampler_rejects_wrong_sequence_length():
    s = FeatureSampler(num_layers=1, width=8, num_heads=2, seq_len=16, num_tokens=4, feature_dim=4)
    with pytest.raises(ValueError, match="sequence length 9 != seq_len 16"):
        s.init(jax.random.key(0), jnp.zeros((1, 9, 4)))


def test_dot_product_attention_is_bit_identical_on_cpu():
    """attention='dot_product' (jax.nn.dot_product_attention) gives the einsum path's logits bit for
    bit on CPU at float32, with the same parameters; an unknown name is an error."""
    einsum = FeatureSampler(num_layers=2, width=32, num_heads=4, seq_len=16, num_tokens=12, feature_dim=8)
    fused = FeatureSampler(num_layers=2, width=32, num_heads=4, seq_len=16, num_tokens=12, feature_dim=8,
                           attention="dot_product")
    x = jax.random.normal(jax.random.key(0), (2, 16, 8))
    v = einsum.init(jax.random.key(1), x)
    v = jax.tree_util.tree_map(lambda a: a + 0.05 * jax.random.normal(jax.random.key(2), a.shape), v)  # pos_emb != 0
    a, b = np.asarray(einsum.apply(v, x)), np.asarray(fused.apply(v, x))
    assert np.array_equal(a, b) and np.abs(a).max() > 0
    with pytest.raises(ValueError, match="attention"):
        FeatureSampler(num_layers=1, width=32, num_heads=4, seq_len=16, num_tokens=12, feature_dim=8,
                       attention="flash").init(jax.random.key(1), x)
