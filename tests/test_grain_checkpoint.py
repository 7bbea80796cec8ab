"""The data iterator in orbax checkpoints through grain's checkpoint handler
(fdm_jax/train/checkpointing.py): saved per process as grain writes it, restored into a fresh
iterator that continues with the same batches; checkpoints from before grain (orbax JSON) and from
another process count still restore."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from fdm_jax.data.pipeline import TrainIterator
from fdm_jax.data.sources import ArrayImageSource
from fdm_jax.train.checkpointing import Checkpointer

MASKS = dict(mask_prob=1.0, erase_image_with_mask=0.5, provided_mask_prob=0.0, strokes=dict(max_parts=2))
PRE = dict(size=16, smallest_max_size=18, random_crop=True, horizon_flip=True)


def _iterator(**kw):
    images = [np.random.default_rng(i).integers(0, 256, (20 + i, 24, 3), np.uint8) for i in range(9)]
    return TrainIterator(ArrayImageSource(images), MASKS, PRE, size=16, seed=7, global_batch=4, num_threads=1, **kw)


def _state():
    return {"w": jnp.arange(3.0)}


def _abstract():
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), _state())


def _equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_iterator_saved_by_grain_handler_resumes_the_batches(tmp_path):
    it = _iterator()
    for _ in range(3):  # 2 steps per epoch: the saved position is in epoch 1
        next(it)
    ck = Checkpointer(tmp_path / "ck")
    ck.save(3, _state(), it, json.dumps({"a": 1}))
    expected = [next(it) for _ in range(3)]
    ck.close()
    data_file = tmp_path / "ck" / "3" / "data" / "process_0-of-1.json"
    assert json.loads(data_file.read_text()) == {"seed": 7, "epoch": 1, "position": 4, "num_examples": 9,
                                                 "global_batch": 4}
    fresh = _iterator()
    ck = Checkpointer(tmp_path / "ck")
    step, state, config = ck.restore_newest(_abstract(), fresh)
    ck.close()
    assert step == 3 and config == {"a": 1}
    np.testing.assert_array_equal(state["w"], np.arange(3.0))
    for want in expected:
        _equal(next(fresh), want)


def test_checkpoint_from_before_grain_and_from_another_process_count(tmp_path):
    it = _iterator()
    next(it)
    saved = it.get_state()
    expected = next(it)
    # The format main wrote before the grain pipeline: the state dict as orbax JSON.
    manager = ocp.CheckpointManager(tmp_path / "old", item_names=("state", "data", "config"))
    manager.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave(_state()), data=ocp.args.JsonSave(saved),
                                            config=ocp.args.JsonSave({})))
    manager.wait_until_finished()
    manager.close()
    fresh = _iterator()
    ck = Checkpointer(tmp_path / "old")
    ck.restore(_abstract(), iterator=fresh)
    ck.close()
    _equal(next(fresh), expected)
    # Saved by 2 processes, resumed by 1: the state is the global position, the same in every file.
    ck = Checkpointer(tmp_path / "new")
    ck.save(1, _state(), _iterator(), "{}")
    ck.close()
    data_dir = tmp_path / "new" / "1" / "data"
    (data_dir / "process_0-of-1.json").rename(data_dir / "process_1-of-2.json")
    (data_dir / "process_1-of-2.json").write_text(json.dumps(saved))
    fresh = _iterator()
    ck = Checkpointer(tmp_path / "new")
    ck.restore(_abstract(), iterator=fresh)
    ck.close()
    _equal(next(fresh), expected)
