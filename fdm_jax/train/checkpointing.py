"""Training checkpoints: one small wrapper over orbax's CheckpointManager (jax_practices.md), so a
move to orbax's v1 API touches this file only.

A checkpoint at step s holds three items:
  * `state`  - the TrainState pytree (params, EMA codebook, optimizer and discriminator state, key);
  * `data`   - the training iterator's position (JSON), so a resumed run sees the same batches;
  * `config` - the run's config (JSON), so inference and later phases can rebuild the models.
Orbax writes each checkpoint into a temporary directory and renames it when complete, so a run
killed mid-save leaves the previous checkpoint intact and the partial one is ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

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

    def save(self, step: int, state, data_state: dict, config_json: str) -> None:
        self.manager.save(int(step), args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state),
            config=ocp.args.JsonSave(json.loads(config_json))))

    def restore(self, abstract_state, step: int | None = None):
        """(state, data_state, config dict) of `step` (default: the latest). `abstract_state` is a
        pytree of jax.ShapeDtypeStruct with the shardings wanted now (any device count)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state),
                data=ocp.args.JsonRestore(),
                config=ocp.args.JsonRestore()))
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"checkpoint {self.directory}/{step} does not match this config's train "
                                  f"state ({type(e).__name__}: {str(e)[:500]})") from e
        return out["state"], out["data"], out["config"]

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
    step = manager.latest_step() if step is None else step
    if step is None:
        raise CheckpointError(f"no checkpoint in {directory}")
    out = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                                        config=ocp.args.JsonRestore()))
    manager.close()
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
