"""The training loop: one phase (or all four in order) from a config, resumable.

    from fdm_jax.train import train
    train(load_config("configs/demo.py"), "runs/demo")

Per phase, in `<workdir>`: `checkpoints/<step>/` (orbax), `metrics.jsonl`, `tensorboard/`,
`samples/step_<n>.png`. Running the same command again resumes from the latest checkpoint (the
data iterator included), so an interrupted run ends with the parameters an uninterrupted one has.
Faults: a kill loses at most one checkpoint interval; a damaged newest checkpoint is skipped for the
newest good one (checkpointing.py); SIGTERM checkpoints the step reached and raises
TrainingInterrupted (train.py exits 0); a non-finite loss stops the run before that state is saved.
Several processes (fdm_jax/train/distributed.py): the mesh spans every process's devices, each
process loads its rows of the global batch, all take part in checkpoints; only process 0 prints and
writes metrics.jsonl, TensorBoard, sample grids and plots.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from fdm_jax.train.checkpointing import PHASE_ORDER, Checkpointer, load_trained_variables
from fdm_jax.train.distributed import is_primary
from fdm_jax.train.metrics_log import MetricsLog, NullMetricsLog, plot_metrics, write_grid



class TrainingError(RuntimeError):
    pass


class TrainingInterrupted(Exception):
    """SIGTERM (preemption, `kill`): the state at the current step was checkpointed; train.py exits 0."""


class _StopOnSigterm:
    """Turns SIGTERM into a flag the loop checks after each step, so the run checkpoints the step it
    reached and stops cleanly (what orbax's preemption handling does on multi-host TPU jobs). Only
    installable from the main thread; elsewhere SIGTERM keeps its default action."""

    def __init__(self):
        import signal
        import threading

        self.requested = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.requested = True

    def agreed(self) -> bool:
        """Whether any process was asked to stop. With several processes every one must stop (and
        checkpoint, a collective) after the same step, and SIGTERM reaches them at different steps:
        the flags are gathered after each step (a small host sync per step, multi-process only)."""
        if jax.process_count() == 1:
            return self.requested
        from jax.experimental import multihost_utils

        return bool(np.any(multihost_utils.process_allgather(np.asarray(self.requested))))

    def restore(self):
        import signal

        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
            self._old = None


def _check_finite(metrics, name: str, done: int, ckpt) -> None:
    m = jax.device_get(metrics)
    bad = [k for k, v in m.items() if not np.all(np.isfinite(v))]
    if bad:
        last = ckpt.latest_step()
        raise TrainingError(f"[{name}] step {done}: non-finite {bad}; not checkpointed, the run stops; last good "
                            f"checkpoint: {'none' if last is None else last} in {ckpt.directory}")


def data_mesh(devices=None) -> jax.sharding.Mesh:
    """A 1-D mesh 'data' over the devices: data parallelism, parameters replicated."""
    devices = jax.devices() if devices is None else devices
    return jax.sharding.Mesh(np.asarray(devices), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def build_source(data_cfg, split: str = "train"):
    """The image source named by config.data.source: 'demo' (scikit-image's sample images, no
    download), 'folder' (data_root/train_name or val_name) or 'tfds' (a built tfds dataset)."""
    from fdm_jax.data import sources

    kind = data_cfg.source
    if kind == "demo":
        return sources.DemoImageSource()
    if kind == "folder":
        name = data_cfg.train_name if split == "train" else data_cfg.val_name
        list_file = data_cfg.train_list_file if split == "train" else data_cfg.val_list_file
        root = Path(data_cfg.data_root) / name
        return sources.FolderImageSource(root, str(data_cfg.image_end_with.eval), list_file=list_file or None)
    if kind == "tfds":
        from fdm_jax.data.tfds_sources import TfdsImageSource
        return TfdsImageSource(data_cfg.tfds_name, split=split, data_dir=data_cfg.tfds_data_dir or None)
    raise ValueError(f"config key data.source: {kind!r} is not one of 'demo', 'folder', 'tfds'")


def provided_masks(config, phase: str):
    """The NVIDIA mask files of a phase (None when the phase never uses provided masks)."""
    m = config.masks[phase]
    if not m.provided_mask_only and float(m.provided_mask_prob) <= 0:
        return None
    from fdm_jax.data.masks import ProvidedMasks
    return ProvidedMasks(Path(config.data.data_root) / m.provided_mask_name, tuple(m.provided_mask_file_range))


def load_init_variables(init_from: str, run_root: Path) -> dict:
    """Variables to start a phase from: '' (fresh), original `.pth` file(s) (comma-separated), or a
    project run directory ('{run}' is replaced by the run root, e.g. '{run}/codec')."""
    if not init_from:
        return {}
    spec = init_from.format(run=str(run_root))
    paths = [s.strip() for s in spec.split(",") if s.strip()]
    if all(p.endswith(".pth") for p in paths):
        from fdm_jax.convert.checkpoints import load_inpainting_parts

        return {"_original_parts": load_inpainting_parts(paths)[0]}
    if len(paths) != 1:
        raise ValueError(f"config key train.<phase>.init_from: {init_from!r} mixes .pth files and directories")
    variables, _ = load_trained_variables(paths[0])
    return variables


def _init_variables_for(phase, loaded: dict) -> dict:
    if "_original_parts" in loaded:
        from fdm_jax.convert.put_fdm import convert_inpainting_parts

        parts = {k: v for k, v in loaded["_original_parts"].items() if k in phase.models}
        return convert_inpainting_parts(parts, {k: phase.models[k] for k in parts}, source="init_from")
    from fdm_jax.put_fdm.feature_sampler import with_sampler_layout

    return with_sampler_layout({k: v for k, v in loaded.items() if k in phase.models}, phase.models)


def _global_batch(run_cfg, phase_cfg, num_devices: int) -> int:
    b = int(run_cfg.global_batch_size) or int(phase_cfg.batch_size) * num_devices
    if b % num_devices:
        raise ValueError(f"config key run.global_batch_size: {b} is not divisible by the {num_devices} devices")
    return b


def train_phase(config, workdir, *, run_root=None, devices=None, progress: bool = True):
    """Trains `config.phase` in `workdir`, resuming from its latest checkpoint. Returns the final
    TrainState (on the mesh)."""
    from tqdm import tqdm

    from fdm_jax.data.pipeline import TrainIterator, shard_batch

    workdir = Path(workdir)
    run_root = Path(run_root) if run_root is not None else workdir.parent
    primary = is_primary()
    say = (lambda msg: print(msg, flush=True)) if primary else (lambda msg: None)
    progress = progress and primary
    run = config.run
    name = config.phase
    mesh = data_mesh(devices)
    ndev = mesh.devices.size
    pcfg = config.train[name]
    global_batch = _global_batch(run, pcfg, ndev)

    # The phase registry (PUT + FDM's four phases, TSGL's generator phase) imports the optimizers of
    # this package, so it is imported here, not at module level.
    from fdm_jax.put_fdm.phases import example_fn, make_phase

    source = build_source(config.data, "train")
    iterator = TrainIterator(source, config.masks[name], config.data.train_preprocess, size=config.image_size,
                             seed=int(config.seed), global_batch=global_batch,
                             provided=provided_masks(config, name), example_fn=example_fn(config),
                             num_workers=int(config.data.num_workers))
    steps_per_epoch = iterator.steps_per_epoch
    phase = make_phase(config, steps_per_epoch)
    total = int(run.max_steps) if int(run.max_steps) > 0 else phase.total_steps

    replicated = NamedSharding(mesh, P())
    key = jax.random.PRNGKey(int(config.seed))
    abstract = phase.abstract_state(key)
    state_sharding = jax.tree_util.tree_map(lambda _: replicated, abstract)
    ckpt = Checkpointer(workdir / "checkpoints", max_to_keep=int(run.keep_checkpoints))
    target = jax.tree_util.tree_map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                                    abstract, state_sharding)
    restored = ckpt.restore_newest(target, iterator, log=lambda msg: say(f"[{name}] {msg}"))
    if restored is not None:
        start, state, _ = restored  # the iterator is restored in place (grain's checkpoint handler)
        say(f"[{name}] resumed from {ckpt.directory}/{start}")
    else:
        start = 0
        init = _init_variables_for(phase, load_init_variables(str(pcfg.init_from), run_root))
        state = jax.device_put(phase.init_state(key, init), state_sharding)

    batch_sharding = NamedSharding(mesh, P("data"))
    step_fn = jax.jit(phase.train_step, in_shardings=(state_sharding, batch_sharding),
                      out_shardings=(state_sharding, replicated), donate_argnums=(0,))
    # Replicated output: every process holds the whole grid (a device_get of a batch-sharded result
    # would need the other processes' rows); process 0 writes it.
    preview_fn = jax.jit(phase.preview, out_shardings=replicated)
    log = MetricsLog(workdir, tensorboard=bool(run.tensorboard), resume_step=start) if primary \
        else NullMetricsLog(workdir)
    config_json = config.to_json_best_effort()
    bar = tqdm(total=total, initial=start, desc=f"train {name}", unit="step", disable=not progress,
               dynamic_ncols=True)
    fixed_preview = None
    t_last, n_last = time.perf_counter(), start
    stop = _StopOnSigterm()
    try:
        for step in range(start, total):
            batch = shard_batch(next(iterator), mesh)
            if fixed_preview is None:
                fixed_preview = jax.tree_util.tree_map(lambda x: x[: int(run.sample_images)], batch)
            if step == start and progress:
                from fdm_jax.cli.compilation_cache import notice

                notice(f"the {name} train step")
            state, metrics = step_fn(state, batch)
            done = step + 1
            if done % int(run.log_every) == 0 or done == total:
                m = jax.device_get(metrics)
                now = time.perf_counter()
                m["images_per_s"] = (done - n_last) * global_batch / max(now - t_last, 1e-9)
                t_last, n_last = now, done
                row = log.write(done, m)
                bad = [k for k, v in m.items() if not np.isfinite(v)]
                if bad:
                    raise TrainingError(f"[{name}] step {done}: non-finite {bad}; last good checkpoint: "
                                        f"{ckpt.latest_step()} in {ckpt.directory}")
                bar.set_postfix(loss=f"{row['loss']:.4g}", img_s=f"{m['images_per_s']:.1f}")
            stopping = stop.agreed()
            save_now = done % int(run.checkpoint_every) == 0 or done == total or stopping
            if save_now:
                _check_finite(metrics, name, done, ckpt)  # a non-finite state never becomes a checkpoint
                ckpt.save(done, state, iterator, config_json)
            if stopping:
                raise TrainingInterrupted(f"[{name}] SIGTERM at step {done}: checkpoint {ckpt.directory}/{done} "
                                          "saved, training stopped")
            if int(run.sample_every) > 0 and (done % int(run.sample_every) == 0 or done == total):
                grid = jax.device_get(preview_fn(state, fixed_preview))  # every process: one program
                if primary:
                    write_grid(workdir / "samples" / f"step_{done:07d}.png", grid)
            bar.update(1)
    finally:
        stop.restore()
        bar.close()
        iterator.close()  # grain's worker processes, if any
        ckpt.wait()
        ckpt.close()
        log.close()
    if primary:
        plot_metrics(log.path, workdir / "loss_curves.png")  # beside TensorBoard, for a quick look
    return state


def train(config, workdir, *, devices=None, progress: bool = True):
    """Trains config.phase in `workdir`, or, for phase 'all', every phase of `run.phases` in order
    in `workdir/<phase>`, each starting from the previous ones as its init_from says."""
    workdir = Path(workdir)
    if config.phase != "all":
        return train_phase(config, workdir, devices=devices, progress=progress)
    phases = tuple(config.run.phases)
    bad = [p for p in phases if p not in PHASE_ORDER]
    if bad:
        raise ValueError(f"config key run.phases: unknown phase(s) {bad}; known: {PHASE_ORDER}")
    states = {}
    for p in phases:
        cfg = config.copy_and_resolve_references()
        cfg.phase = p
        states[p] = train_phase(cfg, workdir / p, run_root=workdir, devices=devices, progress=progress)
    if "sampler" in phases and ("fdm" in phases or "fdm_tuning" in phases):
        path = write_inpainting_samples(config, workdir)  # every process samples; process 0 writes
        if is_primary():
            print(f"inpainted samples: {path}")
    return states


def eval_examples(config, source, indices, *, phase: str = "fdm", seed: int = 0):
    """(images (n, H, W, 3) float [0, 255], masks (n, H, W, 1), 1 = known) of `source[indices]`: eval
    preprocessing (centre crop) and the phase's training masks at a fixed seed (position = index)."""
    from fdm_jax.data.masks import training_masks
    from fdm_jax.data.preprocess import preprocess_from_config

    size = (config.image_size, config.image_size)
    provided = provided_masks(config, phase)
    images = np.stack([preprocess_from_config(source.load(i), config.data.eval_preprocess) for i in indices])
    masks = np.stack([training_masks(config.masks[phase], seed=seed, epoch=0, index=i, size=size,
                                     provided=provided)["mask"] for i in indices])
    return images, masks


def write_inpainting_samples(config, run_root, *, num_images: int = 4, num_samples: int = 3, seed: int = 0):
    """`run_root/inpainted_samples.png`: rows of [masked input | `num_samples` samples (top-K sampling
    + FDM) | original] for the first images of the training source (eval preprocessing: centre crop),
    with the fdm phase's masks at a fixed seed."""
    from fdm_jax.put_fdm import build_models
    from fdm_jax.put_fdm.feature_sampler import with_sampler_layout
    from fdm_jax.put_fdm.sampling import jit_inpaint_samples
    from fdm_jax.train.checkpointing import load_inference_variables

    variables, _ = load_inference_variables([run_root])
    models = build_models(config.model)
    variables = with_sampler_layout(variables, models)
    source = build_source(config.data, "train")
    images, masks = eval_examples(config, source, range(min(num_images, len(source))), seed=seed)
    # Weights as arguments of one cached program (closing over them made XLA fold them as constants).
    out = jit_inpaint_samples(
        models["codec"], variables["codec"], models["sampler"], variables["sampler"], models["fdm"],
        variables["fdm"], jnp.asarray(images), jnp.asarray(masks), jax.random.PRNGKey(seed), num_samples,
        top_k=int(config.sampling.top_k),
        num_token_per_iter=np.int32(config.sampling.get("num_token_per_iter", 1)),
        temperature=np.float32(config.sampling.get("temperature", 1.0)),
        schedule=str(config.sampling.get("schedule", "sequential")),
        num_passes=np.int32(config.sampling.get("num_passes", 16)))
    samples = np.asarray(out["inpainted_image"])  # (N, B, H, W, 3)
    columns = {"masked input": images * masks}
    columns.update({f"sample {k}": samples[k] for k in range(num_samples)})
    columns["original"] = images
    path = Path(run_root) / "inpainted_samples.png"
    return write_grid(path, columns) if is_primary() else path
