"""model.dtype = 'bfloat16' (issue 14): the PUT + FDM models compute their matmuls/convolutions in
bfloat16 with float32 parameters, keep LayerNorm, softmax, the residual stream, the logits and the
codebook search in float32, and stay within bfloat16's rounding of the float32 result.

Tolerances: bfloat16 keeps 8 significant bits, unit roundoff u = 2^-8. A matmul whose two inputs are
rounded to bfloat16 and whose output is rounded once more (float32 accumulation in between) is off
by at most ~3u relative to sum|terms| (first order, Higham eq. 3.5 with the inputs' rounding). The
errors of a chain of such stages add to first order, so a model with S stages in series is within
3 u S of its float32 result relative to the size of the values (cancellation can make an individual
small output relatively worse, hence the comparison against max |reference|).
benchmarks/bf16_difference.py measures the difference on a real image (the README's bfloat16 paragraph; benchmarks/results/bf16_difference_cpu.json)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.put_fdm import FeatureDequantizer, FeatureSampler, PatchVQVAE, build_models

U_BF16 = 2.0 ** -8
KW = dict(num_layers=2, width=64, num_heads=4, mlp_ratio=4, seq_len=16, num_tokens=16, feature_dim=8)
CODEC = dict(res_ch=32, encoder_out_ch=24, embed_dim=16, decoder_in_ch=40, num_embed=48, masked_embed_start=20)


def _perturbed(variables, scale=0.05):
    leaves, tree = jax.tree_util.tree_flatten(variables)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def _eqns(jaxpr):
    for eqn in jaxpr.eqns:
        yield eqn
        for p in eqn.params.values():
            for sub in (p if isinstance(p, (tuple, list)) else (p,)):
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    yield from _eqns(sub)


def _dots(jaxpr):
    """(operand dtypes, output dtype) of every dot_general / conv in the program."""
    return [(tuple(str(v.aval.dtype) for v in e.invars), str(e.outvars[0].aval.dtype))
            for e in _eqns(jaxpr) if e.primitive.name in ("dot_general", "conv_general_dilated")]


def _sampler(dtype, scan=False):
    m = FeatureSampler(**KW, dtype=dtype, scan_blocks=scan)
    x = jax.random.normal(jax.random.key(1), (2, KW["seq_len"], KW["feature_dim"]))
    return m, x


@pytest.mark.parametrize("scan", [False, True])
def test_bf16_sampler_computes_in_bf16(scan):
    m, x = _sampler("bfloat16", scan)
    v = m.init(jax.random.key(0), x)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(v)} == {jnp.dtype("float32")}  # param_dtype float32
    jaxpr = jax.make_jaxpr(m.apply)(v, x).jaxpr
    dots = _dots(jaxpr)
    bf16 = [d for d in dots if set(d[0]) == {"bfloat16"}]
    # emb_proj, then per block q, k, v, q.k, att.v, proj, fc1, fc2 (a scanned program holds one block).
    blocks = 1 if scan else KW["num_layers"]
    assert len(bf16) == 1 + 8 * blocks, dots
    # q.k scores come out in float32 (softmax in float32); to_logits is a float32 matmul.
    assert (("bfloat16", "bfloat16"), "float32") in dots
    assert dots[-1] == (("float32", "float32"), "float32")
    assert jax.eval_shape(m.apply, v, x).dtype == jnp.float32


def test_float32_sampler_has_no_bf16():
    m, x = _sampler("float32")
    v = m.init(jax.random.key(0), x)
    jaxpr = jax.make_jaxpr(m.apply)(v, x).jaxpr
    assert all(str(o.aval.dtype) != "bfloat16" for e in _eqns(jaxpr) for o in e.outvars)


def test_bf16_sampler_close_to_float32():
    m32, x = _sampler("float32")
    m16, _ = _sampler("bfloat16")
    v = _perturbed(m32.init(jax.random.key(0), x))
    ref, out = m32.apply(v, x), m16.apply(v, x)
    # Stages in series: emb_proj, per block q/k/v, att.v (att rounded), proj, fc1, gelu (a bf16
    # elementwise op, one rounding: counted as one third of a stage) and fc2.
    stages = 1 + KW["num_layers"] * (5 + 1 / 3)
    tol = 3 * U_BF16 * stages * float(jnp.max(jnp.abs(ref)))
    err = float(jnp.max(jnp.abs(out - ref)))
    assert 0 < err <= tol, (err, tol)  # > 0: it did compute differently
    # The ranking the sequential schedule uses survives on most positions (random logits are close).
    assert float(jnp.mean(jnp.argmax(out, -1) == jnp.argmax(ref, -1))) >= 0.75


def test_bf16_codec_and_fdm_close_to_float32():
    s = 32
    image = jax.random.uniform(jax.random.key(2), (1, s, s, 3)) * 255
    mask = jnp.ones((1, s, s, 1)).at[:, 8:24, 8:20].set(0)
    c32, c16 = PatchVQVAE(**CODEC), PatchVQVAE(**CODEC, dtype="bfloat16")
    v = jax.jit(c32.init)(jax.random.key(0), image, mask)
    get = lambda c: jax.jit(lambda v: c.apply(v, image, mask, method=PatchVQVAE.get_features))(v)  # noqa: E731
    g32, g16 = get(c32), get(c16)
    assert g16["feature"].dtype == jnp.float32
    # Encoder: pre, 8 x (fc1, fc2), post, quant_conv = 19 stages.
    tol = 3 * U_BF16 * 19 * float(jnp.max(jnp.abs(g32["feature"])))
    assert 0 < float(jnp.max(jnp.abs(g16["feature"] - g32["feature"]))) <= tol
    q = g32["feature_quantize"]
    dec = lambda c: jax.jit(lambda v: c.apply(v, q, image, mask, method=PatchVQVAE.decode_with_feature,  # noqa: E731
                                              post_process=False))(v)
    y32, y16 = dec(c32), dec(c16)
    assert y16.dtype == jnp.float32
    # Decoder: post_quant_conv, pre, 8 x 2 res convs, 3 transposed convs, post = 22 stages.
    tol = 3 * U_BF16 * 22 * float(jnp.max(jnp.abs(y32)))
    assert 0 < float(jnp.max(jnp.abs(y16 - y32))) <= tol
    f32, f16 = FeatureDequantizer(embed_dim=16), FeatureDequantizer(embed_dim=16, dtype="bfloat16")
    qv = jax.random.normal(jax.random.key(3), (1, 4, 4, 16))
    m = jnp.ones((1, 4, 4, 1)).at[:, :2].set(0)
    fv = jax.jit(f32.init)(jax.random.key(4), qv, m)
    p32, p16 = jax.jit(f32.apply)(fv, qv, m), jax.jit(f16.apply)(fv, qv, m)
    assert p16.dtype == jnp.float32
    tol = 3 * U_BF16 * 18 * float(jnp.max(jnp.abs(p32)))  # conv_in, 8 x 2, conv_out
    assert 0 < float(jnp.max(jnp.abs(p16 - p32))) <= tol


def test_config_and_loader_dtype():
    from fdm_jax.cli.config_loading import load_config
    from fdm_jax.inference.put_fdm import load_put_fdm
    from fdm_jax.io.images import InputError

    config = load_config("paris:tiny")
    assert config.model.dtype == "float32"
    assert {m.dtype for m in build_models(config.model).values()} == {"float32"}
    config.model.dtype = "float16"
    with pytest.raises(ValueError, match="model.dtype"):
        build_models(config.model)
    config.model.dtype = "float32"
    cfg, models, variables = load_put_fdm(["random"], config, dtype="bfloat16")
    assert {m.dtype for m in models.values()} == {"bfloat16"} and cfg.model.dtype == "bfloat16"
    assert config.model.dtype == "float32"  # the caller's config is not changed
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(variables)} == {jnp.dtype("float32")}
    with pytest.raises(InputError, match="dtype"):
        load_put_fdm(["random"], config, dtype="float16")
