"""Training checkpoints: one small wrapper over orbax's CheckpointManager, so a
move to orbax's v1 API touches this file only.

A checkpoint at step s holds three items:
  * `state`  - the TrainState pytree (params, EMA codebook, optimizer and discriminator state, key);
  * `data`   - the training iterator's state, written by grain's orbax checkpoint handler
               (`data/process_<i>-of-<n>.json`, one per process), so a resumed run sees the same
               batches; checkpoints from before the grain pipeline hold it as orbax JSON and still
               restore;
  * `config` - the run's config (JSON), so inference and later phases can rebuild the models.
Orbax writes each checkpoint into a temporary directory and renames it when complete, so a run
killed mid-save leaves the previous checkpoint intact and the partial one is ignored. `save` returns
only once the checkpoint is committed: with orbax's asynchronous saves training ran on while a save
was in flight, so a kill then lost the steps since the previous checkpoint plus those trained during
the save (more than one interval); now a kill loses at most one checkpoint interval. With several
processes (fdm_jax/train/distributed.py) every process calls save and restore, as orbax requires: each
writes the shards of the arrays it holds (replicated state: process 0 writes it) and orbax commits the
step once all are done; the directory must be one path all processes see (a shared filesystem, or GCS). A checkpoint that
does not restore (truncated file, bad metadata) is skipped for the newest one that does, and renamed
`<step>.corrupt` (never deleted) so the step can be saved again.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import grain
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint directory that cannot be used, named in the message."""


class Checkpointer:
    def __init__(self, directory, *, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "data", "config"))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, iterator, config_json: str) -> None:
        """Saves `state`, the data iterator (a grain DatasetIterator, fdm_jax.data.pipeline) and the
        config, and waits until the checkpoint is committed (see the module doc); a failed write (disk
        full, ...) is a CheckpointError naming the step, the previous checkpoints untouched."""
        try:
            self.manager.save(int(step), args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                data=grain.checkpoint.CheckpointSave(iterator),
                config=ocp.args.JsonSave(json.loads(config_json))))
            self.manager.wait_until_finished()
        except OSError as e:
            raise CheckpointError(f"checkpoint {self.directory}/{step}: save failed ({type(e).__name__}: {e}); "
                                  f"the newest good checkpoint is {self._committed_steps()[-1:] or 'none'} "
                                  "(kept)") from e

    def _committed_steps(self) -> list[int]:
        return sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit()) \
            if self.directory.is_dir() else []

    def _data_args(self, step: int, iterator):
        """How to restore the `data` item into `iterator`: grain's handler for this process's file;
        the state file of another process when the process count changed (every process's iterator
        state is the same global position); orbax JSON for a checkpoint from before grain."""
        data_dir = self.directory / str(step) / "data"
        index, count = jax.process_index(), jax.process_count()
        if (data_dir / f"process_{index}-of-{count}.json").exists():
            return "grain", grain.checkpoint.CheckpointRestore(iterator)
        others = sorted(data_dir.glob("process_*-of-*.json"))
        if others:
            return "file", others[0]
        return "json", ocp.args.JsonRestore()

    def restore(self, abstract_state, step: int | None = None, iterator=None):
        """(state, config dict) of `step` (default: the latest); `iterator`, when given, is set to the
        saved data position. `abstract_state` is a pytree of jax.ShapeDtypeStruct with the shardings
        wanted now (any device count)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        args = dict(state=ocp.args.StandardRestore(abstract_state), config=ocp.args.JsonRestore())
        how = None
        if iterator is not None:
            how, data_arg = self._data_args(step, iterator)
            if how != "file":
                args["data"] = data_arg
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(**args))
            if how == "json":
                iterator.set_state(out["data"])
            elif how == "file":
                iterator.set_state(json.loads(data_arg.read_text()))
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"checkpoint {self.directory}/{step} does not match this config's train "
                                  f"state ({type(e).__name__}: {str(e)[:500]})") from e
        except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds on damaged files
            raise CheckpointError(f"checkpoint {self.directory}/{step} cannot be read "
                                  f"({type(e).__name__}: {str(e)[:500]})") from e
        return out["state"], out["config"]

    def restore_newest(self, abstract_state, iterator=None, log=print):
        """(step, state, config) of the newest checkpoint that restores cleanly (`iterator` set to its
        data position), or None when
        there is none. Newer ones that fail are reported through `log` and renamed `<step>.corrupt`
        (kept for inspection, out of orbax's way), but only once an older one restored: when none
        restores the cause is the config, not the files, and nothing is renamed."""
        failed = []
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                state, config = self.restore(abstract_state, step, iterator)
            except CheckpointError as e:
                failed.append((step, e))
                continue
            if failed:  # several processes: every one has failed on the same files; process 0 renames
                from fdm_jax.train.distributed import barrier, is_primary

                barrier("fdm_jax_checkpoint_skip_start")
                for bad, e in failed:
                    kept = _move_aside(self.directory / str(bad)) if is_primary() else \
                        self.directory / f"{bad}.corrupt"
                    log(f"skipped: {str(e).splitlines()[0][:300]}; kept as {kept.name}; resuming from step {step}")
                barrier("fdm_jax_checkpoint_skip_done")
                self.manager.reload()
            return step, state, config
        if failed:
            raise failed[0][1]
        return None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def find_checkpoint_dir(path) -> Path:
    """A run directory (holding `checkpoints/`) or a checkpoints directory -> the checkpoints directory."""
    p = Path(path).absolute()
    for candidate in (p / "checkpoints", p):
        if candidate.is_dir() and any(c.name.isdigit() for c in candidate.iterdir()):
            return candidate
    raise CheckpointError(f"{p}: no fdm_jax checkpoints (expected numbered step directories in {p} or "
                          f"{p / 'checkpoints'})")


def load_trained_variables(path, step: int | None = None) -> tuple[dict, dict]:
    """Model variables of a project checkpoint, without optimizer state: ({'codec': {'params',
    'codebook'}, 'fdm': {'params'}, 'sampler': {'params'}} for the models it holds, config dict).
    Arrays come back as jax arrays on the default device, whatever the device count of the run that
    saved them."""
    directory = find_checkpoint_dir(path)
    manager = ocp.CheckpointManager(directory, item_names=("state", "data", "config"))
    steps = sorted(manager.all_steps(), reverse=True) if step is None else [step]
    if not steps:
        raise CheckpointError(f"no checkpoint in {directory}")
    out, errors = None, []
    for s in steps:  # the newest that restores; a damaged newer one is reported, not fatal
        try:
            out = manager.restore(s, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(_local_target(directory / str(s) / "state")),
                config=ocp.args.JsonRestore()))
        except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds on damaged files
            errors.append(f"{directory}/{s}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
            continue
        step = s
        break
    manager.close()
    if out is None:
        raise CheckpointError(f"no checkpoint in {directory} can be read ({'; '.join(errors)})")
    for e in errors:
        warnings.warn(f"checkpoint {e}; skipped for step {step}", stacklevel=2)
    state, config = out["state"], out["config"]
    if not isinstance(state, dict) or "params" not in state:
        raise CheckpointError(f"{directory}/{step}: not an fdm_jax train state (no 'params')")
    variables = {}
    for name, params in state["params"].items():
        variables[name] = {"params": jax.tree_util.tree_map(jnp.asarray, params)}
    if "codec" in variables:
        if "codebook" not in state:
            raise CheckpointError(f"{directory}/{step}: codec parameters without a 'codebook'")
        variables["codec"]["codebook"] = jax.tree_util.tree_map(jnp.asarray, state["codebook"])
    return variables, config


def _local_target(state_dir: Path):
    """The saved state's shapes and dtypes on this process's first device: a checkpoint restores
    whatever the device count or process count of the run that saved it (without a target orbax
    reuses the saved sharding, and a multi-process checkpoint is then a 'topology mismatch')."""
    meta = ocp.StandardCheckpointer().metadata(state_dir)
    tree = getattr(meta, "item_metadata", meta)
    tree = getattr(tree, "tree", tree)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree_util.tree_map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device) if hasattr(m, "shape") else m, tree)


def _move_aside(path: Path) -> Path:
    target = path.with_name(path.name + ".corrupt")
    n = 1
    while target.exists():
        target, n = path.with_name(f"{path.name}.corrupt{n}"), n + 1
    path.rename(target)
    return target


PHASE_ORDER = ("codec", "sampler", "fdm", "fdm_tuning")


def load_inference_variables(paths) -> tuple[dict, dict]:
    """Variables for inference from project runs: (variables {'codec', 'sampler', 'fdm'}, config dict).

    Each path is a phase run directory (holding `checkpoints/`) or a run root holding phase
    directories (`codec/`, `sampler/`, `fdm/`, `fdm_tuning/`, as `phase: all` writes them). Phases
    load in training order and a later phase's copy of a model replaces an earlier one, so the codec
    comes from fdm_tuning when it exists (its decoder is the tuned one), the sampler from `sampler`.
    The returned config is that of the last phase loaded (all phases share the model sizes).
    """
    dirs = []
    for p in map(Path, paths):
        phase_dirs = [p / name for name in PHASE_ORDER if (p / name / "checkpoints").is_dir()]
        dirs += phase_dirs if phase_dirs else [p]
    found = []
    for d in dirs:
        variables, config = load_trained_variables(d)
        found.append((PHASE_ORDER.index(config.get("phase")) if config.get("phase") in PHASE_ORDER else -1,
                      variables, config))
    found.sort(key=lambda t: t[0])
    merged, config = {}, None
    for _, variables, cfg in found:
        merged.update(variables)
        config = cfg
    return merged, config
