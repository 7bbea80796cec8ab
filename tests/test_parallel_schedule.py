"""The parallel (MaskGIT) schedule of fdm_jax.put_fdm.sampling: every image of a batch finishes in
exactly `num_passes` passes whatever its hole count, each pass fills the cosine schedule's count,
the patches it keeps are the most confident draws, samples do not depend on the batch, and
`num_passes` is traced (one program for every value)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.put_fdm.sampling import fill_step, init_state, jit_inpaint_samples, parallel_targets, sample_tokens
from test_sampling import _data, _models  # the tiny random models and holed images of test_sampling


def _tokens(image, mask, key, passes, top_k=5):
    codec, cv, sampler, sv, _, _ = _models()
    return jax.jit(lambda im, m, k, t: sample_tokens(codec, cv, sampler, sv, im, m, k, top_k=top_k,
                                                     schedule="parallel", num_passes=t))(image, mask, key, passes)


def test_cosine_targets():
    n = jnp.asarray([10, 3, 0])
    got = np.stack([np.asarray(parallel_targets(n, jnp.int32(t), 4)) for t in range(4)])
    want = np.stack([[n_ - int(np.floor(n_ * np.cos(np.pi / 2 * (t + 1) / 4))) if t < 3 else n_ for n_ in (10, 3, 0)]
                     for t in range(4)])
    np.testing.assert_array_equal(got, want)
    assert list(got[-1]) == [10, 3, 0]


@pytest.mark.parametrize("passes", [1, 3, 5])
def test_every_image_finishes_in_num_passes(passes):
    image, mask = _data(3, 4)  # holes of different sizes, the last image without one
    out = jax.tree_util.tree_map(np.asarray, _tokens(image, mask, jax.random.key(0), jnp.int32(passes)))
    assert int(out["num_iterations"]) == passes
    holes = out["num_filled"]
    assert holes[0] != holes[1] and holes[2] == 0
    for i, n in enumerate(holes):
        it = out["fill_iteration"][i][:n]
        assert (it >= 0).all() and (out["fill_iteration"][i][n:] == -1).all()
        per_pass = np.bincount(it, minlength=passes)
        cumulative = np.cumsum(per_pass)
        want = [int(parallel_targets(jnp.int32(n), jnp.int32(t), passes)) for t in range(passes)]
        # the schedule's count, at least one patch per pass while holes remain
        np.testing.assert_array_equal(cumulative, np.maximum.accumulate(np.maximum(want, np.minimum(np.arange(1, passes + 1), n))))
        assert sorted(out["fill_positions"][i][:n]) == sorted(np.flatnonzero(~np.asarray(
            init_state(*_models()[:2], image[i:i + 1], mask[i:i + 1], jax.random.key(0))[0].known[0])))


def test_a_pass_keeps_the_most_confident_draws():
    """Greedy (top_k 1): the draw is the argmax and its confidence the max softmax probability, so
    pass 0 must fill exactly the unknown positions with the largest max-probability."""
    codec, cv, sampler, sv, _, _ = _models()
    image, mask = (a[1:2] for a in _data(2, 5))  # the larger hole
    s0, _ = init_state(codec, cv, image, mask, jax.random.key(0))
    s1 = fill_step(codec, cv, sampler, sv, s0, top_k=1, schedule="parallel", num_passes=2)
    logits = np.asarray(sampler.apply(sv, s0.sequence))[0].astype(np.float64)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    conf = (p / p.sum(-1, keepdims=True)).max(-1)
    unknown = np.flatnonzero(~np.asarray(s0.known[0]))
    count = int(parallel_targets(jnp.int32(len(unknown)), jnp.int32(0), 2))
    expected = set(unknown[np.argsort(-conf[unknown], kind="stable")[:count]])
    filled = set(np.flatnonzero(np.asarray(s1.known[0]) & ~np.asarray(s0.known[0])))
    assert len(filled) == count >= 2 and filled == expected
    np.testing.assert_array_equal(np.asarray(s1.tokens[0])[sorted(filled)], logits.argmax(-1)[sorted(filled)])


def test_batch_independent_and_one_program_for_every_num_passes():
    codec, cv, sampler, sv, fdm, fv = _models()
    image, mask = _data(3, 6)
    key = jax.random.key(3)
    before = jit_inpaint_samples._cache_size()
    run = lambda im, m, k, t: jit_inpaint_samples(codec, cv, sampler, sv, fdm, fv, im, m, k, 2, top_k=5,  # noqa: E731
                                                  schedule="parallel", num_passes=t)
    batched = run(image, mask, key, jnp.int32(4))
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(3))
    alone = run(image[1:2], mask[1:2], keys[1:2], jnp.int32(4))
    np.testing.assert_array_equal(np.asarray(batched["tokens"][:, 1]), np.asarray(alone["tokens"][:, 0]))
    other = run(image, mask, key, jnp.int32(2))
    assert int(other["num_iterations"][0]) == 2 and int(batched["num_iterations"][0]) == 4
    assert jit_inpaint_samples._cache_size() - before == 2  # batch 3 and batch 1; num_passes 4 and 2 share


def test_the_encoder_runs_once_per_image_not_per_sample(monkeypatch):
    """inpaint_samples encodes the batch once, outside the vmap over sample keys (issue: the encoder
    ran N times under vmap); the samples equal per-key `inpaint` calls."""
    from fdm_jax.put_fdm import PatchVQVAE, sampling

    codec, cv, sampler, sv, fdm, fv = _models()
    image, mask = _data(2, 7)
    calls = []
    original = PatchVQVAE.get_features

    def spy(self, *a, **k):
        calls.append(type(a[0]).__name__)
        return original(self, *a, **k)

    monkeypatch.setattr(PatchVQVAE, "get_features", spy)
    out = sampling.inpaint_samples(codec, cv, sampler, sv, fdm, fv, image, mask, jax.random.key(0), 3, top_k=5)
    assert calls == ["ArrayImpl"]  # once, on the concrete batch (a BatchTracer would mean per sample)
    keys = sampling._split_keys(jax.random.key(0), 3, 2)
    one = sampling.inpaint(codec, cv, sampler, sv, fdm, fv, image, mask, keys[1], top_k=5)
    np.testing.assert_array_equal(np.asarray(out["tokens"][1]), np.asarray(one["tokens"]))
