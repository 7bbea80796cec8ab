"""Top-K sampling draws from the right distribution (the greedy fixture cannot show this).

The original picks each token with `torch.multinomial(softmax(logits_top_k(z) / temperature))`
(liuqk3/PUT:image_synthesis/modeling/transformers/..., utils/misc.py `logits_top_k`): the K largest
logits renormalised, nothing else ever drawn. Here the real sampling loop (`sample_tokens`) runs on
a stand-in transformer whose logits are a fixed vector at every position, over many images that each
have exactly one hole patch, each with its own key; the empirical token frequencies must match the
renormalised softmax (chi-square at a 1e-6 false-alarm level), and no token outside the top K appears.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from fdm_jax.put_fdm import PatchVQVAE
from fdm_jax.put_fdm.sampling import sample_tokens

NUM_TOKENS = 20
# Distinct logits whose ranks 4..6 (0.95, 0.9, 0.85) are close: a filter that keeps one token too
# many or too few is caught by the "never outside" check or by the chi-square.
LOGITS = np.array([1.2, -0.3, 2.0, 0.5, -1.0, 0.9, 0.95, -2.0, 0.1, 0.0,
                   -0.5, 1.5, -1.5, 0.3, -0.8, 0.2, -0.1, 0.7, -0.7, 0.85], np.float32)
DRAWS = 4000
SIZE = 16  # 2 x 2 patches of 8 x 8


class FixedLogits(nn.Module):
    """A stand-in transformer: the same logits at every position, whatever the sequence."""

    logits: tuple

    @nn.compact
    def __call__(self, x):
        z = jnp.asarray(self.logits, jnp.float32)
        return jnp.broadcast_to(z, x.shape[:2] + z.shape)


@pytest.fixture(scope="module")
def draw():
    codec = PatchVQVAE(res_ch=32, encoder_out_ch=24, embed_dim=16, decoder_in_ch=40, num_embed=48,
                       masked_embed_start=NUM_TOKENS, num_res_blocks=1)
    image = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (DRAWS, SIZE, SIZE, 3)), jnp.float32)
    mask = jnp.ones((DRAWS, SIZE, SIZE, 1), jnp.float32).at[:, :8, :8].set(0.0)  # patch 0 is the hole
    codec_vars = codec.init(jax.random.key(0), image[:1], mask[:1])
    sampler = FixedLogits(tuple(float(v) for v in LOGITS))

    def tokens(top_k, temperature, seed=0):
        fn = jax.jit(lambda cv, im, m, k: sample_tokens(codec, cv, sampler, {}, im, m, k, top_k=top_k,
                                                         temperature=temperature))
        out = fn(codec_vars, image, mask, jax.random.key(seed))
        assert int(out["num_iterations"]) == 1
        assert np.all(np.asarray(out["fill_positions"])[:, 0] == 0)
        return np.asarray(out["tokens"])[:, 0]

    return tokens


def _expected(top_k, temperature):
    keep = np.argsort(-LOGITS)[:top_k]
    p = np.zeros(NUM_TOKENS)
    z = LOGITS[keep] / temperature
    p[keep] = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return p


@pytest.mark.parametrize("top_k,temperature", [(5, 1.0), (5, 2.0), (1, 1.0), (NUM_TOKENS, 1.0)])
def test_top_k_draws_follow_the_renormalised_softmax(draw, top_k, temperature):
    t = draw(top_k, temperature)
    p = _expected(top_k, temperature)
    counts = np.bincount(t, minlength=NUM_TOKENS)
    outside = np.flatnonzero(p == 0)
    assert counts[outside].sum() == 0, f"tokens outside the top {top_k} drawn: {dict(zip(outside, counts[outside]))}"
    inside = np.flatnonzero(p > 0)
    if len(inside) == 1:  # greedy: always the argmax
        assert counts[inside[0]] == DRAWS
        return
    chi2 = float((((counts[inside] - DRAWS * p[inside]) ** 2) / (DRAWS * p[inside])).sum())
    bound = float(stats.chi2.ppf(1 - 1e-6, df=len(inside) - 1))
    assert chi2 < bound, f"chi-square {chi2:.1f} >= {bound:.1f}: counts {counts[inside]} vs expected {DRAWS * p[inside]}"


def test_the_check_rejects_a_wrong_distribution(draw):
    """The same statistic rejects draws from the wrong temperature: the test has power."""
    t = draw(5, 1.0)
    p = _expected(5, 2.0)
    inside = np.flatnonzero(p > 0)
    counts = np.bincount(t, minlength=NUM_TOKENS)
    chi2 = float((((counts[inside] - DRAWS * p[inside]) ** 2) / (DRAWS * p[inside])).sum())
    assert chi2 > float(stats.chi2.ppf(1 - 1e-6, df=len(inside) - 1))
