"""The deterministic, resumable training iterator and the device placement of its batches.

Order and randomness (all pure functions, so a resumed run is exact):

* epoch e visits the source in the order `perm_e = permutation(len(source))` drawn from
  SeedSequence([seed, e, 'perm']);
* the example at position p of epoch e (global step s, row i: p = s * global_batch + i) is image
  `perm_e[p]`, preprocessed with `preprocess_rng(seed, e, p)` and given the masks
  `training_masks(mask_cfg, seed=seed, epoch=e, index=p, ...)`;
* an image the source cannot decode (`CorruptImageError`) is skipped with a warning naming it, and
  position p takes the next image of the epoch order, `perm_e[p + 1]`, `perm_e[p + 2]`, ...
  (wrapping). The masks and crop stay those of position p. Each position is resolved on its own,
  so every process and thread gets the same answer without coordination; the epoch keeps its length
  (the replacement image appears twice in that epoch).

The iterator is endless (epochs follow each other); the training loop decides when to stop. Its
state is {seed, epoch, position, num_examples, global_batch}, JSON-serialisable for checkpoints.

Differences from the original loader (hyudsl/FDM:image_synthesis/data/): the original seeds nothing
per example (workers of a torch DataLoader with shuffle=True), draws crops and masks from one global
stream, and reads folders in os.walk order; here each stream is separate and derived from (seed,
epoch, position).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import warnings
from collections.abc import Mapping

import numpy as np

from fdm_jax.data.masks import ProvidedMasks, _cfg, _hw, training_masks
from fdm_jax.data.preprocess import preprocess_from_config, preprocess_rng, to_rgb_uint8
from fdm_jax.data.sources import CorruptImageError, ImageSource

__all__ = ["TrainIterator", "epoch_permutation", "shard_batch"]

_PERM_STREAM = 0x7065726D  # 'perm'
_STATE_KEYS = ("seed", "epoch", "position", "num_examples", "global_batch")


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The visiting order of epoch `epoch`: a permutation of range(n) from SeedSequence([seed, epoch, 'perm'])."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), _PERM_STREAM]))
    return rng.permutation(n)


def _nonneg_int(name, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name}={v!r}: expected a non-negative integer")
    return int(v)


class TrainIterator:
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
    Loading runs on `num_workers` threads (0: in the calling thread); the next batch is prefetched.
    The results do not depend on the number of threads.

    example_fn: optional host function example -> dict of arrays merged into the example (keys added
    or replaced, each with the example's layout), run per example in the loading threads; it must be
    a pure function of the example, so resumption stays exact (TSGL: fdm_jax.tsgl.phase).
    If it has an attribute `full_image_fn`, that function (full uint8 image, source name) -> {key:
    uint8 (H, W, 3) image of the same size} runs first on the image as loaded, and each image it
    returns gets the example's own preprocessing (the same crop and flip: the Generator is replayed);
    example_fn sees them under their keys, the batch does not (TSGL-MEDFE's RTV image, which the
    original computes on the full image and crops like the RGB image).
    """

    def __init__(self, source: ImageSource, mask_cfg, preprocess_cfg, *, size, seed: int, global_batch: int,
                 provided: ProvidedMasks | None = None, drop_remainder: bool = True, num_workers: int | None = None,
                 process_index: int | None = None, process_count: int | None = None, prefetch: bool = True,
                 example_fn=None):
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
            import jax

            process_index = jax.process_index() if process_index is None else process_index
            process_count = jax.process_count() if process_count is None else process_count
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
        self.num_workers = min(8, os.cpu_count() or 1) if num_workers is None else int(num_workers)
        self.prefetch = bool(prefetch)
        self._pool = cf.ThreadPoolExecutor(self.num_workers) if self.num_workers > 0 else None
        self._perm_cache: tuple[int, np.ndarray] | None = None
        self._known_corrupt: set[int] = set()
        self._warned: set[str] = set()
        self._pending = None  # (epoch, position, futures) of a prefetched batch
        self.epoch, self.position = 0, 0

    # ------------------------------------------------------------------ order
    @property
    def steps_per_epoch(self) -> int:
        n, b = self.num_examples, self.global_batch
        return n // b if self.drop_remainder else -(-n // b)

    def permutation(self, epoch: int) -> np.ndarray:
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            self._perm_cache = (epoch, epoch_permutation(self.seed, epoch, self.num_examples))
        return self._perm_cache[1]

    def _resolve(self, perm: np.ndarray, position: int) -> tuple[int, np.ndarray, list[str]]:
        """(source index, uint8 image, corrupt messages) for a position: perm[p], else the next readable."""
        n, bad = self.num_examples, []
        for k in range(n):
            idx = int(perm[(position + k) % n])
            if idx in self._known_corrupt:
                bad.append((idx, None))
                continue
            try:
                return idx, self.source.load(idx), bad
            except CorruptImageError as e:
                bad.append((idx, str(e)))
        raise RuntimeError(f"none of the {n} images of {self.source!r} can be read")

    def _example(self, epoch: int, position: int, perm: np.ndarray):
        idx, image, bad = self._resolve(perm, position)
        rng = preprocess_rng(self.seed, epoch, position)
        full = image
        image = preprocess_from_config(image, self.preprocess_cfg, rng, name=self.source.name(idx))
        masks = training_masks(self.mask_cfg, seed=self.seed, epoch=epoch, index=position, size=self.size,
                               provided=self.provided)
        image = image * masks["erase_mask"]  # data/image_list_dataset.py: data['image'] = mask_ * data['image']
        ex = {"image": image, "mask": masks["mask"], "erase_mask": masks["erase_mask"]}
        if self.example_fn is not None:  # e.g. TSGL's Canny edges: computed here, in the loading threads
            ex.update(self.example_fn({**ex, **self._companions(full, idx, epoch, position)}))
        return ex, bad

    def _companions(self, full: np.ndarray, idx: int, epoch: int, position: int) -> dict[str, np.ndarray]:
        """example_fn.full_image_fn's images of the full image, preprocessed like the example's image."""
        fn = getattr(self.example_fn, "full_image_fn", None)
        if fn is None:
            return {}
        name = self.source.name(idx)
        out = {}
        for key, img in fn(to_rgb_uint8(full, name), name).items():
            img = to_rgb_uint8(img, f"{name} ({key})")
            if img.shape != full.shape[:2] + (3,):
                raise ValueError(f"full_image_fn: {key!r} of {name} has shape {img.shape}, the image {full.shape}")
            rng = preprocess_rng(self.seed, epoch, position)  # the same draws: the same crop and flip
            out[key] = preprocess_from_config(img, self.preprocess_cfg, rng, name=f"{name} ({key})")
        return out

    def example(self, epoch: int, position: int) -> dict[str, np.ndarray]:
        """The example at `position` of `epoch` (what row i of step s holds, p = s * global_batch + i)."""
        position = _nonneg_int("position", position)
        if position >= self.num_examples:
            raise IndexError(f"position {position} out of range [0, {self.num_examples})")
        ex, bad = self._example(_nonneg_int("epoch", epoch), position, self.permutation(epoch))
        self._report(bad, epoch, position)
        return ex

    # ------------------------------------------------------------------ iteration
    def _next_start(self, epoch: int, position: int) -> tuple[int, int]:
        n, b = self.num_examples, self.global_batch
        if position >= n or (self.drop_remainder and position + b > n):
            return epoch + 1, 0
        return epoch, position

    def _submit(self, epoch: int, position: int):
        stop = min(position + self.global_batch, self.num_examples)
        lo = position + self.process_index * self.local_batch
        slots = range(lo, min(lo + self.local_batch, stop))
        perm = self.permutation(epoch)
        if self._pool is None:
            return [_Done(self._example(epoch, p, perm)) for p in slots], list(slots), stop
        return [self._pool.submit(self._example, epoch, p, perm) for p in slots], list(slots), stop

    def _report(self, bad, epoch, position):
        for idx, msg in bad:
            if msg is not None:
                self._known_corrupt.add(idx)
            name = self.source.name(idx)
            if name not in self._warned:
                self._warned.add(name)
                warnings.warn(f"skipping unreadable image {name}: {msg or 'cannot be decoded'}; epoch {epoch} "
                              f"position {position} takes the next image of the epoch order", stacklevel=3)

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        epoch, position = self._next_start(self.epoch, self.position)
        if self._pending is not None and self._pending[:2] == (epoch, position):
            futures, slots, stop = self._pending[2:]
        else:
            self._cancel_pending()
            futures, slots, stop = self._submit(epoch, position)
        self._pending = None
        examples = []
        for fut, p in zip(futures, slots):
            ex, bad = fut.result()
            self._report(bad, epoch, p)
            examples.append(ex)
        self.epoch, self.position = epoch, stop
        if self.prefetch and self._pool is not None:
            e2, p2 = self._next_start(self.epoch, self.position)
            self._pending = (e2, p2, *self._submit(e2, p2))
        return {k: np.stack([ex[k] for ex in examples]) for k in examples[0]}

    def _cancel_pending(self):
        if self._pending is not None:
            for f in self._pending[2]:
                f.cancel()
            self._pending = None

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
        self._cancel_pending()
        self.epoch, self.position = epoch, position

    def close(self) -> None:
        self._cancel_pending()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Done:
    """A finished result with the Future interface used by __next__ (serial loading)."""

    def __init__(self, value):
        self._value = value

    def result(self):
        return self._value

    def cancel(self):
        return False


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
