"""TSGL converters (fdm_jax.convert.tsgl): strictness and error messages, configs and `tsgl_summary`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.cli.config_loading import load_config
from fdm_jax.convert import tsgl as conv
from fdm_jax.convert.put_fdm import ConversionError
from fdm_jax.tsgl.lama import TSGLLamaGenerator
from fdm_jax.tsgl.medfe import TSGLMedfeGenerator
from fdm_jax.parity.harness import load_fixture
from fdm_jax.parity.runners.tsgl import lama_from_kwargs, medfe_from_kwargs
from shared_paths import fixtures_dir, require

TSGL = fixtures_dir() / "tsgl"


@pytest.fixture(scope="module")
def lama_fx():
    return load_fixture(require(TSGL / "tsgl_lama_generator_small.npz"))


@pytest.fixture(scope="module")
def medfe_fx():
    return load_fixture(require(TSGL / "tsgl_medfe_generator_small.npz"))


def test_missing_key_is_named(lama_fx):
    sd = dict(lama_fx.params)
    del sd["h2l_2_l.conv_s.weight_u"]
    with pytest.raises(ConversionError, match=r"missing keys: h2l_2_l\.conv_s\.weight_u"):
        conv.convert_lama_generator(sd, lama_from_kwargs(lama_fx.kwargs))


def test_unexpected_key_is_named(lama_fx):
    sd = {**lama_fx.params, "model_low_9.0.ffc.convl2l.weight": np.zeros((1, 1, 3, 3), np.float32)}
    with pytest.raises(ConversionError, match=r"unexpected keys: model_low_9\.0\.ffc\.convl2l\.weight"):
        conv.convert_lama_generator(sd, lama_from_kwargs(lama_fx.kwargs))


def test_misshaped_key_is_named_with_both_shapes(medfe_fx):
    sd = dict(medfe_fx.params)
    sd["pc_block.cov_5.2.conv.mask_conv.weight"] = np.zeros((16, 16, 3, 3), np.float32)
    with pytest.raises(ConversionError, match=r"mis-shaped keys: pc_block\.cov_5\.2\.conv\.mask_conv\.weight: "
                                              r"checkpoint shape \(16, 16, 3, 3\), expected \(16, 16, 5, 5\)"):
        conv.convert_medfe_generator(sd, medfe_from_kwargs(medfe_fx.kwargs))


def test_wrong_width_model_fails_loudly(medfe_fx):
    with pytest.raises(ConversionError, match="mis-shaped keys"):
        conv.convert_medfe_generator(medfe_fx.params, TSGLMedfeGenerator(cnum=8, tdim=12, depths=(1, 2, 2, 2)))
    with pytest.raises(ConversionError, match="missing keys"):  # a deeper stage than the checkpoint has
        conv.convert_medfe_generator(medfe_fx.params, TSGLMedfeGenerator(cnum=4, tdim=12, depths=(2, 2, 2, 2)))


def test_module_prefix_all_or_nothing(lama_fx):
    model = lama_from_kwargs(lama_fx.kwargs)
    prefixed = {"module." + k: v for k, v in lama_fx.params.items()}
    a = conv.convert_lama_generator(prefixed, model)
    assert a["params"]["h2l_0_l"]["conv_0"]["kernel"].shape == (3, 3, 12, 12)
    mixed = dict(prefixed)
    mixed["h2l_0_l.conv_0.bias"] = mixed.pop("module.h2l_0_l.conv_0.bias")
    with pytest.raises(ConversionError, match="some keys carry DataParallel's 'module.' prefix"):
        conv.convert_lama_generator(mixed, model)


def test_resample_filter_is_checked(medfe_fx):
    sd = dict(medfe_fx.params)
    sd["en_low_3.conv.conv.resample_filter"] = np.ones((4, 4), np.float32) / 16
    with pytest.raises(ConversionError, match=r"resample_filter is not the \[1,3,3,1\] FIR.*en_low_3\.conv\.conv"):
        conv.convert_medfe_generator(sd, medfe_from_kwargs(medfe_fx.kwargs))


def test_training_only_keys(lama_fx, medfe_fx):
    """Ignored by an inference model; required by a model with the structure decoder."""
    no_up_high = {k: v for k, v in lama_fx.params.items() if not k.startswith("up_high.")}
    conv.convert_lama_generator(no_up_high, lama_from_kwargs(lama_fx.kwargs))  # fine for inference
    with pytest.raises(ConversionError, match=r"missing keys: up_high\."):
        conv.convert_lama_generator(no_up_high, lama_from_kwargs(lama_fx.kwargs).clone(with_structure_decoder=True))
    no_dec = {k: v for k, v in medfe_fx.params.items() if not k.startswith("de_high_0.")}
    with pytest.raises(ConversionError, match=r"de_high_0\.structure_resolver\.conv1\.weight"):
        conv.convert_medfe_generator(no_dec, medfe_from_kwargs(medfe_fx.kwargs).clone(with_structure_decoder=True))


def test_converted_values_and_layouts(medfe_fx):
    v = conv.convert_medfe_generator(medfe_fx.params, medfe_from_kwargs(medfe_fx.kwargs))
    p, sn, bs = v["params"], v["spectral_norm"], v["batch_stats"]
    np.testing.assert_array_equal(p["en_low_2"]["blocks_0"]["attn"]["q"]["kernel"],
                                  medfe_fx.params["en_low_2.blocks.0.attn.q.weight"].T)  # unscaled, (in, out)
    np.testing.assert_array_equal(p["Decoder_2"]["conv"]["kernel"],
                                  medfe_fx.params["Decoder_2.model.1.weight"].transpose(2, 3, 0, 1))  # ConvT
    np.testing.assert_array_equal(p["h2l_3"]["conv_1"]["kernel"],
                                  medfe_fx.params["h2l_3.conv_1.weight_orig"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(sn["h2l_3"]["conv_1"]["v"], medfe_fx.params["h2l_3.conv_1.weight_v"])
    np.testing.assert_array_equal(bs["h2l_5"]["norm_1"]["param_free_norm"]["var"],
                                  medfe_fx.params["h2l_5.norm_1.param_free_norm.running_var"])
    np.testing.assert_array_equal(p["pc_block"]["base"]["se_fc2"]["bias"],
                                  medfe_fx.params["pc_block.base.model.0.fc.2.bias"])


def test_configs_and_fixture_kwargs(lama_fx, medfe_fx):
    lt, mt = load_config("configs/tsgl_lama.py:tiny"), load_config("configs/tsgl_medfe.py:tiny")
    assert conv.build_generator(lt.model) == lama_from_kwargs(lama_fx.kwargs)
    assert conv.build_generator(mt.model) == medfe_from_kwargs(medfe_fx.kwargs)
    assert conv.build_generator(load_config("configs/tsgl_lama.py").model) == TSGLLamaGenerator()
    assert conv.build_generator(load_config("configs/tsgl_medfe.py").model) == TSGLMedfeGenerator()
    with pytest.raises(ValueError, match="unknown variant"):
        load_config("configs/tsgl_medfe.py:huge")
    bad = load_config("configs/tsgl_lama.py").model
    bad.name = "tsgl_x"
    with pytest.raises(ValueError, match="model.name"):
        conv.build_generator(bad)


def test_count_macs_by_formula():
    x = jnp.zeros((2, 8, 8, 3))
    k = jnp.zeros((3, 3, 3, 5))
    conv_fn = lambda a, w: jax.lax.conv_general_dilated(a, w, (1, 1), "SAME",  # noqa: E731
                                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert conv.count_macs(conv_fn, x, k) == 2 * 8 * 8 * 5 * 9 * 3
    # transposed (input-dilated) conv: input elements x taps x output channels
    up = lambda a, w: jax.lax.conv_general_dilated(a, w, (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),  # noqa: E731
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert conv.count_macs(up, x, jnp.zeros((4, 4, 3, 5))) == 2 * 8 * 8 * 16 * 3 * 5
    assert conv.count_macs(lambda a, b: jnp.einsum("bij,jk->bik", a, b), jnp.zeros((2, 3, 4)), jnp.zeros((4, 6))) == 144
    assert conv.count_macs(jax.jit(lambda a, b: a @ b), jnp.zeros((3, 4)), jnp.zeros((4, 6))) == 72  # inside jit


def test_tsgl_summary_against_the_original_counts():
    """torch.utils.flop_counter / parameter counts on the original modules: TSGL-LaMa 34,468,035
    params and 463.37 GMAC at 512^2; TSGL-MEDFE 138,331,611 params and 197.74 GMAC at 256^2."""
    lama = conv.tsgl_summary(load_config("configs/tsgl_lama.py"))
    assert lama["params"] == 34_468_035 and lama["params_training_only"] == 4_141_313
    assert abs(lama["gmacs"] - 463.37) < 0.01
    assert (lama["paper_params_M"], lama["paper_gflops"]) == (34.0, 463.0)
    medfe = conv.tsgl_summary(load_config("configs/tsgl_medfe.py"))
    assert medfe["params"] == 138_331_611 and medfe["params_training_only"] == 53_539_009
    # ours computes the structure encoder's mask-update conv with one output channel (the original:
    # Co identical ones) and counts the Gaussian mixing, which PyTorch does as mul + sum
    layers = [(128, 3, 7, 64), (64, 64, 5, 128), (32, 128, 5, 256), (16, 256, 3, 512), (8, 512, 3, 1024)]
    mask_conv_saving = sum(h * h * ci * k * k * (co - 1) for h, ci, k, co in layers)
    gaussian = 1024 * 1024 * 512
    assert abs(medfe["gmacs"] - (197.74 - mask_conv_saving / 1e9 + gaussian / 1e9)) < 0.01
