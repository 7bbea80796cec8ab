"""Evaluate an inpainting checkpoint (FID, LPIPS, SSIM, PSNR, MAE, diversity) per mask-ratio bucket.

Status: not implemented yet (tracked by the evaluation issue). Today the reference check of the
models against the original code is `python -m fdm_jax.parity ../shared/fixtures/put_fdm/*.npz`.
"""

import sys

if __name__ == "__main__":
    print("evaluate.py: evaluation is not implemented yet; see the evaluation issue.", file=sys.stderr)
    raise SystemExit(2)
