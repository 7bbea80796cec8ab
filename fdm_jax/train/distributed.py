"""Multi-controller JAX: one process per host (or per GPU), all running the same command.

    from fdm_jax.train import distributed
    distributed.initialize()                        # before anything touches a JAX backend
    distributed.initialize("10.0.0.1:1234", 2, 0)   # explicit: coordinator, process count, this process

`initialize` calls `jax.distributed.initialize` only when the command runs as one of several
processes: when the explicit arguments (train.py / evaluate.py --coordinator_address,
--num_processes, --process_id) say so, or when the environment does (JAX's own
JAX_COORDINATOR_ADDRESS; an srun step with more than one task (JAX then gives each task the
GPU of its SLURM_LOCALID: one task per GPU); Open MPI with more than one rank; a
multi-host Cloud TPU slice naming its workers in TPU_WORKER_HOSTNAMES or MEGASCALE_*; or
FDM_JAX_DISTRIBUTED=1, which asks JAX's cluster auto-detection to find the rest). A plain single
process never tries, so a laptop run does not wait for a coordinator.

After it, `jax.devices()` lists every process's devices, and the training loop's `data` mesh spans
them all; each process loads its own rows of the global batch (fdm_jax.data.pipeline.TrainIterator)
and `shard_batch` assembles the global array with `jax.make_array_from_process_local_data`. Only
process 0 writes logs, metrics, TensorBoard, sample grids, plots and evaluation tables
(`is_primary`); orbax checkpoints are saved and restored by all processes together.

On the CPU backend (tests, a CPU cluster) cross-process collectives need gloo; `initialize` selects it
(`jax_cpu_collectives_implementation`) unless the user chose another implementation.
"""

from __future__ import annotations

import os

import jax

_ENV_FLAG = "FDM_JAX_DISTRIBUTED"


def _int_env(name: str) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


def cluster_from_environment() -> str | None:
    """The name of the multi-process launcher the environment shows, or None for a plain process."""
    flag = os.environ.get(_ENV_FLAG, "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return None
    if flag in ("1", "true", "yes", "on", "auto"):
        return _ENV_FLAG
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return "JAX_COORDINATOR_ADDRESS"
    # srun sets SLURM_STEP_NUM_TASKS for its step; a batch script's own shell (one process) has only
    # the job's SLURM_NTASKS, so a plain `python train.py` there stays a single process.
    if "SLURM_JOB_ID" in os.environ and "SLURM_PROCID" in os.environ and (_int_env("SLURM_STEP_NUM_TASKS") or 0) > 1:
        return "SLURM"
    if (_int_env("OMPI_COMM_WORLD_SIZE") or 0) > 1:
        return "Open MPI"
    hosts = os.environ.get("TPU_WORKER_HOSTNAMES") or os.environ.get("TPU_PROCESS_ADDRESSES") or ""
    if len([h for h in hosts.split(",") if h.strip()]) > 1 or os.environ.get("MEGASCALE_COORDINATOR_ADDRESS"):
        return "Cloud TPU"
    return None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
    """Joins the multi-process run when there is one (see the module doc); returns whether it did.
    Call it once, first thing, before any JAX computation or device query."""
    explicit = [v is not None for v in (coordinator_address, num_processes, process_id)]
    if any(explicit) and not all(explicit):
        raise ValueError("--coordinator_address, --num_processes and --process_id go together (all three or none)")
    if all(explicit):
        if int(num_processes) < 1 or not 0 <= int(process_id) < int(num_processes):
            raise ValueError(f"--process_id {process_id} is not in [0, --num_processes {num_processes})")
        if int(num_processes) == 1:
            return False  # one process: nothing to coordinate
    elif cluster_from_environment() is None:
        return False
    if jax.distributed.is_initialized():
        return True
    if not jax.config.jax_cpu_collectives_implementation or jax.config.jax_cpu_collectives_implementation == "none":
        # CPU devices of different processes talk through gloo (GPU/TPU backends ignore this setting).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if all(explicit):
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=int(num_processes),
                                   process_id=int(process_id))
    else:
        jax.distributed.initialize()  # JAX's cluster auto-detection (SLURM, Open MPI, Cloud TPU, JAX_* env)
    return True


def is_primary() -> bool:
    """True in the process that writes logs, metrics, grids and reports (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Waits until every process reached the barrier `name` (a no-op with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def define_flags(fv) -> None:
    """--coordinator_address, --num_processes, --process_id on a command's FlagValues."""
    from absl import flags

    d = dict(flag_values=fv)
    flags.DEFINE_string("coordinator_address", None, "host:port of process 0's coordinator, for a multi-process run "
                        "without a cluster launcher that JAX detects (with --num_processes and --process_id)", **d)
    flags.DEFINE_integer("num_processes", None, "number of processes of a multi-process run", **d)
    flags.DEFINE_integer("process_id", None, "this process's index in [0, --num_processes)", **d)


def initialize_from_flags(flags_) -> bool:
    return initialize(flags_.coordinator_address, flags_.num_processes, flags_.process_id)
