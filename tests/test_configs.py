"""Tests of configs/{paris,places}.py, configs/put_fdm_common.py and fdm_jax.cli.config_loading.

The expected constants below were read from hyudsl/FDM@3d3c30fd configs/{paris,naturalscene}/*.yaml
(and the Python defaults named in the config comments) when the configs were written; the YAML
files are not needed to run these tests.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import ml_collections
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from fdm_jax.cli.config_loading import load_config, split_spec  # noqa: E402

PARIS = str(REPO_ROOT / "configs" / "paris.py")
PLACES = str(REPO_ROOT / "configs" / "places.py")
ALL_SPECS = [PARIS, PARIS + ":tiny", PLACES, PLACES + ":tiny"]
PHASES = ("codec", "sampler", "fdm", "fdm_tuning")


def _flat_keys(cfg, prefix=""):
    keys = set()
    for k, v in cfg.items():
        name = f"{prefix}{k}"
        keys.add(name)
        if isinstance(v, (ml_collections.ConfigDict, ml_collections.FrozenConfigDict)):
            keys |= _flat_keys(v, name + ".")
    return keys


def _import(path: str):
    spec = importlib.util.spec_from_file_location(f"_test_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def configs():
    return {spec: load_config(spec) for spec in ALL_SPECS}


# ----------------------------------------------------------------------------- loading
def test_split_spec():
    assert split_spec("configs/paris.py") == ("configs/paris.py", None)
    assert split_spec("configs/paris.py:tiny") == ("configs/paris.py", "tiny")
    assert split_spec("configs/paris.py:") == ("configs/paris.py", "")


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_loads(configs, spec):
    config = configs[spec]
    assert isinstance(config, ml_collections.ConfigDict)
    assert config.phase in PHASES
    assert config.seed == 0
    for phase in PHASES:
        assert phase in config.train
        assert phase in config.masks


def test_relative_paths_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config("configs/paris.py:tiny")
    assert config.image_size == 64


@pytest.mark.parametrize("path", [PARIS, PLACES])
def test_none_and_empty_arg_are_the_paper_setting(path):
    module = _import(path)
    paper = module.get_config().to_dict()
    assert module.get_config(None).to_dict() == paper
    assert module.get_config("").to_dict() == paper
    assert load_config(path + ":").to_dict() == paper


@pytest.mark.parametrize("path", [PARIS, PLACES])
def test_unknown_variant_lists_valid_ones(path):
    with pytest.raises(ValueError) as e:
        load_config(path + ":huge")
    message = str(e.value)
    assert "huge" in message and Path(path).name in message
    assert "'tiny'" in message and "''" in message
    with pytest.raises(ValueError, match="valid variants: .*'tiny'"):
        _import(path).get_config("huge")


def test_missing_file_is_a_clear_error():
    with pytest.raises(ValueError, match=r"no_such_config\.py.*does not exist"):
        load_config("configs/no_such_config.py:tiny")


def test_file_without_get_config(tmp_path):
    path = tmp_path / "not_a_config.py"
    path.write_text("X = 1\n")
    with pytest.raises(ValueError, match=r"not_a_config\.py.*no get_config"):
        load_config(str(path))


def test_get_config_without_argument(tmp_path):
    path = tmp_path / "plain.py"
    path.write_text("import ml_collections\n"
                    "def get_config():\n"
                    "    return ml_collections.ConfigDict({'a': 1})\n")
    assert load_config(str(path)).a == 1
    with pytest.raises(ValueError, match=r"plain\.py:tiny.*get_config\(\) takes 0 positional arguments"):
        load_config(f"{path}:tiny")


# ----------------------------------------------------------------------------- structure
def test_tiny_has_the_same_structure(configs):
    paris_keys = _flat_keys(configs[PARIS])
    assert _flat_keys(configs[PARIS + ":tiny"]) == paris_keys
    assert _flat_keys(configs[PLACES]) == paris_keys
    assert _flat_keys(configs[PLACES + ":tiny"]) == paris_keys


def test_model_fields_are_the_constructor_arguments(configs):
    model = configs[PARIS].model
    assert set(model.keys()) == {"dtype", "codec", "sampler", "fdm"}
    assert set(model.codec.keys()) == {
        "res_ch", "encoder_out_ch", "embed_dim", "decoder_in_ch", "num_embed",
        "masked_embed_start", "patch_size", "in_ch", "out_ch", "num_res_blocks", "ema_decay",
        "ema_eps"}
    assert set(model.sampler.keys()) == {
        "num_layers", "width", "num_heads", "mlp_ratio", "seq_len", "num_tokens", "feature_dim",
        "layer_norm_eps", "attention", "scan_blocks"}
    assert set(model.fdm.keys()) == {"embed_dim", "num_res_blocks"}
    assert set(configs[PARIS].sampling.keys()) == {
        "top_k", "num_token_per_iter", "temperature", "schedule", "num_passes"}


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_constraints(configs, spec):
    c = configs[spec]
    codec, sampler, fdm = c.model.codec, c.model.sampler, c.model.fdm
    assert sampler.num_tokens == codec.masked_embed_start
    assert sampler.feature_dim == codec.embed_dim == fdm.embed_dim
    assert c.image_size % codec.patch_size == 0
    assert sampler.seq_len == (c.image_size // codec.patch_size) ** 2
    assert codec.res_ch % 4 == 0
    assert sampler.width % sampler.num_heads == 0
    assert codec.masked_embed_start < codec.num_embed
    assert 0 < c.sampling.top_k <= sampler.num_tokens
    assert c.data.train_preprocess.size == c.data.eval_preprocess.size == c.image_size
    for phase in PHASES:
        low = c.masks[phase].mask_low_size
        assert low is None or tuple(low) == (c.image_size // codec.patch_size,) * 2


def test_validate_rejects_inconsistent_configs():
    common = _import(str(REPO_ROOT / "configs" / "put_fdm_common.py"))
    config = load_config(PARIS + ":tiny")
    common.validate(config)
    config.model.sampler.num_tokens = 32
    with pytest.raises(ValueError, match="num_tokens"):
        common.validate(config)
    config = load_config(PARIS)
    config.model.fdm.embed_dim = 128
    with pytest.raises(ValueError, match="embed_dim"):
        common.validate(config)
    config = load_config(PARIS)
    config.image_size = 128
    with pytest.raises(ValueError, match="seq_len"):
        common.validate(config)


# ----------------------------------------------------------------------------- behaviour
# The expected numbers below are the original's, not copies of our config: the architecture sizes and
# parameter counts are those of the original modules built from hyudsl/FDM@3d3c30fd
# configs/paris/{encoder_decoder,transformer,fdm}.yaml (PUT 118,654,211 = codec 7,401,219 + transformer
# 111,252,992; FDM 3,806,976), and the optimisers and schedules follow those YAML files'
# `solver.optimizers_and_schedulers` through image_synthesis/engine/lr_scheduler.py
# (CosineAnnealingLRWithWarmup: the update at iteration i uses lr i*warmup_lr/warmup up to warmup+1).
# Each check goes through the code that consumes the config, so a config value that the code reads
# wrongly fails here as surely as a wrong value.

def _shapes(spec):
    import jax
    import jax.numpy as jnp

    from fdm_jax.put_fdm import build_models

    c = load_config(spec)
    m = build_models(c.model)
    s = c.image_size
    codec, sampler = m["codec"], m["sampler"]
    cv = jax.eval_shape(lambda: codec.init(jax.random.key(0), jnp.zeros((1, s, s, 3)), jnp.ones((1, s, s, 1))))
    feats = jax.eval_shape(lambda v: codec.apply(v, jnp.zeros((1, s, s, 3)), jnp.ones((1, s, s, 1)),
                                                 method="get_features"), cv)
    x = jnp.zeros((1, sampler.seq_len, sampler.feature_dim))
    sv = jax.eval_shape(lambda: sampler.init(jax.random.key(0), x))
    logits = jax.eval_shape(lambda v: sampler.apply(v, x), sv)
    return cv, feats, sv, logits


@pytest.mark.parametrize("spec", [PARIS, PLACES])
def test_built_models_have_the_original_sizes(spec):
    """256x256 images -> 32x32 patch features of width 256; a 1024-entry codebook (512 for known
    patches, the rest for masked ones); a 35-block transformer of width 512 over the 1024 patches,
    predicting 512 tokens."""
    cv, feats, sv, logits = _shapes(spec)
    assert feats["feature"].shape == (1, 32, 32, 256)
    assert cv["codebook"]["quantizer"]["embedding"].shape == (1024, 256)
    p = sv["params"]
    assert sum(k.startswith("block_") for k in p) == 35
    assert p["pos_emb"].shape == (1, 1024, 512)
    assert p["emb_proj"]["kernel"].shape == (256, 512)
    assert logits.shape == (1, 1024, 512)


@pytest.mark.parametrize("spec,expected", [(PARIS + ":tiny", (8, 8, 32, 128, 2, 64)),
                                           (PLACES + ":tiny", (8, 8, 32, 128, 2, 64))])
def test_tiny_variants_build_small_models(spec, expected):
    """The tiny variants (64x64 images, for tests) build the same kind of model, smaller."""
    cv, feats, sv, logits = _shapes(spec)
    h, w, dim, num_embed, blocks, tokens = expected
    assert feats["feature"].shape == (1, h, w, dim)
    assert cv["codebook"]["quantizer"]["embedding"].shape == (num_embed, dim)
    assert sum(k.startswith("block_") for k in sv["params"]) == blocks
    assert logits.shape == (1, h * w, tokens)


def _toy_params():
    import jax.numpy as jnp

    leaf = lambda: {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}
    return {"codec": {k: leaf() for k in ("encoder", "quant_conv", "post_quant_conv", "decoder")},
            "fdm": leaf(), "sampler": leaf()}


# Which parts each phase trains (hyudsl/FDM configs/paris/*.yaml optimizers' `params` groups and
# `trainable` flags): P-VQVAE = encoder, quant_conv, post_quant_conv, decoder; transformer; FDM;
# FDM tuning = FDM + decoder + post_quant_conv.
TRAINED = {
    "codec": {"codec/encoder", "codec/quant_conv", "codec/post_quant_conv", "codec/decoder"},
    "sampler": {"sampler"},
    "fdm": {"fdm"},
    "fdm_tuning": {"fdm", "codec/post_quant_conv", "codec/decoder"},
}
# (optimizer, betas, warmup steps, warmup lr, min lr) per phase in configs/{paris,naturalscene}/*.yaml.
SCHEDULES = {
    PARIS: {"codec": ("adam", (0.0, 0.9), 150, 2e-4, 1e-6), "sampler": ("adamw", (0.9, 0.95), 2000, 3e-4, 1e-5),
            "fdm": ("adam", (0.0, 0.9), 300, 2e-4, 1e-6), "fdm_tuning": ("adam", (0.0, 0.9), 150, 2e-4, 1e-6)},
    PLACES: {"codec": ("adam", (0.0, 0.9), 5000, 2e-4, 1e-6), "sampler": ("adamw", (0.9, 0.95), 2000, 3e-4, 1e-5),
             "fdm": ("adam", (0.0, 0.9), 5000, 2e-4, 1e-6), "fdm_tuning": ("adam", (0.0, 0.9), 5000, 2e-4, 1e-6)},
}


@pytest.mark.parametrize("spec", [PARIS, PLACES])
@pytest.mark.parametrize("phase", PHASES)
def test_phase_optimizer_reproduces_the_original_schedule_and_update(spec, phase):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from fdm_jax.train.optimizers import phase_optimizer

    kind, (b1, b2), warmup, warmup_lr, min_lr = SCHEDULES[spec][phase]
    total = 100 * warmup
    tx, _, schedule = phase_optimizer(load_config(spec).train[phase], _toy_params(), total)

    # The schedule: lr 0 at the first update, linear warm-up, overshoot to warmup_lr*(1+1/warmup),
    # cosine down to min_lr.
    np.testing.assert_allclose(float(schedule(0)), 0.0)
    np.testing.assert_allclose(float(schedule(warmup)), warmup_lr, rtol=1e-6)
    np.testing.assert_allclose(float(schedule(warmup + 1)), warmup_lr * (1 + 1 / warmup), rtol=1e-6)
    np.testing.assert_allclose(float(schedule(total + 1)), min_lr, rtol=1e-6)

    # Two updates with different gradients g1, g2 (the first at lr 0); the second, by Adam(W)'s
    # definition with the original's betas, eps 1e-8 and weight decay (0.01 on Linear weights of
    # the transformer only, AdamW), moves each trained leaf by -lr * (m_hat / (sqrt(v_hat) + eps) + wd * p).
    params = _toy_params()
    g1 = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    g2 = jax.tree.map(lambda p: jnp.full_like(p, -2.0), params)
    state = tx.init(params)
    u1, state = tx.update(g1, state, params)
    assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(u1))  # lr 0 at iteration 0
    u2, _ = tx.update(g2, state, params)
    lr = warmup_lr / warmup
    m_hat = ((1 - b1) * b1 * 0.5 + (1 - b1) * -2.0) / (1 - b1 ** 2)
    v_hat = ((1 - b2) * b2 * 0.25 + (1 - b2) * 4.0) / (1 - b2 ** 2)
    adam = m_hat / (np.sqrt(v_hat) + 1e-8)
    for path, u in jax.tree_util.tree_flatten_with_path(u2)[0]:
        names = [str(getattr(k, "key", k)) for k in path]
        part = "/".join(names[:2]) if names[0] == "codec" else names[0]
        if part not in TRAINED[phase]:
            assert float(jnp.abs(u).max()) == 0.0, f"{phase}: {'/'.join(names)} must stay frozen"
            continue
        wd = 0.01 if (kind == "adamw" and names[-1] == "kernel") else 0.0
        np.testing.assert_allclose(np.asarray(u), -lr * (adam + wd * 1.0), rtol=1e-5,
                                   err_msg=f"{phase}: {'/'.join(names)}")


@pytest.mark.parametrize("spec", [PARIS, PLACES])
def test_discriminator_optimizer_reproduces_the_original(spec):
    """The discriminator (phases 1 and 3): Adam(0, 0.9), warm-up to 2e-5 over its own count."""
    import numpy as np

    from fdm_jax.train.optimizers import discriminator_optimizer

    warmup = 300 if spec == PARIS else 5000
    for phase in ("codec", "fdm_tuning"):
        d = load_config(spec).train[phase].disc
        _, schedule = discriminator_optimizer(d, 100 * warmup)
        np.testing.assert_allclose(float(schedule(warmup)), 2e-5, rtol=1e-6)
        np.testing.assert_allclose(float(schedule(100 * warmup + 1)), 1e-6, rtol=1e-6)
        assert d.start_iteration == warmup  # D starts stepping at iteration 300 (Paris) / 5000


@pytest.mark.parametrize("spec", [PARIS, PLACES])
def test_loss_weights_are_the_originals(configs, spec):
    """EdgeConnectLoss weights (image_synthesis/modeling/modules/edge_connect/losses.py defaults, with
    g_gradient_loss_weight 5.0 from the YAML) in phases 1 and 3; phase 2 is the L1 feature loss only."""
    t = configs[spec].train
    for phase in ("codec", "fdm_tuning"):
        loss = t[phase].loss
        assert (loss.g_rec, loss.g_gradient, loss.g_content, loss.g_style, loss.g_adv) == (
            1.0, 5.0, 0.1, 250.0, 0.1)
        assert loss.gan_loss == "nsgan"
    assert (t.codec.loss.quantize, t.codec.loss.qe) == (1.0, 0.0)
    assert (t.fdm_tuning.loss.quantize, t.fdm_tuning.loss.qe) == (0.0, 1.0)
    fdm = t.fdm.loss
    assert (fdm.kind, fdm.qe, fdm.g_gradient, fdm.g_content, fdm.g_style, fdm.g_adv) == (
        "qe", 1.0, 0.0, 0.0, 0.0, 0.0)
    assert not t.fdm.disc.enabled and not t.sampler.disc.enabled
    # Per-GPU batch sizes and epochs (the YAMLs' dataloader.batch_size, solver.max_epochs).
    batches = [10, 2, 10, 10] if spec == PARIS else [16, 2, 16, 16]
    assert [t[p].batch_size for p in PHASES] == batches
    assert [t[p].num_epochs for p in PHASES] == [100, 300, 100, 100]
    assert configs[spec].sampling.top_k == 50  # InpaintingModel.sample's default filter


def test_paris_values(configs):
    c = configs[PARIS]
    t = c.train
    assert [t[p].warmup_steps for p in PHASES] == [150, 2000, 300, 150]
    assert [t[p].batch_size for p in PHASES] == [10, 2, 10, 10]
    for phase in ("codec", "fdm_tuning"):
        loss = t[phase].loss
        assert (loss.disc_start, loss.style_start, loss.gradient_start, loss.content_start) == (
            300, 150, 150, 150)
        assert (t[phase].disc.start_iteration, t[phase].disc.warmup_steps) == (300, 300)
    assert t.fdm_tuning.init_from == "./output/experiments/paris/fdm/checkpoint/last.pth"
    assert c.data.train_name == "images/paris/train"
    assert c.data.train_preprocess.smallest_max_size == 256
    assert c.data.eval.num_images == 1900
    assert c.masks.codec.provided_mask_prob == 0.7
    assert (c.masks.codec.zero_mask, c.masks.codec.erase_image_with_mask) == (0.3, 0.2)
    assert (c.masks.sampler.provided_mask_prob, c.masks.sampler.mask_low_to_high) == (0.8, 0.05)
    assert tuple(c.masks.codec.provided_mask_file_range) == (4000, 12000)  # use_provided_mask_ratio ("0.2", "0.6")
    assert c.masks.fdm.provided_mask_only
    assert tuple(c.masks.fdm.provided_mask_file_range) == (4000, 12000)
    stroke = c.masks.codec.stroken_mask_params
    assert (stroke.maxVertex, stroke.minVertex, stroke.maxLength, stroke.maxBrushWidth,
            stroke.minBrushWidth, tuple(stroke.keep_ratio), stroke.min_area) == (
        10, 5, 100, 30, 10, (0.0, 0.5), 64)


def test_places_values(configs):
    c = configs[PLACES]
    t = c.train
    assert c.data.name == "naturalscene"
    assert [t[p].warmup_steps for p in PHASES] == [5000, 2000, 5000, 5000]
    assert [t[p].batch_size for p in PHASES] == [16, 2, 16, 16]
    for phase in ("codec", "fdm_tuning"):
        loss = t[phase].loss
        assert (loss.disc_start, loss.style_start, loss.gradient_start, loss.content_start) == (
            10000, 5000, 5000, 5000)
        assert (t[phase].disc.start_iteration, t[phase].disc.warmup_steps) == (5000, 5000)
    assert c.data.train_preprocess.smallest_max_size == 288
    assert c.data.eval_preprocess.smallest_max_size == 256
    assert c.data.eval.num_images == 800
    assert c.masks.codec.provided_mask_name == "irregular-mask"
    # Phases 2-3: the provided-mask dataset with its defaults, i.e. all 12,000 masks.
    assert c.masks.fdm.provided_mask_only
    assert tuple(c.masks.fdm.provided_mask_file_range) == (0, 12000)
    assert t.fdm.init_from == "./checkpoint/naturalscene/encoder_decoder.pth"


@pytest.mark.parametrize("path", [PARIS, PLACES])
def test_tiny_keeps_the_paper_training_settings(path):
    c = load_config(path + ":tiny")
    paper = load_config(path)
    # Only sizes change: optimiser and loss settings stay those of the paper.
    for phase in PHASES:
        assert c.train[phase].loss.to_dict() == paper.train[phase].loss.to_dict()
        assert c.train[phase].warmup_lr == paper.train[phase].warmup_lr


@pytest.mark.parametrize("spec", [PARIS, PLACES])
def test_reference_numbers(configs, spec):
    ref = configs[spec].reference
    assert (ref.put_params, ref.fdm_params) == ("119M", "3M")
    assert "Table 2" in ref.source
