"""Pluralistic inference (fdm_jax.put_fdm.sampling): parity with the original's InpaintingModel.sample, keys,
batch independence, one compiled program, and what is kept / pasted."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.put_fdm import FeatureDequantizer, FeatureSampler, PatchVQVAE
from fdm_jax.parity import EXIT_OK, run_fixture
from fdm_jax.parity.harness import compare, load_fixture
from fdm_jax.put_fdm.sampling import (composite, image_keys, inpaint, inpaint_samples, jit_inpaint_samples,
                              sample_tokens)
from shared_paths import fixtures_dir, require

PUT = fixtures_dir() / "put_fdm"
PTHS = ("put_fdm_codec_fdm_tuning.pth", "put_fdm_transformer.pth")


# -- (a) parity with the original ----------------------------------------------------------------

@pytest.mark.parametrize("weights", [(), PTHS], ids=["params", "pth"])
@pytest.mark.parametrize("fixture", ["sampling_greedy.npz", "sampling_greedy_k4.npz"])
def test_sampling_fixture_passes(fixture, weights):
    path = require(PUT / fixture)
    files = tuple(str(require(PUT / w)) for w in weights)
    status, rows, msg = run_fixture(path, files)
    assert rows, msg
    # Every recorded output is compared, the iteration structure of num_token_per_iter > 1 included.
    assert {r.name for r in rows} >= {"tokens", "fill_positions", "num_iterations"}
    if "k4" in fixture:
        assert {r.name for r in rows} >= {"fill_iteration", "iter_positions", "iter_tokens", "iter_num_filled"}
    bad = [f"{r.name}: err {r.error} > tol {r.tolerance} {r.note}" for r in rows if not r.ok]
    assert status == EXIT_OK and not bad, f"{msg}; {bad}"


def test_equal_infinities_compare_as_equal():
    """The recorded top-50 filtered logits are -inf outside the top 50; the harness must count equal
    infinities as 0 error and a finite value where -inf was recorded as a failure."""
    fx = load_fixture(require(PUT / "sampling_greedy.npz"))
    ref = fx.outputs["r50_first_filtered_logits"]
    assert np.isneginf(ref).any()
    rows = {r.name: r for r in compare(fx, {"r50_first_filtered_logits": ref.copy()})}
    assert rows["r50_first_filtered_logits"].ok
    broken = np.where(np.isneginf(ref), 0.0, ref).astype(ref.dtype)
    rows = {r.name: r for r in compare(fx, {"r50_first_filtered_logits": broken})}
    assert not rows["r50_first_filtered_logits"].ok


# -- tiny random models --------------------------------------------------------------------------

CODEC = dict(res_ch=32, encoder_out_ch=24, embed_dim=16, decoder_in_ch=40, num_embed=48, masked_embed_start=20,
             num_res_blocks=2)
SIZE = 32  # 4 x 4 patches of 8 x 8


def _numpy_init(module, *inputs, seed=0):
    """Variables of `module` drawn with numpy from its abstract init (jax's own init of these modules
    compiles one threefry program per parameter, ~15 s on 2 cores): kernels U(+-1/sqrt(fan_in)) as
    PyTorch, biases small, LayerNorm scales 1, codebook N(0, 1) as the quantizer's init."""
    rng = np.random.default_rng(seed)
    abstract = jax.eval_shape(module.init, jax.random.key(0), *inputs)

    def leaf(path, x):
        name = str(path[-1].key)
        if name == "kernel":
            b = 1.0 / np.sqrt(np.prod(x.shape[:-1]))
            return rng.uniform(-b, b, x.shape).astype(x.dtype)
        if name == "scale":
            return np.ones(x.shape, x.dtype)
        if name == "cluster_size":
            return np.zeros(x.shape, x.dtype)
        if name in ("embedding", "embedding_avg"):
            return rng.standard_normal(x.shape).astype(x.dtype)
        return rng.uniform(-0.05, 0.05, x.shape).astype(x.dtype)  # biases, pos_emb

    return jax.tree_util.tree_map_with_path(lambda p, x: jnp.asarray(leaf(p, x)), abstract)


@functools.lru_cache(maxsize=None)
def _models():
    codec = PatchVQVAE(**CODEC)
    h = SIZE // codec.patch_size
    sampler = FeatureSampler(num_layers=1, width=32, num_heads=2, seq_len=h * h,
                             num_tokens=codec.masked_embed_start, feature_dim=codec.embed_dim)
    fdm = FeatureDequantizer(embed_dim=codec.embed_dim, num_res_blocks=1)
    image, mask = _data(1, 0)
    cv = _numpy_init(codec, image, mask, seed=0)
    sv = _numpy_init(sampler, jnp.zeros((1, h * h, codec.embed_dim)), seed=1)
    fv = _numpy_init(fdm, jnp.zeros((1, h, h, codec.embed_dim)), jnp.ones((1, h, h, 1)), seed=2)
    return codec, cv, sampler, sv, fdm, fv


def _data(batch, seed):
    """Images with holes of different sizes per image; the last image of a batch > 2 has no hole."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 255, (batch, SIZE, SIZE, 3)).astype(np.float32)
    mask = np.ones((batch, SIZE, SIZE, 1), np.float32)
    for i in range(batch):
        if batch > 2 and i == batch - 1:
            continue
        y, x = rng.integers(0, SIZE // 2, 2)
        s = 6 + 5 * i
        mask[i, y:y + s, x:x + s] = 0
    return jnp.asarray(image), jnp.asarray(mask)


@functools.lru_cache(maxsize=None)
def _inpaint_fn(top_k=50):
    codec, cv, sampler, sv, fdm, fv = _models()
    return jax.jit(lambda image, mask, key: inpaint(codec, cv, sampler, sv, fdm, fv, image, mask, key, top_k=top_k))


def _np(d):
    return {k: np.asarray(v) for k, v in d.items()}


# -- (b) keys ------------------------------------------------------------------------------------

def test_same_key_same_sample_different_key_different_sample():
    f = _inpaint_fn()
    image, mask = _data(2, 1)
    a, b = _np(f(image, mask, jax.random.key(1))), _np(f(image, mask, jax.random.key(1)))
    c = _np(f(image, mask, jax.random.key(2)))
    np.testing.assert_array_equal(a["tokens"], b["tokens"])
    np.testing.assert_array_equal(a["inpainted_image"], b["inpainted_image"])
    assert (a["tokens"] != c["tokens"]).any()
    assert (a["inpainted_image"] != c["inpainted_image"]).any()
    # Sampled tokens are unmasked codes; known positions keep the quantizer's own tokens.
    filled = a["token_type"].reshape(2, -1) != 1
    assert (a["tokens"][filled] < CODEC["masked_embed_start"]).all()
    np.testing.assert_array_equal(a["tokens"][~filled], a["input_token"].reshape(2, -1)[~filled])
    # Fill order: each masked position exactly once, -1 padding after the image's count.
    for i in range(2):
        n = int(a["num_filled"][i])
        assert sorted(a["fill_positions"][i, :n]) == list(np.flatnonzero(filled[i]))
        assert (a["fill_positions"][i, n:] == -1).all() and (a["fill_tokens"][i, n:] == -1).all()
        np.testing.assert_array_equal(a["tokens"][i, a["fill_positions"][i, :n]], a["fill_tokens"][i, :n])
    assert int(a["num_iterations"]) == a["num_filled"].max()


# -- (c) batch independence ----------------------------------------------------------------------

def test_batched_equals_per_image():
    f = _inpaint_fn()
    image, mask = _data(3, 2)  # hole sizes differ; image 2 has no hole (never changes)
    key = jax.random.key(3)
    full = _np(f(image, mask, key))
    keys = image_keys(key, 3)
    assert full["num_filled"][0] != full["num_filled"][1] and full["num_filled"][2] == 0
    for i in range(3):
        one = _np(f(image[i:i + 1], mask[i:i + 1], keys[i:i + 1]))
        for name in ("tokens", "fill_positions", "fill_tokens", "num_filled"):
            np.testing.assert_array_equal(one[name][0], full[name][i], err_msg=name)
        for name in ("generated_feature", "feature_after_fdm", "inpainted_image"):
            np.testing.assert_allclose(one[name][0], full[name][i], rtol=0, atol=1e-4, err_msg=name)


def test_inpaint_samples_is_batch_independent_and_pluralistic():
    codec, cv, sampler, sv, fdm, fv = _models()
    image, mask = _data(2, 4)
    run = jax.jit(lambda x, m, k: inpaint_samples(codec, cv, sampler, sv, fdm, fv, x, m, k, 3))
    key = jax.random.key(5)
    s = _np(run(image, mask, key))
    assert s["inpainted_image"].shape == (3, 2, SIZE, SIZE, 3) and s["tokens"].shape == (3, 2, 16)
    assert len({s["tokens"][n, 0].tobytes() for n in range(3)}) > 1  # samples differ
    one = _np(run(image[1:], mask[1:], image_keys(key, 2)[1:]))
    np.testing.assert_array_equal(one["tokens"][:, 0], s["tokens"][:, 1])


# -- (d) one compiled program --------------------------------------------------------------------

def _primitives(jaxpr):
    """Primitive names of a jaxpr and of the jaxprs in its equations' params (jit, while, cond...)."""
    for eqn in jaxpr.eqns:
        yield eqn.primitive.name
        for p in eqn.params.values():
            for j in (p if isinstance(p, (tuple, list)) else (p,)):
                inner = j if hasattr(j, "eqns") else getattr(j, "jaxpr", None)
                if hasattr(inner, "eqns"):
                    yield from _primitives(inner)


def test_whole_loop_is_one_compiled_call():
    codec, cv, sampler, sv, fdm, fv = _models()
    f = jax.jit(lambda x, m, k: inpaint(codec, cv, sampler, sv, fdm, fv, x, m, k))
    (i1, m1), (i2, m2) = _data(2, 6), _data(2, 7)
    r1 = f(i1, m1, jax.random.key(1))
    r2 = f(i2, m2, jax.random.key(2))
    jax.block_until_ready((r1, r2))
    assert f._cache_size() == 1
    assert "while" in set(_primitives(jax.make_jaxpr(f)(i1, m1, jax.random.key(1)).jaxpr))


# -- num_token_per_iter ---------------------------------------------------------------------------

def test_num_token_per_iter_cuts_passes_without_recompiling():
    """k tokens per pass: ceil(#masked / k) transformer passes, each filling k picks in topk order (the
    last only the remainder); k is a traced argument, so changing it reuses the compiled program."""
    codec, cv, sampler, sv, *_ = _models()
    image, _ = _data(2, 12)
    mask = np.ones((2, SIZE, SIZE, 1), np.float32)
    mask[0, 2:30, 1:29] = 0  # holes over most patches, of different counts per image
    mask[1, 5:23, 9:31] = 0
    f = jax.jit(lambda x, m, key, k: sample_tokens(codec, cv, sampler, sv, x, m, key, top_k=1,
                                                   num_token_per_iter=k))
    one = _np(f(image, mask, jax.random.key(0), 1))
    four = _np(f(image, mask, jax.random.key(0), 4))
    every = _np(f(image, mask, jax.random.key(0), -1))
    assert f._cache_size() == 1
    filled = one["num_filled"]
    assert filled.max() >= 8 and (filled == four["num_filled"]).all()
    assert int(one["num_iterations"]) == filled.max()
    assert int(four["num_iterations"]) == -(-filled.max() // 4)  # ~1/4 of the passes
    assert int(every["num_iterations"]) == 1
    # k = -1 is the original's one-pass branch: the whole sequence re-embedded from its tokens, so known
    # patches hold their quantized codes there (and their unquantized features with k >= 1 < L).
    emb = np.asarray(cv["codebook"]["quantizer"]["embedding"])
    known = every["token_type"].reshape(2, -1) == 1
    gen = every["generated_feature"].reshape(2, known.shape[1], -1)
    np.testing.assert_array_equal(gen[known], emb[every["tokens"][known]])
    assert (four["generated_feature"].reshape(gen.shape)[known] != gen[known]).any()
    for i in range(2):
        n = int(filled[i])
        it = four["fill_iteration"][i, :n]
        np.testing.assert_array_equal(it, np.arange(n) // 4)  # 4 per pass, the remainder in the last
        assert (four["fill_iteration"][i, n:] == -1).all()
        assert sorted(four["fill_positions"][i, :n]) == sorted(one["fill_positions"][i, :n])
        np.testing.assert_array_equal(four["tokens"][i, four["fill_positions"][i, :n]], four["fill_tokens"][i, :n])
    with pytest.raises(ValueError, match="num_token_per_iter"):
        sample_tokens(codec, cv, sampler, sv, image, mask, jax.random.key(0), num_token_per_iter=0)


def test_jitted_entry_compiles_once_for_new_images_keys_and_weights():
    """jit_inpaint_samples takes the weights as arguments: new images, keys, weights (same shapes),
    num_token_per_iter and temperature reuse one program, and the new weights are really used."""
    codec, cv, sampler, sv, fdm, fv = _models()
    run = lambda x, m, key, cv, sv, fv, k=1, t=1.0: _np(jit_inpaint_samples(
        codec, cv, sampler, sv, fdm, fv, x, m, key, 2, top_k=3, num_token_per_iter=np.int32(k),
        temperature=np.float32(t)))
    (i1, m1), (i2, m2) = _data(2, 13), _data(2, 14)
    run(i1, m1, jax.random.key(1), cv, sv, fv)
    size = jit_inpaint_samples._cache_size()
    shift = lambda tree: jax.tree_util.tree_map(lambda x: x + 0.01, tree)
    a = run(i2, m2, jax.random.key(2), cv, sv, fv, k=2, t=0.5)
    b = run(i2, m2, jax.random.key(2), shift(cv), shift(sv), shift(fv), k=2, t=0.5)
    assert jit_inpaint_samples._cache_size() == size
    assert (a["inpainted_image"] != b["inpainted_image"]).any()  # the weights are inputs, not constants


# -- (e), (f) what is kept and what is pasted ----------------------------------------------------

def test_known_patches_keep_unquantized_features_and_composite_pastes_known_pixels():
    codec, cv, *_ = _models()
    image, mask = _data(2, 8)
    o = _np(_inpaint_fn()(image, mask, jax.random.key(9)))
    known = o["token_type"] == 1
    assert known.any() and (~known).any()
    np.testing.assert_array_equal(o["generated_feature"][known], o["input_feature"][known])
    # Filled patches hold exact codebook rows E[t].
    emb = np.asarray(cv["codebook"]["quantizer"]["embedding"])
    tokens = o["tokens"].reshape(known.shape)
    np.testing.assert_array_equal(o["generated_feature"][~known], emb[tokens[~known]])
    # FDM only changes masked patches.
    np.testing.assert_array_equal(o["feature_after_fdm"][known], o["input_feature"][known])

    out = np.asarray(composite(jnp.asarray(o["inpainted_image"]), image, mask))
    k = np.asarray(mask)[..., 0] != 0
    np.testing.assert_array_equal(out[k], np.asarray(image)[k])
    np.testing.assert_array_equal(out[~k], o["inpainted_image"][~k])
    assert (o["inpainted_image"][k] != np.asarray(image)[k]).any()  # the raw output does not paste them


def test_greedy_sampling_ignores_the_key():
    codec, cv, sampler, sv, *_ = _models()
    image, mask = _data(2, 10)
    f = jax.jit(lambda k: sample_tokens(codec, cv, sampler, sv, image, mask, k, top_k=1)["tokens"])
    np.testing.assert_array_equal(np.asarray(f(jax.random.key(0))), np.asarray(f(jax.random.key(1))))


def test_without_fdm_decodes_the_generated_grid():
    codec, cv, sampler, sv, fdm, fv = _models()
    image, mask = _data(2, 11)
    key = jax.random.key(4)
    with_fdm = _np(_inpaint_fn()(image, mask, key))
    plain = _np(jax.jit(lambda x, m, k: inpaint(codec, cv, sampler, sv, None, None, x, m, k, use_fdm=False))(
        image, mask, key))
    np.testing.assert_array_equal(plain["tokens"], with_fdm["tokens"])  # FDM does not touch sampling
    np.testing.assert_array_equal(plain["feature_after_fdm"], plain["generated_feature"])
    assert "pv" not in plain and (plain["inpainted_image"] != with_fdm["inpainted_image"]).any()


def test_same_samples_on_one_and_eight_devices():
    """The same key gives the same tokens whether the batch runs on one device or is sharded over 8."""
    from jax.sharding import NamedSharding, PartitionSpec as P

    codec, cv, sampler, sv, fdm, fv = _models()
    image, mask = _data(8, 5)
    key = jax.random.key(7)

    def run(image, mask):
        return inpaint(codec, cv, sampler, sv, fdm, fv, image, mask, key)

    one = _np(jax.jit(run)(image, mask))
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    data = NamedSharding(mesh, P("data"))
    eight = _np(jax.jit(run)(jax.device_put(image, data), jax.device_put(mask, data)))
    np.testing.assert_array_equal(one["tokens"], eight["tokens"])
    np.testing.assert_allclose(one["inpainted_image"], eight["inpainted_image"], atol=1e-3)


@pytest.mark.parametrize("per_iter", [1, 3])
def test_fill_step_is_the_loops_pass(per_iter):
    """The public single pass, jitted and called from Python until every patch is known, gives the
    same tokens, fill order and passes as `sample_tokens`' while_loop."""
    from fdm_jax.put_fdm.sampling import fill_step, init_state

    codec, cv, sampler, sv, _, _ = _models()
    image, mask = _data(2, 5)
    key = jax.random.key(11)
    ref = jax.jit(lambda i, m, k: sample_tokens(codec, cv, sampler, sv, i, m, k, top_k=5,
                                                num_token_per_iter=per_iter))(image, mask, key)
    state, _ = init_state(codec, cv, image, mask, key)
    step = jax.jit(lambda s: fill_step(codec, cv, sampler, sv, s, top_k=5, num_token_per_iter=per_iter))
    passes = 0
    while not bool(np.all(np.asarray(state.known))):
        state = step(state)
        passes += 1
    assert passes == int(ref["num_iterations"]) > 1
    for name in ("tokens", "fill_positions", "fill_tokens", "fill_iteration"):
        np.testing.assert_array_equal(np.asarray(getattr(state, name)), np.asarray(ref[name]), err_msg=name)
