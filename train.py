"""Train PUT + FDM from a config: one phase, or all of them in order.

    python train.py                                          # the demo: configs/demo.py -> runs/demo
    python train.py --config configs/paris.py --config.phase=fdm --workdir runs/paris/fdm
    python train.py --config configs/paris.py:tiny --config.run.max_steps=100 --config.phase=codec

Any config value can be overridden with --config.KEY=VALUE (KEY dotted, e.g.
--config.train.fdm.batch_size=4); a key that does not exist is an error naming it. Running the same
command again resumes from the latest checkpoint in --workdir (SIGTERM saves a checkpoint of the
step reached and exits 0). Phases (config.phase): codec, sampler,
fdm, fdm_tuning, or all (run.phases in order, each in <workdir>/<phase>). TSGL trains through the
same loop: python train.py --config configs/tsgl_medfe.py:tiny (or tsgl_lama.py), phase 'generator'.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/demo.py", help="config file[:variant] (default: the demo)")
    ap.add_argument("--workdir", default=None, help="run directory (default: runs/<config name>)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to metrics.jsonl)")
    from fdm_jax.cli import compilation_cache

    compilation_cache.add_argument(ap)
    args, rest = ap.parse_known_args(argv)
    overrides = []
    for item in rest:
        if not item.startswith("--config."):
            ap.error(f"unrecognized argument {item!r} (config overrides look like --config.KEY=VALUE)")
        overrides.append(item[len("--config."):])

    from fdm_jax.cli.config_loading import apply_overrides, load_config, split_spec

    try:
        config = apply_overrides(load_config(args.config), overrides)
        # Only the PUT + FDM configs (no model_name) share configs/put_fdm_common.py's cross-field checks.
        cm_validate = _validator(args.config) if config.get("model_name") is None else None
        if cm_validate is not None:
            cm_validate(config)
    except (ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    workdir = Path(args.workdir or Path("runs") / Path(split_spec(args.config)[0]).stem)
    compilation_cache.setup(args.compilation_cache)

    from fdm_jax.train import TrainingError, TrainingInterrupted, train
    from fdm_jax.train.checkpointing import CheckpointError

    try:
        train(config, workdir, progress=not args.no_progress)
    except TrainingInterrupted as e:  # SIGTERM: checkpointed, a clean stop
        print(f"{e}; run the same command again to resume")
        return 0
    except (ValueError, FileNotFoundError, CheckpointError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"done: {workdir}")
    return 0


def _validator(spec):
    """The config family's validate() (configs/put_fdm_common.py), re-run after overrides."""
    from fdm_jax.cli.config_loading import resolve_config_path, split_spec
    import importlib.util

    common = resolve_config_path(split_spec(spec)[0]).parent / "put_fdm_common.py"
    if not common.is_file():
        return None
    module_spec = importlib.util.spec_from_file_location("_fdm_jax_configs_put_fdm_common_v", common)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.validate


if __name__ == "__main__":
    raise SystemExit(main())
