"""The deterministic, resumable training iterator (a grain pipeline) and the device placement of its batches.

Order and randomness (all pure functions, so a resumed run is exact):

* epoch e visits the source in the order `perm_e = permutation(len(source))` drawn from
  SeedSequence([seed, e, 'perm']);
* the example at position p of epoch e (global step s, row i: p = s * global_batch + i) is image
  `perm_e[p]`, preprocessed with `preprocess_rng(seed, e, p)` and given the masks
  `training_masks(mask_cfg, seed=seed, epoch=e, index=p, ...)`;
* an image the source cannot decode (`CorruptImageError`) is skipped with a warning naming it, and
  position p takes the next image of the epoch order, `perm_e[p + 1]`, `perm_e[p + 2]`, ...
  (wrapping). The masks and crop stay those of position p. Each position is resolved on its own,
  so every process and worker gets the same answer without coordination; the epoch keeps its length
  (the replacement image appears twice in that epoch).

The pipeline is grain's (`grain.MapDataset`): a range of row slots -> `TrainingOrder` (the index
sampler: slot -> (epoch, position) from the seed, this JAX process's rows only) -> `ReadImage` (random
access into the `ImageSource`) -> `Preprocess` (resize, crop, flip) -> `AddMasks` -> `ExampleFn`
(TSGL's structure inputs) -> `.batch(local_batch)` -> `.to_iter_dataset(ReadOptions(num_threads))`
-> `.mp_prefetch(num_workers)` when worker processes decode. Each transform is a pure function of its
element, so the batches do not depend on the numbers of threads or workers.

The iterator is endless (epochs follow each other); the training loop decides when to stop. Its
state is {seed, epoch, position, num_examples, global_batch}, JSON-serialisable; it is a
`grain.DatasetIterator`, so `grain.checkpoint.CheckpointSave(iterator)` stores it in an orbax
checkpoint (one file per process, fdm_jax/train/checkpointing.py), and a restored state rebuilds
the pipeline at that step (any number of workers).

Differences from the original loader (hyudsl/FDM:image_synthesis/data/): the original seeds nothing
per example (workers of a torch DataLoader with shuffle=True), draws crops and masks from one global
stream, and reads folders in os.walk order; here each stream is separate and derived from (seed,
epoch, position).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping

import grain
import numpy as np

from fdm_jax.data.masks import ProvidedMasks, _cfg, _hw, training_masks
from fdm_jax.data.preprocess import preprocess_from_config, preprocess_rng, to_rgb_uint8
from fdm_jax.data.sources import CorruptImageError, ImageSource

__all__ = ["TrainIterator", "epoch_permutation", "shard_batch"]

_PERM_STREAM = 0x7065726D  # 'perm'
_STATE_KEYS = ("seed", "epoch", "position", "num_examples", "global_batch")
_ENDLESS = 2 ** 62  # slots of the endless MapDataset (grain needs a length; it is never reached)


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The visiting order of epoch `epoch`: a permutation of range(n) from SeedSequence([seed, epoch, 'perm'])."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), _PERM_STREAM]))
    return rng.permutation(n)


@functools.lru_cache(maxsize=4)
def _cached_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return epoch_permutation(seed, epoch, n)


def _nonneg_int(name, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name}={v!r}: expected a non-negative integer")
    return int(v)


# ---------------------------------------------------------------------------------------------
# grain transforms: each a pure function of its element (module-level classes, so worker processes
# can unpickle them)
# ---------------------------------------------------------------------------------------------
class TrainingOrder(grain.transforms.Map):
    """The index sampler: absolute row slot j of this process -> {'epoch', 'position'}.

    Slot j is row j % local_batch of this process's part of step s = j // local_batch; the process
    holds rows [process_index * local_batch, (process_index + 1) * local_batch) of the global batch,
    so the global batches are the same for any number of processes. Without drop_remainder the last
    step of an epoch is short; its missing rows are marked 'pad' and dropped by the batching."""

    def __init__(self, *, num_examples: int, global_batch: int, local_batch: int, process_index: int,
                 drop_remainder: bool):
        self.n, self.b, self.lb, self.pi = num_examples, global_batch, local_batch, process_index
        self.steps_per_epoch = self.n // self.b if drop_remainder else -(-self.n // self.b)

    def map(self, slot):
        step, row = divmod(int(slot), self.lb)
        epoch, k = divmod(step, self.steps_per_epoch)
        position = k * self.b + self.pi * self.lb + row
        return {"epoch": epoch, "position": position, "pad": position >= self.n}


class ReadImage(grain.transforms.Map):
    """Random access into the `ImageSource`: position p of epoch e reads image perm_e[p], or the next
    readable one of the epoch order when it cannot be decoded (the skipped ones travel with the
    example, so the consuming process warns about them once)."""

    def __init__(self, source: ImageSource, seed: int):
        self.source, self.seed, self.n = source, int(seed), len(source)

    def map(self, ex):
        if ex["pad"]:
            return ex
        perm = _cached_permutation(self.seed, ex["epoch"], self.n)
        bad = []
        for k in range(self.n):
            idx = int(perm[(ex["position"] + k) % self.n])
            try:
                image = self.source.load(idx)
            except CorruptImageError as e:
                bad.append((self.source.name(idx), str(e)))
                continue
            return {**ex, "index": idx, "full": image, "skipped": bad}
        raise RuntimeError(f"none of the {self.n} images of {self.source!r} can be read")


class Preprocess(grain.transforms.Map):
    """Resize, crop and flip (config.data.train_preprocess) with preprocess_rng(seed, epoch, position).
    `full_image_fn` (TSGL-MEDFE's RTV texture): (full uint8 image, name) -> {key: image of the same
    size}, each preprocessed with the same draws (the same crop and flip), as the original crops it."""

    def __init__(self, preprocess_cfg, seed: int, source: ImageSource, full_image_fn=None):
        self.cfg, self.seed, self.source, self.full_image_fn = preprocess_cfg, int(seed), source, full_image_fn

    def map(self, ex):
        if ex["pad"]:
            return ex
        name, e, p = self.source.name(ex["index"]), ex["epoch"], ex["position"]
        out = {k: v for k, v in ex.items() if k != "full"}
        out["image"] = preprocess_from_config(ex["full"], self.cfg, preprocess_rng(self.seed, e, p), name=name)
        companions = {}
        if self.full_image_fn is not None:
            full = to_rgb_uint8(ex["full"], name)
            for key, img in self.full_image_fn(full, name).items():
                img = to_rgb_uint8(img, f"{name} ({key})")
                if img.shape != full.shape[:2] + (3,):
                    raise ValueError(f"full_image_fn: {key!r} of {name} has shape {img.shape}, the image {full.shape}")
                companions[key] = preprocess_from_config(img, self.cfg, preprocess_rng(self.seed, e, p),
                                                         name=f"{name} ({key})")
        out["companions"] = companions
        return out


class AddMasks(grain.transforms.Map):
    """training_masks(mask_cfg, seed, epoch, position); erases the image as the original's dataset
    does (data/image_list_dataset.py: data['image'] = mask_ * data['image'])."""

    def __init__(self, mask_cfg, seed: int, size, provided: ProvidedMasks | None):
        self.cfg, self.seed, self.size, self.provided = mask_cfg, int(seed), size, provided

    def map(self, ex):
        if ex["pad"]:
            return ex
        masks = training_masks(self.cfg, seed=self.seed, epoch=ex["epoch"], index=ex["position"], size=self.size,
                               provided=self.provided)
        return {**ex, "image": ex["image"] * masks["erase_mask"], "mask": masks["mask"],
                "erase_mask": masks["erase_mask"]}


class ExampleFn(grain.transforms.Map):
    """The phase's host function (TSGL's edges/gray/structure images); it sees the companions."""

    def __init__(self, example_fn):
        self.fn = example_fn

    def map(self, ex):
        if ex["pad"] or self.fn is None:
            return ex
        arrays = {k: ex[k] for k in ("image", "mask", "erase_mask")}
        return {**ex, **self.fn({**arrays, **ex["companions"]})}


_META = ("epoch", "position", "pad", "index", "skipped", "companions")


def collate(examples):
    """grain batch_fn: stacks the arrays of the real rows; the skipped-image reports ride along."""
    rows = [ex for ex in examples if not ex["pad"]]
    batch = {k: np.stack([ex[k] for ex in rows]) for k in rows[0] if k not in _META}
    batch["_skipped"] = [(ex["epoch"], ex["position"], name, msg) for ex in rows for name, msg in ex["skipped"]]
    return batch


def _absl_flags_ready() -> None:
    """grain's worker processes read its absl flags; outside an absl app (a notebook, pytest) they
    were never parsed and reading them raises, so their defaults are accepted here."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


# ---------------------------------------------------------------------------------------------
class TrainIterator(grain.DatasetIterator):
    """Batches {'image': (b, H, W, 3) float32 [0, 255], 'mask': (b, H, W, 1) float32 1 = known,
    'erase_mask': (b, H, W, 1) float32} for training.

    source: an `ImageSource`. mask_cfg: `config.masks.<phase>`. preprocess_cfg:
    `config.data.train_preprocess` (size, smallest_max_size, random_crop, horizon_flip); its size
    must equal `size`. provided: the `ProvidedMasks` of the phase (None: stroke masks only, the
    original's behaviour when it finds no mask files). When the phase erases (phase 1), 'image' is
    already multiplied by 'erase_mask', as the original's dataset returns it (it is the
    reconstruction target).

    With several processes each one returns its rows of the global batch, b = global_batch /
    process_count (rows [process_index * b, (process_index + 1) * b)); `shard_batch` assembles them.
    Loading runs on `num_threads` grain threads (default min(8, cpus)) in each of `num_workers` worker
    processes (0: in this process; the original's DataLoader num_workers). The results do not depend
    on either number.

    example_fn: optional host function example -> dict of arrays merged into the example (keys added
    or replaced, each with the example's layout), a pure function of the example, so resumption stays
    exact (TSGL: fdm_jax.tsgl.phase). If it has an attribute `full_image_fn`, that function (full
    uint8 image, source name) -> {key: uint8 (H, W, 3) image of the same size} runs first on the
    image as loaded, and each image it returns gets the example's own preprocessing (the same crop
    and flip); example_fn sees them under their keys, the batch does not (TSGL-MEDFE's RTV image,
    which the original computes on the full image and crops like the RGB image). With worker
    processes, the source, configs and example_fn must be picklable.
    """

    def __init__(self, source: ImageSource, mask_cfg, preprocess_cfg, *, size, seed: int, global_batch: int,
                 provided: ProvidedMasks | None = None, drop_remainder: bool = True, num_workers: int = 0,
                 num_threads: int | None = None, process_index: int | None = None,
                 process_count: int | None = None, example_fn=None):
        super().__init__()
        if not isinstance(source, ImageSource):
            raise TypeError(f"source {source!r}: expected an ImageSource (__len__, name(i), load(i))")
        self.source = source
        self.num_examples = len(source)
        if self.num_examples == 0:
            raise ValueError(f"source {source!r} holds no images")
        self.mask_cfg = mask_cfg
        self.preprocess_cfg = preprocess_cfg
        self.size = _hw(size)
        pre_size = _cfg(preprocess_cfg, "size")
        if pre_size is not None and _hw(pre_size) != self.size:
            raise ValueError(f"preprocess_cfg.size {pre_size!r} differs from size {size!r}")
        self.seed = _nonneg_int("seed", seed)
        self.global_batch = _nonneg_int("global_batch", global_batch)
        if self.global_batch == 0:
            raise ValueError("global_batch must be positive")
        self.drop_remainder = bool(drop_remainder)
        if process_index is None or process_count is None:
            shard = grain.sharding.ShardByJaxProcess()  # jax.process_index() / jax.process_count()
            process_index = shard.shard_index if process_index is None else process_index
            process_count = shard.shard_count if process_count is None else process_count
        self.process_index, self.process_count = int(process_index), int(process_count)
        if not 0 <= self.process_index < self.process_count:
            raise ValueError(f"process_index {process_index} not in [0, process_count={process_count})")
        if self.global_batch % self.process_count:
            raise ValueError(f"global_batch {global_batch} is not divisible by the {process_count} processes")
        if self.process_count > 1 and not self.drop_remainder:
            raise ValueError("drop_remainder=False is only supported with a single process")
        if self.drop_remainder and self.num_examples < self.global_batch:
            raise ValueError(f"source has {self.num_examples} images, fewer than global_batch {global_batch} "
                             f"(with drop_remainder=True an epoch would have no step)")
        self.local_batch = self.global_batch // self.process_count
        self.provided = provided
        if example_fn is not None and not callable(example_fn):
            raise TypeError(f"example_fn {example_fn!r}: expected a function example dict -> dict")
        self.example_fn = example_fn
        wants_provided = bool(_cfg(mask_cfg, "provided_mask_only", False)) or \
            float(_cfg(mask_cfg, "provided_mask_prob", 0.0)) > 0
        if provided is None and wants_provided:
            warnings.warn("the mask config asks for provided (NVIDIA) masks but provided=None: stroke masks are "
                          "used instead (the original's fallback when it finds no mask files)", stacklevel=2)
        self.num_workers = _nonneg_int("num_workers", num_workers)
        self.num_threads = min(8, os.cpu_count() or 1) if num_threads is None else _nonneg_int("num_threads",
                                                                                               num_threads)
        self._order = TrainingOrder(num_examples=self.num_examples, global_batch=self.global_batch,
                                    local_batch=self.local_batch, process_index=self.process_index,
                                    drop_remainder=self.drop_remainder)
        self._transforms = (
            ReadImage(source, self.seed),
            Preprocess(preprocess_cfg, self.seed, source, getattr(example_fn, "full_image_fn", None)),
            AddMasks(mask_cfg, self.seed, self.size, provided),
            ExampleFn(example_fn),
        )
        self._warned: set[str] = set()
        self._it = None  # the grain iterator, built at the first batch from (epoch, position)
        self.epoch, self.position = 0, 0

    # ------------------------------------------------------------------ order
    @property
    def steps_per_epoch(self) -> int:
        return self._order.steps_per_epoch

    def permutation(self, epoch: int) -> np.ndarray:
        return _cached_permutation(self.seed, epoch, self.num_examples)

    def dataset(self, start_step: int = 0) -> grain.MapDataset:
        """The grain MapDataset of this process's batches from global step `start_step` on."""
        lb = self.local_batch
        ds = grain.MapDataset.range(start_step * lb, _ENDLESS).map(self._order)
        for t in self._transforms:
            ds = ds.map(t)
        return ds.batch(lb, drop_remainder=False, batch_fn=collate)

    def _build(self, start_step: int):
        it = self.dataset(start_step).to_iter_dataset(
            grain.ReadOptions(num_threads=max(self.num_threads, 1), prefetch_buffer_size=max(2 * self.num_threads, 1)))
        if self.num_workers > 0:
            _absl_flags_ready()
            it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.num_workers))
        return iter(it)

    def example(self, epoch: int, position: int) -> dict[str, np.ndarray]:
        """The example at `position` of `epoch` (what row i of step s holds, p = s * global_batch + i),
        through the same transforms as the batches, in this thread."""
        position = _nonneg_int("position", position)
        if position >= self.num_examples:
            raise IndexError(f"position {position} out of range [0, {self.num_examples})")
        ex = {"epoch": _nonneg_int("epoch", epoch), "position": position, "pad": False}
        for t in self._transforms:
            ex = t.map(ex)
        batch = collate([ex])
        self._report(batch.pop("_skipped"))
        return {k: v[0] for k, v in batch.items()}

    # ------------------------------------------------------------------ iteration
    def _next_start(self, epoch: int, position: int) -> tuple[int, int]:
        n, b = self.num_examples, self.global_batch
        if position >= n or (self.drop_remainder and position + b > n):
            return epoch + 1, 0
        return epoch, position

    def _report(self, skipped):
        for epoch, position, name, msg in skipped:
            if name not in self._warned:
                self._warned.add(name)
                warnings.warn(f"skipping unreadable image {name}: {msg or 'cannot be decoded'}; epoch {epoch} "
                              f"position {position} takes the next image of the epoch order", stacklevel=3)

    def __next__(self) -> dict[str, np.ndarray]:
        epoch, position = self._next_start(self.epoch, self.position)
        if self._it is None:
            self._it = self._build(epoch * self.steps_per_epoch + position // self.global_batch)
        batch = next(self._it)
        self._report(batch.pop("_skipped"))
        self.epoch, self.position = epoch, min(position + self.global_batch, self.num_examples)
        return batch

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        """JSON-serialisable position of the iterator: the next batch starts at (epoch, position)."""
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position,
                "num_examples": self.num_examples, "global_batch": self.global_batch}

    def set_state(self, state: Mapping) -> None:
        """Continue exactly where `get_state()` was taken. The seed, the number of images and the
        global batch must be the ones of the saved run (otherwise the order would differ)."""
        if not isinstance(state, Mapping) or not {"seed", "epoch", "position"} <= set(state):
            raise ValueError(f"iterator state {state!r}: expected a dict with keys {_STATE_KEYS}")
        unknown = set(state) - set(_STATE_KEYS)
        if unknown:
            raise ValueError(f"iterator state: unknown keys {sorted(unknown)}")
        for key, mine in (("seed", self.seed), ("num_examples", self.num_examples),
                          ("global_batch", self.global_batch)):
            if key in state and int(state[key]) != mine:
                raise ValueError(f"iterator state was saved with {key}={state[key]}, this iterator has {key}={mine}")
        epoch, position = _nonneg_int("epoch", state["epoch"]), _nonneg_int("position", state["position"])
        if position > self.num_examples:
            raise ValueError(f"iterator state position {position} exceeds the {self.num_examples} images")
        self.close()
        self.epoch, self.position = epoch, position

    def close(self) -> None:
        """Stops the grain iterator (its threads and worker processes); the next batch rebuilds it."""
        it, self._it = getattr(self, "_it", None), None  # also after a failed __init__ (grain's __del__)
        if it is not None and hasattr(it, "close"):
            it.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def shard_batch(batch: Mapping[str, np.ndarray], mesh, axis: str = "data") -> dict:
    """Places a batch on `mesh`, split along its first dimension over mesh axis `axis`
    (NamedSharding(mesh, P(axis))). `batch` holds this process's rows (the whole global batch with
    one process); the global array is assembled with `jax.make_array_from_process_local_data`."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec as P

    if axis not in mesh.axis_names:
        raise ValueError(f"shard_batch: mesh has axes {tuple(mesh.axis_names)}, not {axis!r}")
    n_dev = mesh.shape[axis]
    sharding = NamedSharding(mesh, P(axis))
    out = {}
    for key, value in batch.items():
        value = np.asarray(value)
        if value.ndim == 0:
            raise ValueError(f"shard_batch: batch[{key!r}] is a scalar; expected a leading batch dimension")
        global_rows = value.shape[0] * jax.process_count()
        if global_rows % n_dev:
            raise ValueError(f"shard_batch: global batch {global_rows} (batch[{key!r}]) is not divisible by the "
                             f"{n_dev} devices of mesh axis {axis!r}")
        out[key] = jax.make_array_from_process_local_data(sharding, value)
    return out
