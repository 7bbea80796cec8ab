"""Parameter counts of the full paper configs equal the original's (counted by
instantiating the original configs): the numbers behind the README's reconciliation with Table 2."""

from pathlib import Path

from fdm_jax.cli.config_loading import load_config
from fdm_jax.summary import count_parameters, main

ROOT = Path(__file__).resolve().parents[1]


def test_full_paris_counts_match_the_original():
    c = load_config(str(ROOT / "configs/paris.py"))
    n = count_parameters(c.model, c.image_size)
    assert n["codec/encoder"] == 642_560
    assert n["codec/decoder"] == 6_627_075
    assert n["codec (total)"] == 7_401_219
    assert n["sampler (transformer)"] == 111_252_992
    assert n["PUT = codec + sampler"] == 118_654_211
    assert n["FDM"] == 3_806_976


def test_places_has_the_same_architecture():
    a = load_config(str(ROOT / "configs/paris.py"))
    b = load_config(str(ROOT / "configs/places.py"))
    assert count_parameters(a.model, 256) == count_parameters(b.model, 256)


def test_cli_prints_paper_column(capsys):
    assert main(["--config", str(ROOT / "configs/paris.py")]) == 0
    out = capsys.readouterr().out
    assert "118,654,211" in out and "119M" in out and "3,806,976" in out


def test_big_lama_count_matches_the_original_code(capsys):
    from fdm_jax.summary import main

    assert main(["--config", "configs/big_lama.py"]) == 0
    out = capsys.readouterr().out
    # 50,975,875 = the original FFCResNetGenerator(big-lama.yaml), counted on the original module
    assert "generator (total)                              50,975,875" in out


def test_tsgl_lama_summary_counts_the_original_parameters(capsys):
    """The tiny TSGL-LaMa's count equals the original module's `parameters()` as recorded in the
    fixture's state_dict (weights, spectral-norm weight_orig and biases; BatchNorm statistics and
    spectral-norm u/v are buffers), with the training-only structure decoder `up_high.*` apart."""
    import numpy as np

    from shared_paths import fixtures_dir, require

    buffers = ("running_mean", "running_var", "num_batches_tracked", "weight_u", "weight_v")
    with np.load(require(fixtures_dir() / "tsgl" / "tsgl_lama_generator_small.npz")) as f:
        params = {k[len("param/"):]: f[k].size for k in f.files
                  if k.startswith("param/") and k.rsplit(".", 1)[-1] not in buffers}
    test_time = sum(n for k, n in params.items() if not k.startswith("up_high."))
    training_only = sum(n for k, n in params.items() if k.startswith("up_high."))
    assert test_time > 0 and training_only > 0

    assert main(["--config", "configs/tsgl_lama.py:tiny"]) == 0
    out = capsys.readouterr().out
    import re

    number = lambda label: int(re.search(label + r"\s+([\d,]+)", out).group(1).replace(",", ""))
    assert number("tsgl_lama generator parameters") == test_time, out
    assert number(r"training-only parameters \(not counted\)") == training_only, out
    assert "GMACs at 128x128" in out
