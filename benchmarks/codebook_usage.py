"""Codebook usage of a PUT codec on the held-out photos: is the codebook collapsed?

    python benchmarks/codebook_usage.py                                   # the shipped put_fdm_small
    python benchmarks/codebook_usage.py --checkpoint runs_small/put_fdm_small/codec

Encodes the 50 held-out photos (configs/put_fdm_small_lists/heldout.txt, eval preprocessing) without
a mask, so every patch takes one of the codes the sampler predicts (index < masked_embed_start), and
reports how many distinct codes occur, the perplexity exp(H) of their frequencies, and the share of
patches taken by the 10 most frequent codes. Also counts codes whose embedding norm is > 100 (never
updated by the EMA: the original's cluster_size starts at zero, so unused codes blow up, see
configs/demo.py). Prints JSON; --out writes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def usage(model, images: np.ndarray) -> dict:
    import jax.numpy as jnp

    from fdm_jax.put_fdm import PatchVQVAE

    codec, cv = model.models["codec"], model.variables["codec"]
    tokens = np.concatenate([np.asarray(codec.apply(cv, jnp.asarray(images[s:s + 10], jnp.float32),
                                                    method=PatchVQVAE.get_features)["token"]).ravel()
                             for s in range(0, len(images), 10)])
    counts = np.bincount(tokens, minlength=int(codec.num_embed))[: int(codec.masked_embed_start)]
    p = counts[counts > 0] / counts.sum()
    emb = np.asarray(cv["codebook"]["quantizer"]["embedding"])
    norms = np.linalg.norm(emb, axis=1)
    return {"codes_available": int(codec.masked_embed_start), "codes_used": int((counts > 0).sum()),
            "perplexity": float(np.exp(-(p * np.log(p)).sum())),
            "top10_share": float(np.sort(counts)[::-1][:10].sum() / counts.sum()),
            "patches": int(counts.sum()),
            "codes_norm_over_100": int((norms[: int(codec.masked_embed_start)] > 100).sum())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="put_fdm_small")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import ml_collections

    import fdm_jax
    from fdm_jax.api import PutFdm
    from fdm_jax.put_fdm import build_models
    from fdm_jax.train.checkpointing import load_trained_variables
    from put_fdm_small_eval import load_heldout

    p = Path(args.checkpoint)
    if (p / "checkpoints").is_dir():  # a single phase directory (e.g. codec/ while the sampler trains)
        variables, cfg = load_trained_variables(p)
        cfg = ml_collections.ConfigDict(cfg)
        model = PutFdm(cfg, build_models(cfg.model), variables)
    else:
        model = fdm_jax.load(args.checkpoint)
    _, images = load_heldout(model.image_size)
    out = {"checkpoint": args.checkpoint, **usage(model, images)}
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
