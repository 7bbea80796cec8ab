"""The scanned feature sampler (model.sampler.scan_blocks, issue 14): the same function as the unrolled
one on the same parameters, the two parameter layouts convert exactly into each other, the original
checkpoints convert into the scanned layout and pass the parity fixtures, and the traced program holds
one block whatever the depth (benchmarks/scan_compile.py measures the compile seconds)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.put_fdm import FeatureSampler, build_models
from fdm_jax.put_fdm.feature_sampler import (SCANNED, block_intermediates, is_scanned, match_layout,
                                             stack_blocks, unstack_blocks)
from shared_paths import fixtures_dir, require

KW = dict(num_layers=3, width=32, num_heads=4, mlp_ratio=4, seq_len=16, num_tokens=8, feature_dim=8)
U = 2.0 ** -24  # float32 unit roundoff


def _features(kw=KW, seed=1):
    return jax.random.normal(jax.random.key(seed), (2, kw["seq_len"], kw["feature_dim"]))


def _perturbed(variables, scale=0.05):
    """Init leaves + noise, so that LayerNorm scales, biases and pos_emb are not the init constants."""
    leaves, tree = jax.tree_util.tree_flatten(variables)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def _reassociation_tolerance(kw, scale: float) -> float:
    """How far two float32 programs of the same math may drift apart when XLA orders reductions
    differently (the scan body is fused/scheduled apart from its neighbours, the unrolled blocks are
    not): a sum of K terms computed in two orders differs by at most 2 (K - 1) u sum|terms|
    (Higham, Accuracy and Stability, eq. 3.5, applied to each program). Along the path to the logits
    the reductions are the embedding (K = feature_dim), then per block LayerNorm mean/var (width),
    q.k (head dim), softmax sum and att.v (seq_len), proj (width), fc1 (width), fc2 (mlp width),
    then ln_f and to_logits (width). Summing 2 (K - 1) u over that chain bounds the relative
    drift to first order; `scale` is the size of the values compared (sum|terms| ~ their size)."""
    c, hd, l = kw["width"], kw["width"] // kw["num_heads"], kw["seq_len"]
    per_block = [c, c, hd, l, l, c, c, kw["mlp_ratio"] * c, c, c]  # ln1 mean/var, q.k, softmax, att.v, proj, ln2 mean/var, fc1, fc2
    chain = [kw["feature_dim"]] + per_block * kw["num_layers"] + [c, c, c]
    return sum(2 * (k - 1) * U for k in chain) * scale


def _pair(kw=KW):
    unrolled, scanned = FeatureSampler(**kw), FeatureSampler(**kw, scan_blocks=True)
    x = _features(kw)
    variables = _perturbed(unrolled.init(jax.random.key(0), x))
    return unrolled, scanned, variables, x


def test_scanned_forward_equals_unrolled():
    unrolled, scanned, v, x = _pair()
    ref, ru = unrolled.apply(v, x, mutable=["intermediates"])
    out, rs = scanned.apply(stack_blocks(v), x, mutable=["intermediates"])
    tol = _reassociation_tolerance(KW, float(jnp.max(jnp.abs(ref))))
    err = float(jnp.max(jnp.abs(out - ref)))
    assert err <= tol, (err, tol)
    assert 0 < float(jnp.max(jnp.abs(ref)))  # not a trivially zero comparison
    iu, is_ = block_intermediates(ru["intermediates"]), block_intermediates(rs["intermediates"])
    assert sorted(iu) == sorted(is_) == sorted(f"block{i}_{n}" for i in range(3) for n in ("out", "attn"))
    for name in iu:
        scale = float(jnp.max(jnp.abs(iu[name])))
        assert float(jnp.max(jnp.abs(iu[name] - is_[name]))) <= _reassociation_tolerance(KW, scale), name
    # Nothing sown when `intermediates` is not mutable (the fill loop's case), in either layout.
    np.testing.assert_array_equal(scanned.apply(stack_blocks(v), x), out)


def test_scanned_init_has_the_stacked_layout():
    unrolled, scanned, v, x = _pair()
    vs = scanned.init(jax.random.key(0), x)
    assert is_scanned(vs) and not is_scanned(v)
    shapes = lambda t: jax.tree_util.tree_map(jnp.shape, t)  # noqa: E731
    assert shapes(vs) == shapes(stack_blocks(v))
    assert vs["params"][SCANNED]["attn"]["key"]["kernel"].shape == (3, 32, 32)
    # split_rngs: every block gets its own initial weights, as the unrolled blocks do.
    k = vs["params"][SCANNED]["mlp_fc1"]["kernel"]
    assert not np.array_equal(k[0], k[1])


def test_stack_unstack_round_trip_is_exact():
    _, scanned, v, x = _pair()
    for tree in (v, v["params"]):  # variables {'params': ...} or the params themselves
        s = stack_blocks(tree)
        back = unstack_blocks(s)
        assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(tree)
        for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(tree)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        # stacked -> unstacked -> stacked is exact too, and each is idempotent on its own layout.
        again = stack_blocks(back)
        for a, b in zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(s)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert stack_blocks(s) is s and unstack_blocks(tree) is tree
    vs = scanned.init(jax.random.key(3), x)
    for a, b in zip(jax.tree_util.tree_leaves(stack_blocks(unstack_blocks(vs))), jax.tree_util.tree_leaves(vs)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert match_layout(v, scanned)["params"].keys() == vs["params"].keys()
    assert match_layout(vs, FeatureSampler(**KW))["params"].keys() == v["params"].keys()


def test_stack_blocks_rejects_gaps():
    p = {"block_0": {"w": jnp.ones(2)}, "block_2": {"w": jnp.ones(2)}}
    with pytest.raises(ValueError, match="block indices"):
        stack_blocks(p)


def test_config_key_builds_a_scanned_sampler():
    from fdm_jax.cli.config_loading import load_config

    config = load_config("paris:tiny")
    assert config.model.sampler.scan_blocks is False  # the default keeps the per-block layout
    config.model.sampler.scan_blocks = True
    assert build_models(config.model)["sampler"].scan_blocks


@pytest.mark.parametrize("weights", [None, ("put_fdm_transformer.pth",)])
def test_parity_fixture_passes_scanned(monkeypatch, weights):
    """The original transformer (fixture params and the original .pth) converted into the scanned
    layout reproduces the original's logits and every block's output and attention, within the
    fixture's tolerances, through the same harness `python -m fdm_jax.parity` runs."""
    from fdm_jax.parity import EXIT_OK, run_fixture
    from fdm_jax.parity.runners import put_fdm as runner

    fixture = require(fixtures_dir() / "put_fdm" / "transformer_small.npz")
    original = runner.sampler_from_kwargs
    used = []

    def scanned(t):
        used.append(original(t).clone(scan_blocks=True))
        return used[-1]

    monkeypatch.setattr(runner, "sampler_from_kwargs", scanned)
    paths = () if weights is None else tuple(str(require(fixtures_dir() / "put_fdm" / w)) for w in weights)
    status, rows, message = run_fixture(fixture, paths)
    assert used and used[0].scan_blocks
    bad = [f"{r.name}: err {r.error} > tol {r.tolerance}" for r in rows if not r.ok]
    assert status == EXIT_OK, (message, bad)
    names = {r.name for r in rows}
    assert "logits" in names and any(n.startswith("block") for n in names), names


def test_converter_gives_the_scanned_layout():
    """convert_sampler on a scanned module: the per-block keys land stacked, leaf i = blocks.i."""
    from fdm_jax.convert.put_fdm import convert_sampler

    sampler = FeatureSampler(**KW)
    v = _perturbed(sampler.init(jax.random.key(0), _features()))
    p = v["params"]
    sd = {"pos_emb": np.asarray(p["pos_emb"])}
    for name in ("emb_proj", "to_logits"):
        sd[f"{name}.weight"], sd[f"{name}.bias"] = np.asarray(p[name]["kernel"]).T, np.asarray(p[name]["bias"])
    sd["layer_norm.weight"], sd["layer_norm.bias"] = np.asarray(p["ln_f"]["scale"]), np.asarray(p["ln_f"]["bias"])
    for i in range(KW["num_layers"]):
        b = p[f"block_{i}"]
        for ln in ("ln1", "ln2"):
            sd[f"blocks.{i}.{ln}.weight"], sd[f"blocks.{i}.{ln}.bias"] = np.asarray(b[ln]["scale"]), np.asarray(b[ln]["bias"])
        for lin in ("key", "query", "value", "proj"):
            sd[f"blocks.{i}.attn.{lin}.weight"] = np.asarray(b["attn"][lin]["kernel"]).T
            sd[f"blocks.{i}.attn.{lin}.bias"] = np.asarray(b["attn"][lin]["bias"])
        for j, fc in ((0, "mlp_fc1"), (2, "mlp_fc2")):
            sd[f"blocks.{i}.mlp.{j}.weight"], sd[f"blocks.{i}.mlp.{j}.bias"] = np.asarray(b[fc]["kernel"]).T, np.asarray(b[fc]["bias"])
    vs = convert_sampler(sd, sampler.clone(scan_blocks=True))
    assert is_scanned(vs)
    for a, b in zip(jax.tree_util.tree_leaves(vs), jax.tree_util.tree_leaves(stack_blocks(v))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    vu = convert_sampler(sd, sampler)
    assert not is_scanned(vu)


def _num_equations(jaxpr) -> int:
    """Equations of a jaxpr, sub-jaxprs (pjit, scan bodies, custom_jvp) counted once each: a scan's
    body once, however many iterations it runs."""
    n = 0
    for eqn in jaxpr.eqns:
        n += 1
        for p in eqn.params.values():
            for sub in (p if isinstance(p, (tuple, list)) else (p,)):
                sub = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
                if hasattr(sub, "eqns"):
                    n += _num_equations(sub)
    return n


def test_traced_program_does_not_grow_with_depth():
    """The compile-time claim at its root: the scanned program holds one block whatever num_layers;
    the unrolled one holds num_layers blocks."""
    sizes = {}
    for scan in (False, True):
        for n in (2, 6):
            kw = {**KW, "num_layers": n}
            m = FeatureSampler(**kw, scan_blocks=scan)
            x = _features(kw)
            v = jax.eval_shape(m.init, jax.random.key(0), x)
            sizes[scan, n] = _num_equations(jax.make_jaxpr(m.apply)(v, x).jaxpr)
    assert sizes[True, 2] == sizes[True, 6], sizes
    assert sizes[False, 6] > 2 * sizes[False, 2] > 0, sizes


def test_saved_run_loads_into_a_scanned_sampler(demo_run):
    """A training run (saved in the per-block layout) loads into a scanned sampler and gives the
    same logits."""
    from fdm_jax.inference.put_fdm import load_put_fdm
    from fdm_jax.put_fdm.feature_sampler import with_sampler_layout

    config, models, variables = load_put_fdm([str(demo_run)])
    sampler = models["sampler"]
    assert not is_scanned(variables["sampler"])
    scanned = sampler.clone(scan_blocks=True)
    vs = with_sampler_layout(variables, {**models, "sampler": scanned})
    assert is_scanned(vs["sampler"]) and vs["codec"] is variables["codec"]
    kw = dict(seq_len=sampler.seq_len, feature_dim=sampler.feature_dim)
    x = _features(kw)
    ref = sampler.apply(variables["sampler"], x)
    out = scanned.apply(vs["sampler"], x)
    tol = _reassociation_tolerance({**kw, "width": sampler.width, "num_heads": sampler.num_heads,
                                    "mlp_ratio": sampler.mlp_ratio, "num_layers": sampler.num_layers},
                                   float(jnp.max(jnp.abs(ref))))
    assert float(jnp.max(jnp.abs(out - ref))) <= tol
