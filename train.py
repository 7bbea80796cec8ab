"""Train PUT + FDM (phases codec, sampler, fdm, fdm_tuning) from a config.

    python train.py --config configs/paris.py --config.phase=fdm_tuning --workdir runs/paris

Status: the training loop is not implemented yet (tracked by the training issue). Today this
script loads and validates the config, builds the models and reports their sizes, then exits
with status 2 so no one mistakes it for a training run.
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from fdm_jax.config_loading import load_config
    from fdm_jax.summary import count_parameters

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/paris.py:tiny", help="config file[:variant]")
    ap.add_argument("--workdir", default="workdir")
    args = ap.parse_args(argv)
    config = load_config(args.config)
    counts = count_parameters(config.model, config.image_size)
    print(f"config {args.config}: phase {config.phase}, image size {config.image_size}, "
          f"PUT+FDM parameters {counts['PUT + FDM']:,}")
    print("train.py: training is not implemented yet; see the training issue.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
