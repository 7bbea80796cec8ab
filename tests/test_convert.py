"""Strict conversion of original checkpoints: every key consumed or ignored with a reason; missing,
extra and mis-shaped keys are errors that name the key and both shapes."""

import jax
import numpy as np
import pytest

from fdm_jax.convert import checkpoints
from fdm_jax.convert.put_fdm import (ConversionError, convert_codec, convert_fdm, convert_sampler,
                                     rename_put_codec_keys, split_inpainting_state_dict)
from fdm_jax.parity.runners.put_fdm import codec_from_kwargs, sampler_from_kwargs
from fdm_jax.put_fdm import FeatureDequantizer
from fdm_jax.parity import load_fixture
from shared_paths import fixtures_dir, require

PUT = fixtures_dir() / "put_fdm"


@pytest.fixture(scope="module")
def greedy():
    return load_fixture(require(PUT / "sampling_greedy.npz"))


@pytest.fixture(scope="module")
def models(greedy):
    kw = greedy.kwargs
    return {"codec": codec_from_kwargs(kw), "sampler": sampler_from_kwargs(kw["transformer"]),
            "fdm": FeatureDequantizer(embed_dim=kw["e_dim"])}


def test_pth_files_convert_without_torch(models, greedy):
    paths = [require(PUT / "put_fdm_codec_fdm_tuning.pth"), require(PUT / "put_fdm_transformer.pth")]
    variables = checkpoints.load_original_inpainting_model(paths, models, use_torch=False)
    assert set(variables) == {"codec", "fdm", "sampler"}
    # Same tensors as the fixture's param/* (the files hold the sampling_greedy weights).
    parts, _ = split_inpainting_state_dict(greedy.params)
    ref = convert_codec(parts["codec"], models["codec"])
    jax.tree.map(np.testing.assert_array_equal, variables["codec"], ref)
    n_leaves = sum(len(jax.tree.leaves(v)) for v in variables.values())
    assert n_leaves == len(greedy.params) - 1  # every key but `temp`


def test_ignored_keys_have_reasons():
    parts, ignored = checkpoints.load_inpainting_parts(
        [require(PUT / "put_fdm_codec_fdm_tuning.pth"), require(PUT / "put_fdm_transformer.pth")], use_torch=False)
    assert set(parts) == {"codec", "fdm", "sampler"}
    reasons = "\n".join(f"{k}: {v}" for k, v in ignored.items())
    assert "temp" in reasons and "loss.discriminator" in reasons and "frozen copy" in reasons
    assert all(ignored.values())


def _codec_sd(greedy):
    parts, _ = split_inpainting_state_dict(greedy.params)
    return dict(parts["codec"])


def test_missing_key_is_named(greedy, models):
    sd = _codec_sd(greedy)
    del sd["decoder.up_layers.1.deconv.weight"]
    with pytest.raises(ConversionError, match=r"missing keys: decoder\.up_layers\.1\.deconv\.weight "
                                              r"\(expected PyTorch shape \(64, 32, 4, 4\)"):
        convert_codec(sd, models["codec"])


def test_extra_key_is_named(greedy, models):
    sd = _codec_sd(greedy)
    sd["decoder.extra_layer.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(ConversionError, match=r"unexpected keys: decoder\.extra_layer\.weight \(3, 3\)"):
        convert_codec(sd, models["codec"])


def test_misshaped_key_names_both_shapes(greedy, models):
    sd = _codec_sd(greedy)
    sd["encoder.pre_layers.0.weight"] = np.zeros((64, 191), np.float32)
    with pytest.raises(ConversionError, match=r"encoder\.pre_layers\.0\.weight: checkpoint shape \(64, 191\), "
                                              r"expected \(64, 192\)"):
        convert_codec(sd, models["codec"])


def test_wrong_width_model_fails_on_every_layer(greedy):
    parts, _ = split_inpainting_state_dict(greedy.params)
    with pytest.raises(ConversionError, match="mis-shaped"):
        convert_fdm(parts["fdm"], FeatureDequantizer(embed_dim=64))


def test_unknown_prefix_is_an_error(greedy):
    sd = dict(greedy.params)
    sd["ema_generator.pos_emb"] = sd["generator.pos_emb"]
    with pytest.raises(ConversionError, match="ema_generator.pos_emb"):
        split_inpainting_state_dict(sd)


def test_legacy_lip_prefix_is_fdm(greedy, models):
    sd = {("lip." + k[len("fdm."):] if k.startswith("fdm.") else k): v for k, v in greedy.params.items()}
    parts, _ = split_inpainting_state_dict(sd)
    assert "fdm" in parts and not any(k.startswith("lip.") for k in parts["fdm"])
    legacy = convert_fdm(parts["fdm"], models["fdm"])
    ref = convert_fdm(split_inpainting_state_dict(greedy.params)[0]["fdm"], models["fdm"])
    assert jax.tree.structure(legacy) == jax.tree.structure(ref)
    jax.tree.map(np.testing.assert_array_equal, legacy, ref)


def test_two_codec_files_are_ambiguous(tmp_path):
    p = require(PUT / "put_fdm_codec_fdm_tuning.pth")
    with pytest.raises(ConversionError, match="found in both"):
        checkpoints.load_inpainting_parts([p, p], use_torch=False)


def test_put_codec_names_round_trip(greedy, models):
    """liuqk3/PUT names (PatchEncoder2 / PatchConvDecoder2 of its patch_vqgan.py) rename onto FDM's."""
    sd = _codec_sd(greedy)
    inverse = {}
    for k, v in sd.items():
        k2 = (k.replace(".layers.0.", ".layers.1.").replace(".layers.2.", ".layers.3.")
              .replace(".conv.0.", ".conv.1.").replace(".conv.2.", ".conv.3.")
              .replace("encoder.post_layers.0.", "encoder.post_layers.1.")
              .replace("decoder.post_layers.0.", "decoder.post_layers.1."))
        if k2.startswith("decoder.encoder.layers"):
            k2 = k
        inverse[k2] = v
    assert inverse.keys() != sd.keys()
    assert rename_put_codec_keys(inverse).keys() == sd.keys()
    convert_codec(rename_put_codec_keys(inverse), models["codec"])


def test_sampler_conversion_checks_all_tensors(greedy, models):
    parts, _ = split_inpainting_state_dict(greedy.params)
    sd = dict(parts["sampler"])
    assert len(sd) == 1 + 2 + 2 * 16 + 4  # pos_emb, emb_proj, 2 blocks x 16, layer_norm x2, to_logits x2
    convert_sampler(sd, models["sampler"])
    del sd["blocks.1.attn.proj.bias"]
    with pytest.raises(ConversionError, match=r"blocks\.1\.attn\.proj\.bias"):
        convert_sampler(sd, models["sampler"])


def test_readme_recipe_with_tiny_config():
    """The README's checkpoint recipe, on the tiny config (the fixtures' reduced sizes)."""
    from pathlib import Path

    from fdm_jax.cli.config_loading import load_config
    from fdm_jax.put_fdm import build_models

    config = load_config(str(Path(__file__).resolve().parents[1] / "configs/paris.py:tiny"))
    models = build_models(config.model)
    variables = checkpoints.load_original_inpainting_model(
        [require(PUT / "put_fdm_codec_fdm_tuning.pth"), require(PUT / "put_fdm_transformer.pth")], models)
    assert set(variables) == {"codec", "sampler", "fdm"}
