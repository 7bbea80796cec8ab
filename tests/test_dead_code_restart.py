"""The opt-in dead-code restart of the EMA quantizer (not in the original; configs/put_fdm_small.py
uses it): codes whose EMA count is below the threshold move onto batch features of their own token
type, the others are untouched, and with the default (0) the quantizer is the original's."""

import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.put_fdm.vector_quantizer import VectorQuantizer, restart_dead_codes


def test_dead_codes_move_onto_features_of_their_token_type():
    n_e, start, d = 8, 4, 3
    emb = jnp.full((n_e, d), 1e5)
    cs = jnp.array([5.0, 0.1, 2.0, 0.0, 0.2, 3.0, 0.0, 4.0])
    avg = emb * cs[:, None]
    z = jnp.arange(30, dtype=jnp.float32).reshape(10, 3)
    tt = jnp.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])  # 1 = fully known patch (codes < start)
    e2, cs2, avg2 = restart_dead_codes(emb, cs, avg, z, tt, start, 0.5)
    dead = np.asarray(cs) < 0.5
    np.testing.assert_array_equal(np.asarray(e2)[~dead], np.asarray(emb)[~dead])
    np.testing.assert_array_equal(np.asarray(cs2), np.where(dead, 1.0, cs))
    rows = {tuple(r) for r in np.asarray(z)}
    for k in np.flatnonzero(dead):
        assert tuple(np.asarray(e2)[k]) in rows
        j = [tuple(r) for r in np.asarray(z)].index(tuple(np.asarray(e2)[k]))
        assert (tt[j] == 1) == (k < start), f"code {k} restarted on a feature of the other token type"
    np.testing.assert_array_equal(np.asarray(avg2)[dead], np.asarray(e2)[dead])  # pseudo-count 1


def test_restart_keeps_codebook_in_use_where_the_original_collapses():
    z = jax.random.normal(jax.random.key(1), (2, 8, 8, 4)) * 0.1 + 2.0  # features far from N(0, 1) codes
    used = {}
    for restart in (0.0, 0.5):
        vq = VectorQuantizer(num_embed=32, embed_dim=4, masked_embed_start=16, dead_code_restart=restart)
        v = vq.init(jax.random.key(0), z)
        for _ in range(3):
            _, upd = vq.apply(v, z, jnp.ones(z.shape[:3], jnp.int32), update_ema=True, mutable=["codebook"])
            v = {**v, **upd}
        out = vq.apply(v, z, jnp.ones(z.shape[:3], jnp.int32))
        used[restart] = len(np.unique(np.asarray(out["index"])))
    assert used[0.5] >= 8 > used[0.0], used
