"""TSGL training through the project's one training loop (fdm_jax.train.loop.train_phase with
fdm_jax.tsgl.phase): the data hook that adds the structure inputs, the phase dispatch, and, on real
Places2 images and masks from ../shared/data, a few dozen steps of each tiny config that reduce the loss,
checkpoint and resume."""

from __future__ import annotations

import numpy as np
import pytest

from fdm_jax.cli.config_loading import load_config
from fdm_jax.tsgl import structure
from fdm_jax.data.masks import ProvidedMasks
from fdm_jax.data.pipeline import TrainIterator
from fdm_jax.data.sources import FolderImageSource
from fdm_jax.put_fdm.phases import example_fn, make_phase
from fdm_jax.tsgl.phase import TSGLPhase
from shared_paths import require, shared_dir

DATA = shared_dir() / "data" / "images" / "places2_256_freeform"  # 16 Places365 images + 16 free-form masks
VARIANTS = ("medfe", "lama")


def tiny_config(variant: str, *, max_steps: int = 2, checkpoint_every: int = 1000, sample_every: int = 0,
                fixed_batch_list=None):
    """The variant's tiny config on the shared Places2 images with their free-form masks (255 = hole).

    fixed_batch_list: a list file naming 2 images; then every step sees the same batch (centre crop, no
    flip, one mask), so the loss of successive steps is comparable, and StepLR is stretched (with one
    step per epoch its 3-epoch decay would stop the run after a few steps)."""
    c = load_config(f"configs/tsgl_{variant}.py:tiny")
    c.data.source = "folder"
    c.data.data_root = str(require(DATA))
    c.data.train_name = "images"
    mg = c.masks.generator
    mg.provided_mask_only = True
    mg.provided_mask_prob = 1.0
    mg.provided_mask_name = "masks"
    mg.provided_mask_file_range = (0, 16)
    if fixed_batch_list is not None:
        c.data.train_list_file = str(fixed_batch_list)
        c.data.train_preprocess.random_crop = False
        c.data.train_preprocess.horizon_flip = False
        mg.provided_mask_file_range = (1, 2)  # Places365_val_00000267.png: 34 % holes
        if "step_lr_epochs" in c.optimizer:  # MEDFE's StepLR; TSGL-LaMa has no scheduler (a locked config
            c.optimizer.step_lr_epochs = 1000  # rejects the key a LaMa optimizer does not have)
    c.run.max_steps = max_steps
    c.run.checkpoint_every = checkpoint_every
    c.run.sample_every = sample_every
    c.run.log_every = 1
    c.run.tensorboard = False
    return c


def iterator(config, **kw):
    return TrainIterator(FolderImageSource(DATA / "images", "jpg,png"), config.masks.generator,
                         config.data.train_preprocess, size=config.image_size, seed=0, global_batch=2,
                         provided=ProvidedMasks(DATA / "masks", (0, 16)), num_workers=0, **kw)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pipeline_adds_the_structure_inputs(variant):
    config = tiny_config(variant)
    with iterator(config, example_fn=example_fn(config)) as it:
        batch = next(it)
        state = it.get_state()
        again = next(it)
        it.set_state(state)
        np.testing.assert_array_equal(next(it)["edge"], again["edge"])  # resumable: a pure function of the example
    want = {"image", "mask", "erase_mask", "edge", "gray"} | ({"texture"} if variant == "medfe" else set())
    assert set(batch) == want
    s = config.image_size
    assert batch["edge"].shape == batch["gray"].shape == (2, s, s, 1)
    image = batch["image"]
    np.testing.assert_array_equal(image, np.rint(image))  # on the uint8 grid of the original's PIL pipeline
    edge, gray = structure.edge_and_gray(image.astype(np.uint8), wraparound=True)  # the train loaders' quirk
    np.testing.assert_array_equal(batch["edge"], edge)
    np.testing.assert_array_equal(batch["gray"], gray)
    assert 0 < batch["edge"].mean() < 0.5 and 0.05 < 1 - batch["mask"].mean() < 0.95
    if variant == "medfe":
        assert batch["texture"].shape == (2, s, s, 3) and -1 <= batch["texture"].min() < batch["texture"].max() <= 1
    with iterator(config) as plain:  # without the hook: the PUT batch, unchanged
        assert set(next(plain)) == {"image", "mask", "erase_mask"}


def test_make_phase_dispatches_on_model_name():
    medfe = make_phase(tiny_config("medfe"), steps_per_epoch=8)
    assert isinstance(medfe, TSGLPhase) and medfe.variant == "medfe" and medfe.name == "generator"
    assert medfe.total_steps == 8 * medfe.config.train.generator.num_epochs
    o = medfe.config.optimizer
    # StepLR(3 epochs, 0.1) stepped per epoch: the lr of update k is g_lr * 0.1 ** (k // (3 * steps_per_epoch))
    for count, k in ((0, 0), (23, 0), (24, 1), (48, 2)):
        np.testing.assert_allclose(medfe.schedule(count), o.g_lr * o.step_lr_gamma ** k, rtol=1e-6)
        np.testing.assert_allclose(medfe.d_schedule(count), o.d_lr * o.step_lr_gamma ** k, rtol=1e-6)
    lama = make_phase(tiny_config("lama"), steps_per_epoch=8)
    assert lama.variant == "lama" and float(lama.schedule(10_000)) == lama.config.optimizer.g_lr  # no scheduler
    with pytest.raises(ValueError, match="missing .*'edge'"):
        lama.model_batch({"image": np.zeros((1, 128, 128, 3)), "mask": np.ones((1, 128, 128, 1))})


def test_config_errors_name_the_key():
    c = tiny_config("medfe")
    c.loss.hole_l1 = 3.0
    with pytest.raises(ValueError, match="loss.hole_l1"):
        make_phase(c, 8)
    c = tiny_config("lama")
    c.phase = "codec"
    with pytest.raises(ValueError, match="config key phase"):
        make_phase(c, 8)
    c = tiny_config("lama")
    c.model_name = "tsgl_other"
    with pytest.raises(ValueError, match="model_name"):
        make_phase(c, 8)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_train_phase_reduces_the_loss_checkpoints_and_resumes(variant, tmp_path):
    """24 steps on one fixed real batch on 2 devices (global batch 2: BatchNorm statistics over the sharded
    batch), then a resumed run to step 26 that also writes a sample grid. Each run compiles for minutes on
    a CPU."""
    import jax

    from fdm_jax.train import train_phase
    from fdm_jax.train.checkpointing import load_trained_variables
    from fdm_jax.train.metrics_log import read_metrics

    devices = jax.devices()[:2]
    work = tmp_path / variant
    names = tmp_path / "images.txt"
    names.write_text("Places365_val_00000267.jpg\nPlaces365_val_00000332.jpg\n")
    state = train_phase(tiny_config(variant, max_steps=24, checkpoint_every=12, fixed_batch_list=names), work,
                        devices=devices, progress=False)
    rows = read_metrics(work / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 25))
    assert all(np.isfinite(v) for r in rows for v in r.values())
    first, last = rows[:4], rows[-4:]
    mean = lambda rs, k: float(np.mean([r[k] for r in rs]))  # noqa: E731
    history = [round(r["loss"], 3) for r in rows]
    assert mean(last, "loss") < mean(first, "loss"), history
    assert mean(last, "structure_l1") < mean(first, "structure_l1"), history
    assert mean(last, "image_l1") < mean(first, "image_l1"), history
    assert int(state.step) == 24
    # the train-mode collections advanced: BN running statistics and spectral-norm vectors of G and D
    g_state = state.model_state["generator"]
    assert set(g_state) == {"batch_stats", "spectral_norm"}
    assert any(np.any(np.asarray(v) != 0) for v in jax.tree_util.tree_leaves(g_state["batch_stats"]))
    assert sorted(p.name for p in (work / "checkpoints").iterdir() if p.name.isdigit()) == ["12", "24"]

    resumed = train_phase(tiny_config(variant, max_steps=26, sample_every=26, fixed_batch_list=names), work,
                          devices=devices, progress=False)
    assert int(resumed.step) == 26
    assert [r["step"] for r in read_metrics(work / "metrics.jsonl")][-2:] == [25, 26]
    assert (work / "samples" / "step_0000026.png").is_file()
    variables, config = load_trained_variables(work)
    assert config["model_name"] == f"tsgl_{variant}" and "generator" in variables


def test_ffc_batch_norm_train_mode_follows_pytorch():
    """fdm_jax.lama.ffc.TorchBatchNorm: eval = flax's BatchNorm on the same variables; train = batch
    statistics (biased variance) with PyTorch's running update (momentum 0.1, unbiased variance), and under
    a batch-sharded jit the statistics of the global batch."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P

    from fdm_jax.lama.ffc import TorchBatchNorm
    from fdm_jax.train import data_mesh

    x = jax.random.normal(jax.random.key(0), (4, 3, 5, 2)) * 3.0 + 1.5
    bn = TorchBatchNorm()
    v = bn.init(jax.random.key(1), x)
    v = {"params": {"scale": jnp.array([0.5, 2.0]), "bias": jnp.array([0.1, -0.3])},
         "batch_stats": {"mean": jnp.array([0.2, -1.0]), "var": jnp.array([1.5, 0.7])}}
    flax_eval = nn.BatchNorm(use_running_average=True, epsilon=1e-5).apply(v, x)
    np.testing.assert_allclose(bn.apply(v, x), flax_eval, rtol=1e-6, atol=1e-6)

    y, upd = bn.apply(v, x, True, mutable=["batch_stats"])
    xn = np.asarray(x, np.float64)
    mean, var = xn.mean((0, 1, 2)), xn.var((0, 1, 2))
    n = xn.size // 2
    want = (xn - mean) / np.sqrt(var + 1e-5) * np.asarray(v["params"]["scale"]) + np.asarray(v["params"]["bias"])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(upd["batch_stats"]["mean"], 0.9 * np.asarray(v["batch_stats"]["mean"]) + 0.1 * mean,
                               rtol=1e-5)
    np.testing.assert_allclose(upd["batch_stats"]["var"],
                               0.9 * np.asarray(v["batch_stats"]["var"]) + 0.1 * var * n / (n - 1), rtol=1e-5)

    mesh = data_mesh(jax.devices()[:4])
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    ys, upd_s = jax.jit(lambda a: bn.apply(v, a, True, mutable=["batch_stats"]))(xs)
    np.testing.assert_allclose(ys, y, rtol=1e-5, atol=1e-5)  # one row per device, statistics over all 4
    np.testing.assert_allclose(upd_s["batch_stats"]["var"], upd["batch_stats"]["var"], rtol=1e-5)
