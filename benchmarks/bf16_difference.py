"""How far the bfloat16 computation (model.dtype = 'bfloat16': bfloat16 matmuls and convolutions,
float32 parameters, LayerNorm, softmax, residual stream, logits and codebook search) is from float32,
on one fixed input, for the same float32 weights.

    python benchmarks/bf16_difference.py [--run /tmp/demo_run] [--paris] [--out FILE.json]

Models: a trained demo run (`--run`, 64x64, trained weights) and/or the Paris architecture with
random initial weights (`--paris`, 256x256, 35 blocks of width 512). Input: the first Places365 image
of shared/data/images/places2_256_freeform with its free-form mask (resized to the model size).

Reported per model:
  codec_features: max/mean |F_bf16 - F_f32| of the encoder features, relative to max |F_f32|;
    token agreement of the known patches (nearest code, searched in float32 either way);
  sampler_logits: one sampler pass on the float32 features: max/mean abs difference, relative to
    max |logits|, top-1 (argmax class) agreement over all positions and over the masked ones, and
    whether the first position the sequential schedule fills (max-logit rule) is the same;
  decode_psnr_db: PSNR in dB between the float32 and the bfloat16 decoder outputs in [0, 255] for the
    same (float32) features, decode_with_feature;
  fdm_pv: max |pv_bf16 - pv_f32| relative to max |pv_f32|;
  greedy_inpaint (demo run only, cheap there): the whole pipeline with top_k = 1 in each dtype:
    share of filled tokens that agree and the PSNR between the two results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "data" / "images" / "places2_256_freeform"


def _input(size: int):
    import cv2

    from fdm_jax.io.images import read_image, read_mask, resize_and_center_crop

    name = sorted((IMAGES / "images").glob("*.jpg"))[0]
    image, _ = resize_and_center_crop(read_image(name), size)
    known = read_mask(IMAGES / "masks" / (name.stem + ".png"), "hole-white")
    known = (cv2.resize(known, (size, size), interpolation=cv2.INTER_NEAREST) > 0.5).astype(np.float32)
    return image.astype(np.float32)[None], known[None, ..., None], name.name


def _psnr(a, b) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _rel(a, b) -> dict:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d, scale = np.abs(a - b), float(np.max(np.abs(a)))
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean()), "ref_max_abs": scale,
            "max_rel_to_ref_max": float(d.max() / scale) if scale else None}


def measure(config, variables, greedy: bool) -> dict:
    import jax
    import jax.numpy as jnp

    from fdm_jax.put_fdm import PatchVQVAE, build_models, masked_patch_index
    from fdm_jax.put_fdm.sampling import confidence, jit_inpaint_samples

    s = config.image_size
    image, known, name = _input(s)
    img, msk = jnp.asarray(image), jnp.asarray(known)
    models = {}
    for dt in ("float32", "bfloat16"):
        c = config.copy_and_resolve_references()
        with c.unlocked():
            c.model.dtype = dt
        models[dt] = build_models(c.model)
    out = {"input": name, "image_size": s, "hole_fraction": float(1 - known.mean())}

    feats = {dt: jax.jit(lambda v, m=m: m["codec"].apply(v, img, msk, method=PatchVQVAE.get_features))(variables["codec"])
             for dt, m in models.items()}
    tt = np.asarray(feats["float32"]["token_type"])
    agree = np.asarray(feats["float32"]["token"]) == np.asarray(feats["bfloat16"]["token"])
    out["codec_features"] = {**_rel(feats["float32"]["feature"], feats["bfloat16"]["feature"]),
                             "known_token_agreement": float(agree[tt == 1].mean())}

    f = feats["float32"]["feature"]
    seq = f.reshape(f.shape[0], -1, f.shape[-1])
    logits = {dt: np.asarray(jax.jit(m["sampler"].apply)(variables["sampler"], seq)) for dt, m in models.items()}
    assert logits["bfloat16"].dtype == np.float32
    top1 = logits["float32"].argmax(-1) == logits["bfloat16"].argmax(-1)
    unknown = (tt != 1).reshape(top1.shape)
    first = {dt: int(np.argmax(np.asarray(confidence(jnp.asarray(l), jnp.asarray(~unknown))), axis=-1)[0])
             for dt, l in logits.items()}
    srt = np.sort(logits["float32"], axis=-1)
    out["sampler_logits"] = {**_rel(logits["float32"], logits["bfloat16"]),
                             "top1_agreement_all": float(top1.mean()),
                             "top1_agreement_masked": float(top1[unknown].mean()),
                             "median_top1_top2_gap_f32": float(np.median(srt[..., -1] - srt[..., -2])),
                             "first_fill_position": first, "first_fill_same": first["float32"] == first["bfloat16"]}

    q = feats["float32"]["feature_quantize"]
    dec = {dt: np.asarray(jax.jit(lambda v, m=m: m["codec"].apply(v, q, img, msk, method=PatchVQVAE.decode_with_feature))(
        variables["codec"])) for dt, m in models.items()}
    out["decode_psnr_db"] = _psnr(dec["float32"], dec["bfloat16"])
    out["decode_max_abs_diff_255"] = float(np.abs(dec["float32"] - dec["bfloat16"]).max())

    mpi = masked_patch_index(msk, config.model.codec.patch_size)
    pv = {dt: np.asarray(jax.jit(m["fdm"].apply)(variables["fdm"], q, mpi)) for dt, m in models.items()}
    out["fdm_pv"] = _rel(pv["float32"], pv["bfloat16"])

    if greedy:
        res = {dt: jit_inpaint_samples(m["codec"], variables["codec"], m["sampler"], variables["sampler"], m["fdm"],
                                       variables["fdm"], img, msk, jax.random.key(0), 1, top_k=1)
               for dt, m in models.items()}
        a, b = (np.asarray(res[dt]["tokens"]) for dt in ("float32", "bfloat16"))
        filled = np.broadcast_to(unknown.reshape(a.shape[1:]), a.shape)
        out["greedy_inpaint"] = {
            "filled_token_agreement": float((a == b)[filled].mean()),
            "psnr_db_between_results": _psnr(res["float32"]["inpainted_image"], res["bfloat16"]["inpainted_image"]),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=None, help="a trained demo run root (e.g. /tmp/demo_run)")
    ap.add_argument("--paris", action="store_true", help="also the Paris architecture with random weights")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import jax

    from fdm_jax.inference.put_fdm import load_put_fdm

    result = {"what": "bfloat16 computation vs float32, same float32 weights, one fixed image + mask",
              "bf16_unit_roundoff": 2.0 ** -8, "jax": jax.__version__,
              "devices": [str(d) for d in jax.devices()], "cpu_threads": os.cpu_count(), "models": {}}
    if args.run:
        config, _, variables = load_put_fdm([args.run])
        result["models"]["demo_run"] = {"source": str(args.run), **measure(config, variables, greedy=True)}
        print(json.dumps(result["models"]["demo_run"]), flush=True)
    if args.paris:
        config, _, variables = load_put_fdm(["random"], "paris")
        result["models"]["paris_random"] = {"source": "configs/paris.py, random initial weights",
                                            **measure(config, variables, greedy=False)}
        print(json.dumps(result["models"]["paris_random"]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
