"""Tests of configs/{paris,places}.py, configs/put_fdm_common.py and fdm_jax.config_loading.

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

from fdm_jax.config_loading import load_config, split_spec  # noqa: E402

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
    with pytest.raises(ValueError, match=r"plain\.py.*takes no argument.*'tiny'"):
        load_config(f"{path}:tiny")


# ----------------------------------------------------------------------------- structure
def test_tiny_has_the_same_structure(configs):
    paris_keys = _flat_keys(configs[PARIS])
    assert _flat_keys(configs[PARIS + ":tiny"]) == paris_keys
    assert _flat_keys(configs[PLACES]) == paris_keys
    assert _flat_keys(configs[PLACES + ":tiny"]) == paris_keys


def test_model_fields_are_the_constructor_arguments(configs):
    model = configs[PARIS].model
    assert set(model.keys()) == {"codec", "sampler", "fdm"}
    assert set(model.codec.keys()) == {
        "res_ch", "encoder_out_ch", "embed_dim", "decoder_in_ch", "num_embed",
        "masked_embed_start", "patch_size", "in_ch", "out_ch", "num_res_blocks", "ema_decay",
        "ema_eps"}
    assert set(model.sampler.keys()) == {
        "num_layers", "width", "num_heads", "mlp_ratio", "seq_len", "num_tokens", "feature_dim",
        "layer_norm_eps"}
    assert set(model.fdm.keys()) == {"embed_dim", "num_res_blocks"}
    assert set(configs[PARIS].sampling.keys()) == {
        "top_k", "num_token_per_iter", "temperature", "num_samples"}


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


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize("spec", [PARIS, PLACES])
def test_architecture_matches_the_original(configs, spec):
    c = configs[spec]
    assert c.image_size == 256
    assert dict(c.model.codec) == dict(
        res_ch=256, encoder_out_ch=256, embed_dim=256, decoder_in_ch=256, num_embed=1024,
        masked_embed_start=512, patch_size=8, in_ch=3, out_ch=3, num_res_blocks=8,
        ema_decay=0.99, ema_eps=1e-5)
    assert dict(c.model.sampler) == dict(
        num_layers=35, width=512, num_heads=8, mlp_ratio=4, seq_len=1024, num_tokens=512,
        feature_dim=256, layer_norm_eps=1e-5)
    assert dict(c.model.fdm) == dict(embed_dim=256, num_res_blocks=8)
    assert dict(c.sampling) == dict(top_k=50, num_token_per_iter=1, temperature=1.0,
                                    num_samples=1)
    assert c.model_fixed.sampler.block_activate == "GELU2"
    assert c.model_fixed.sampler.gelu2_coef == 1.702
    assert c.model_fixed.codec.distance_type == "euclidean"
    assert (c.data.scale, c.data.mean, c.data.std) == (127.5, 1.0, 1.0)


@pytest.mark.parametrize("spec", [PARIS, PLACES])
def test_shared_training_constants(configs, spec):
    t = configs[spec].train
    for phase in ("codec", "fdm", "fdm_tuning"):
        assert t[phase].optimizer == "adam"
        assert tuple(t[phase].betas) == (0.0, 0.9)
        assert t[phase].warmup_lr == 2e-4 and t[phase].min_lr == 1e-6
        assert t[phase].weight_decay == 0.0 and t[phase].eps == 1e-8
        assert t[phase].num_epochs == 100
        assert t[phase].base_lr == 0.0
    s = t.sampler
    assert s.optimizer == "adamw" and tuple(s.betas) == (0.9, 0.95)
    assert s.weight_decay == 0.01 and tuple(s.decay_param_names) == ("kernel",)
    assert (s.warmup_steps, s.warmup_lr, s.min_lr) == (2000, 3e-4, 1e-5)
    assert (s.batch_size, s.num_epochs, s.random_quantize) == (2, 300, 0.3)
    # Loss weights: EdgeConnectLoss defaults + g_gradient_loss_weight 5.0 in phases 1 and 3.
    for phase in ("codec", "fdm_tuning"):
        loss = t[phase].loss
        assert (loss.g_rec, loss.g_gradient, loss.g_content, loss.g_style, loss.g_adv) == (
            1.0, 5.0, 0.1, 250.0, 0.1)
        assert loss.gan_loss == "nsgan"
        assert t[phase].disc.enabled and t[phase].disc.warmup_lr == 2e-5
        assert tuple(t[phase].disc.betas) == (0.0, 0.9) and t[phase].disc.min_lr == 1e-6
    assert (t.codec.loss.quantize, t.codec.loss.qe) == (1.0, 0.0)
    assert (t.fdm_tuning.loss.quantize, t.fdm_tuning.loss.qe) == (0.0, 1.0)
    fdm = t.fdm.loss
    assert (fdm.kind, fdm.qe, fdm.g_gradient, fdm.g_content, fdm.g_style, fdm.g_adv) == (
        "qe", 1.0, 0.0, 0.0, 0.0, 0.0)
    assert not t.fdm.disc.enabled and not t.sampler.disc.enabled
    assert tuple(t.fdm.trainable) == ("fdm",)
    assert tuple(t.fdm_tuning.trainable) == ("post_quant_conv", "decoder", "fdm")
    assert tuple(t.fdm_tuning.codec_part_list) == ("decoder",)


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
    assert c.data.codec_val_name == "images/paris/train"
    assert c.data.train_preprocess.smallest_max_size == 256
    assert c.data.eval.num_images == 1900
    assert c.masks.codec.provided_mask_prob == 0.7
    assert tuple(c.masks.codec.provided_mask_ratio) == ("0.2", "0.6")
    assert (c.masks.codec.zero_mask, c.masks.codec.erase_image_with_mask) == (0.3, 0.2)
    assert (c.masks.sampler.provided_mask_prob, c.masks.sampler.mask_low_to_high) == (0.8, 0.05)
    assert c.masks.sampler.val_mask_low_to_high == 0.0
    assert c.masks.fdm.provided_mask_only
    assert tuple(c.masks.fdm.provided_mask_file_range) == (4000, 12000)
    stroke = c.masks.codec.stroken_mask_params
    assert (stroke.maxVertex, stroke.minVertex, stroke.maxLength, stroke.maxBrushWidth,
            stroke.minBrushWidth, tuple(stroke.keep_ratio), stroke.min_area) == (
        10, 5, 100, 30, 10, (0.0, 0.5), 64)
    assert c.masks.eval.provided_mask_list_file == "./data/image_list/paris/mask_list05_06.txt"
    assert not c.inference.generator_from_put


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
    assert len(c.data.subset_categories) == 8
    assert c.data.eval.num_images == 800
    assert c.masks.codec.provided_mask_name == "irregular-mask"
    # Phases 2-3: the provided-mask dataset with its defaults, i.e. all 12,000 masks.
    assert c.masks.fdm.provided_mask_only
    assert tuple(c.masks.fdm.provided_mask_file_range) == (0, 12000)
    assert c.inference.generator_from_put
    assert c.inference.generator_path == "./checkpoint/naturalscene/generator.pth"
    assert t.fdm.init_from == "./checkpoint/naturalscene/encoder_decoder.pth"


@pytest.mark.parametrize("path", [PARIS, PLACES])
def test_tiny_sizes(path):
    c = load_config(path + ":tiny")
    assert c.image_size == 64
    assert dict(c.model.codec) == dict(
        res_ch=64, encoder_out_ch=64, embed_dim=32, decoder_in_ch=64, num_embed=128,
        masked_embed_start=64, patch_size=8, in_ch=3, out_ch=3, num_res_blocks=8,
        ema_decay=0.99, ema_eps=1e-5)
    assert dict(c.model.sampler) == dict(
        num_layers=2, width=128, num_heads=4, mlp_ratio=4, seq_len=64, num_tokens=64,
        feature_dim=32, layer_norm_eps=1e-5)
    assert dict(c.model.fdm) == dict(embed_dim=32, num_res_blocks=8)
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
    assert round(ref.put_params_exact / 1e6) == 119
    assert int(ref.fdm_params_exact / 1e6) == 3
