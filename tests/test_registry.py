"""The model registry (fdm_jax.inference.registry): every shipped model is found by name, its paper
config names it, its builder makes the right modules, and the commands offer exactly its names."""

import pytest

from fdm_jax.cli.config_loading import load_config
from fdm_jax.inference import registry


@pytest.mark.parametrize("name", list(registry.REGISTRY))
def test_entry_builds_its_model_from_its_config(name):
    entry = registry.get(name)
    config = load_config(entry.config + ":tiny")
    assert registry.name_of(config) == name
    built = entry.build(config)
    if name == "put_fdm":
        assert sorted(built) == ["codec", "fdm", "sampler"]
        assert type(built["sampler"]).__name__ == "FeatureSampler"
    else:
        want = {"lama": "FFCResNetGenerator", "tsgl_lama": "TSGLLamaGenerator", "tsgl_medfe": "TSGLMedfeGenerator"}
        assert type(built).__name__ == want[name]


def test_unknown_name_and_command_choices():
    with pytest.raises(ValueError, match="expected one of put_fdm, lama"):
        registry.get("big_lama")
    from absl import flags

    from fdm_jax.inpaint import _define

    fv = flags.FlagValues()
    _define(fv)
    assert fv["model"].parser.enum_values == list(registry.REGISTRY)
    assert set(registry.GENERATORS) == set(registry.REGISTRY) - {"put_fdm"}
