"""Train PUT + FDM from a config: one phase, or all of them in order.

    python train.py                                          # the demo: configs/demo.py -> runs/demo
    python train.py --config configs/paris.py --config.phase=fdm --workdir runs/paris/fdm
    python train.py --config paris:tiny --config.run.max_steps 100 --config.phase=codec

--config takes a config file[:variant] or a shipped config's name (paris, places, demo, ...); any
value is overridden with --config.KEY=VALUE or --config.KEY VALUE (ml_collections.config_flags; KEY
dotted, e.g. --config.train.fdm.batch_size=4); a key that does not exist is an error naming it.
Running the same command again resumes from the latest checkpoint in --workdir (SIGTERM saves a
checkpoint of the step reached and exits 0). Phases (config.phase): codec, sampler, fdm, fdm_tuning,
or all (run.phases in order, each in <workdir>/<phase>). TSGL trains through the same loop:
python train.py --config configs/tsgl_medfe.py:tiny (or tsgl_lama.py), phase 'generator'.
Several processes (hosts, or one per GPU): start the same command in each, with
--coordinator_address=HOST:PORT --num_processes=N --process_id=I, or under a launcher JAX detects
(srun, a multi-host TPU slice); see README "Cluster" and fdm_jax/train/distributed.py.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _define(fv) -> None:
    from absl import flags

    from fdm_jax.cli import compilation_cache
    from fdm_jax.train import distributed

    flags.DEFINE_string("workdir", None, "run directory (default: runs/<config name>)", flag_values=fv)
    flags.DEFINE_boolean("no-progress", False, "no progress bar (logs still go to metrics.jsonl)", flag_values=fv)
    compilation_cache.define_flag(fv)
    distributed.define_flags(fv)


def main(argv=None) -> int:
    from fdm_jax.cli.flags import run

    return run(_main, argv, prog="train.py", doc=__doc__, define=_define, config_default="demo")


def _main(flags_) -> int:
    from fdm_jax.cli import compilation_cache
    from fdm_jax.cli.config_loading import load_sibling

    config = flags_.config
    if config.get("model_name") is None:  # PUT + FDM: re-run configs/put_fdm_common.py's checks after overrides
        try:
            load_sibling(flags_.config_file, "put_fdm_common.py").validate(config)
        except (ValueError, KeyError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    workdir = Path(flags_.workdir or Path("runs") / Path(flags_.config_file).stem)
    from fdm_jax.train import distributed

    try:  # before anything touches a JAX backend
        distributed.initialize_from_flags(flags_)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    compilation_cache.setup(flags_.compilation_cache)

    from fdm_jax.train import TrainingError, TrainingInterrupted, train
    from fdm_jax.train.checkpointing import CheckpointError

    try:
        train(config, workdir, progress=not flags_.no_progress)
    except TrainingInterrupted as e:  # SIGTERM: checkpointed, a clean stop
        if distributed.is_primary():
            print(f"{e}; run the same command again to resume")
        return 0
    except (ValueError, FileNotFoundError, CheckpointError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if distributed.is_primary():
        print(f"done: {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
