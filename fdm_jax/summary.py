"""Parameter counts per module of a config, beside the paper's (FDM paper Table 2: PUT 119M, FDM 3M).

    python -m fdm_jax.summary --config configs/paris.py

Counts come from `jax.eval_shape` of each module's init, so the full 111M-parameter transformer is
counted without allocating it.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp

from fdm_jax.put_fdm import build_models
from fdm_jax.nn.params import abstract_variables, count_params


def count_parameters(model_config, image_size: int) -> dict[str, int]:
    """{row name: number of parameters}. Codebook buffers are counted separately, as PyTorch does
    (they are buffers, not parameters, in the original)."""
    models = build_models(model_config)
    counts: dict[str, int] = {}
    if "codec" in models:
        codec = models["codec"]
        s = image_size
        v = abstract_variables(codec, jnp.zeros((1, s, s, codec.in_ch)), jnp.ones((1, s, s, 1)))
        p = v["params"]
        counts["codec/encoder"] = count_params(p["encoder"])
        counts["codec/quant_conv"] = count_params(p["quant_conv"])
        counts["codec/post_quant_conv"] = count_params(p["post_quant_conv"])
        counts["codec/decoder"] = count_params(p["decoder"])
        counts["codec (total)"] = count_params(p)
        counts["codec/codebook buffers (embedding only)"] = count_params(v["codebook"]["quantizer"]["embedding"])
    if "sampler" in models:
        sm = models["sampler"]
        v = abstract_variables(sm, jnp.zeros((1, sm.seq_len, sm.feature_dim)))
        counts["sampler (transformer)"] = count_params(v["params"])
    if "codec" in models and "sampler" in models:
        counts["PUT = codec + sampler"] = counts["codec (total)"] + counts["sampler (transformer)"]
    if "fdm" in models:
        f = models["fdm"]
        v = abstract_variables(f, jnp.zeros((1, 4, 4, f.embed_dim)), jnp.ones((1, 4, 4, 1)))
        counts["FDM"] = count_params(v["params"])
    if "PUT = codec + sampler" in counts and "FDM" in counts:
        counts["PUT + FDM"] = counts["PUT = codec + sampler"] + counts["FDM"]
    return counts


def main(argv=None) -> int:
    from fdm_jax.cli.config_loading import load_config

    ap = argparse.ArgumentParser(prog="python -m fdm_jax.summary", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="config file, optionally with :variant (e.g. configs/paris.py:tiny)")
    args = ap.parse_args(argv)
    config = load_config(args.config)
    if config.get("model_name") == "lama":
        return _summary_lama(config)
    if str(config.get("model_name", "")).startswith("tsgl"):
        return _summary_tsgl(config)
    counts = count_parameters(config.model, config.image_size)
    ref = config.reference  # FDM paper (WACV 2025) Table 2
    paper = {"PUT = codec + sampler": ref.put_params, "FDM": ref.fdm_params}
    print(f"{'module':42s} {'parameters':>14s} {'millions':>9s}  paper (Table 2)")
    for name, n in counts.items():
        print(f"{name:42s} {n:14,d} {n / 1e6:9.2f}  {paper.get(name, '')}")
    return 0


def _summary_lama(config) -> int:
    """Big-LaMa (configs/big_lama.py): the FFC generator split at the refinement's front/rear."""
    from fdm_jax.lama.generator import FFCResNetGenerator
    from fdm_jax.lama.generator import count_parameters as lama_count

    counts = lama_count(FFCResNetGenerator(**config.model))
    ref = config.reference.get("parameters")
    paper = {"total": "~51M (LaMa paper: Big-LaMa 51M)" + (f"; original code {ref:,}" if ref else "")}
    print(f"{'module':42s} {'parameters':>14s} {'millions':>9s}  reference")
    for name, label in (("front", "generator front (refined featuremap z)"), ("rear", "generator rear"),
                        ("total", "generator (total)"), ("batch_stats", "BatchNorm running-stat buffers")):
        n = counts[name]
        print(f"{label:42s} {n:14,d} {n / 1e6:9.2f}  {paper.get(name, '')}")
    return 0


def _summary_tsgl(config) -> int:
    """TSGL-LaMa / TSGL-MEDFE: parameters and MACs of one forward (fdm_jax.convert.tsgl.tsgl_summary)."""
    from fdm_jax.convert.tsgl import tsgl_summary

    s = tsgl_summary(config)
    paper_p = f"{s['paper_params_M']}M" if s.get("paper_params_M") else ""
    paper_g = f"{s['paper_gflops']}G" if s.get("paper_gflops") else ""
    print(f"{'module':42s} {'value':>14s}  paper")
    print(f"{s['model'] + ' generator parameters':42s} {s['params']:14,d}  {paper_p}")
    print(f"{'  training-only parameters (not counted)':42s} {s['params_training_only']:14,d}")
    print(f"{'GMACs at ' + str(s['image_size']) + 'x' + str(s['image_size']):42s} {s['gmacs']:14.2f}  {paper_g}")
    if s.get("paper_note"):
        print(f"note: {s['paper_note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
