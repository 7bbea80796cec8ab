"""Fault injection: bad input and failures through the public entry points (`python -m fdm_jax.inpaint`,
evaluate.py, train.py and the Python API) end in a clear one-line error or a safe fallback, and
nothing already done is lost. Each test names the row of issue 18 it covers."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.cli.config_loading import load_config
from shared_paths import fixtures_dir, require, shared_dir

REPO = Path(__file__).resolve().parents[1]
TINY = "configs/paris.py:tiny"
PUT = fixtures_dir() / "put_fdm"
PLACES = shared_dir() / "data/images/places2_256_freeform"


# ------------------------------------------------------------------------------------------ setup

@pytest.fixture(scope="module", autouse=True)
def compile_cache(tmp_path_factory):
    """A persistent compilation cache for this module: the training tests compile the same tiny step
    several times (about 40 s each without it, 10 s with it on the 2-core test machine)."""
    from jax._src import compilation_cache as cc

    cache = str(tmp_path_factory.mktemp("jax_cache"))
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    old = {n: getattr(jax.config, n) for n in names}
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    cc.reset_cache()
    yield cache
    for n, v in old.items():
        jax.config.update(n, v)
    cc.reset_cache()


def _weights() -> list[str]:
    return [str(require(PUT / "put_fdm_codec_fdm_tuning.pth")), str(require(PUT / "put_fdm_transformer.pth"))]


@pytest.fixture(scope="module")
def tiny_put():
    from fdm_jax.inference.put_fdm import load_put_fdm

    return load_put_fdm(_weights(), TINY)


def _places_image(name="Places365_val_00000262") -> Path:
    return require(PLACES / f"images/{name}.jpg")


def _one_line_error(capsys, expect: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0], err
    return err[0]


def _evaluate_cli():
    spec = importlib.util.spec_from_file_location("evaluate_cli", REPO / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


class _ModelLoaded(Exception):
    """Raised by a stubbed model loader: the command got past its input checks to the expensive part."""


def _no_model_loading(monkeypatch):
    def stub(*a, **k):
        raise _ModelLoaded("the model was loaded before the input was checked")

    monkeypatch.setattr("fdm_jax.inference.put_fdm.load_put_fdm", stub)


# ------------------------------------------------------------------- row 1: NaN / Inf, Python API

def test_row1_nan_or_inf_input_to_inpaint_samples_is_an_input_error(tiny_put):
    from fdm_jax.io.images import InputError
    from fdm_jax.put_fdm.sampling import inpaint_samples

    config, models, variables = tiny_put
    s = int(config.image_size)
    image = np.full((1, s, s, 3), 128.0, np.float32)
    mask = np.ones((1, s, s, 1), np.float32)
    mask[:, : s // 2] = 0

    def run(img, msk):
        return inpaint_samples(models["codec"], variables["codec"], models["sampler"], variables["sampler"],
                               models["fdm"], variables["fdm"], img, msk, jax.random.key(0), 1, top_k=2)

    bad = image.copy()
    bad[0, 0, 0, 0] = np.nan  # in the hole: the masked input would be NaN x 0 = NaN
    with pytest.raises(InputError, match=r"inpaint_samples: image has 1 NaN or infinite"):
        run(bad, mask)
    bad_mask = mask.copy()
    bad_mask[0, -1, -1, 0] = np.inf
    with pytest.raises(InputError, match=r"inpaint_samples: mask has 1 NaN or infinite"):
        run(image, bad_mask)


def test_row1_nan_input_to_refine_is_an_input_error():
    from fdm_jax.io.images import InputError
    from fdm_jax.lama.generator import FrontRear
    from fdm_jax.lama.refine import RefineConfig, refine

    fr = FrontRear(lambda v, x, m: x * m, lambda v, z: z)  # any generator: the check is at the entry
    image = jnp.full((1, 16, 16, 3), 0.5)
    mask = jnp.ones((1, 16, 16, 1)).at[:, 4:8, 4:8].set(0.0)
    cfg = RefineConfig(n_iters=2, min_side=8)
    assert np.isfinite(np.asarray(refine(fr, {}, image, mask, cfg))).all()  # the control runs
    with pytest.raises(InputError, match=r"refine: image has 1 NaN or infinite"):
        refine(fr, {}, image.at[0, 5, 5, 0].set(jnp.nan), mask, cfg)
    with pytest.raises(InputError, match=r"refine: mask has 1 NaN or infinite"):
        refine(fr, {}, image, mask.at[0, 0, 0, 0].set(-jnp.inf), cfg)


# ------------------------------------------------------------------- row 3: truncated JPEG, inpaint

def test_row3_truncated_jpeg_is_a_one_line_error_before_the_model_loads(tmp_path, capsys, monkeypatch):
    from fdm_jax.inpaint import main

    data = _places_image().read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    _no_model_loading(monkeypatch)
    code = main(["--checkpoint", "random", "--config", TINY, "--image", str(cut), "--mask-ratio", "0.3",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    _one_line_error(capsys, f"image {cut}: damaged or truncated")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------- row 4: photos as masks, evaluate.py

def test_row4_photos_as_masks_are_an_error_in_evaluate(tmp_path, capsys, monkeypatch):
    masks = tmp_path / "masks"
    masks.mkdir()
    for k, p in enumerate(sorted(require(PLACES / "images").glob("*.jpg"))[:3]):
        cv2.imwrite(str(masks / f"{k:05d}.png"), cv2.imread(str(p)))  # colour photos saved as PNG
    monkeypatch.setattr("fdm_jax.evaluation.PutFdmInpainter.from_checkpoints",
                        classmethod(lambda *a, **k: (_ for _ in ()).throw(_ModelLoaded("model loaded"))))
    code = _evaluate_cli()(["--checkpoint", "random", "--config", TINY, "--data", str(require(PLACES)),
                            "--mask-dir", str(masks), "--out", str(tmp_path / "eval"), "--no-progress"])
    assert code == 2
    _one_line_error(capsys, "00000.png: a colour image, not a mask")

    # A grey photo is caught too; real binary masks load as before.
    from fdm_jax.data.masks import ProvidedMasks

    grey = tmp_path / "grey"
    grey.mkdir()
    cv2.imwrite(str(grey / "a.png"), cv2.imread(str(_places_image()), cv2.IMREAD_GRAYSCALE))
    with pytest.raises(ValueError, match="grey, not a binary mask"):
        ProvidedMasks(grey).load(0, 64)
    m = ProvidedMasks(require(shared_dir() / "data/masks/pconv_test"), (0, 1)).load(0, 64)
    assert set(np.unique(m)) <= {0.0, 1.0}


# ------------------------------------------------- row 5: a failed evaluation must not block a rerun

class _FakeModel:
    """An InpaintingModel without JAX: blurs the masked image; `broken` fails like a bad checkpoint."""

    def __init__(self, weights: str, broken: bool = False):
        self.name, self.size, self.weights, self.broken = f"fake {weights}", 32, weights, broken

    def preprocess(self, image):
        return cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)

    def sample(self, images, masks, keys, num_samples):
        if self.broken:
            raise RuntimeError(f"checkpoint {self.weights}: mis-shaped weights")
        out = np.stack([cv2.blur(x, (5, 5)) for x in images * masks])
        return np.broadcast_to(out, (num_samples,) + out.shape)

    def fingerprint(self):
        return {"method": "fake", "weights": self.weights}

    def reference_rows(self, buckets):
        return []


def test_row5_failed_evaluation_leaves_no_manifest_and_a_corrected_rerun_works(tmp_path):
    from fdm_jax.data.masks import ProvidedMasks
    from fdm_jax.data.sources import ArrayImageSource
    from fdm_jax.evaluation import evaluate, parse_buckets

    mdir = tmp_path / "masks"
    mdir.mkdir()
    for k in range(6):
        m = np.zeros((32, 32), np.uint8)
        m[: 10 + k, :16] = 255  # hole ratios 0.16 .. 0.23
        cv2.imwrite(str(mdir / f"{k}.png"), m)
    rng = np.random.default_rng(0)
    source = ArrayImageSource([rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(2)], ["a", "b"])
    kw = dict(num_samples=1, batch_size=2, metrics=("psnr",), progress=False)
    out = tmp_path / "eval"
    with pytest.raises(RuntimeError, match="mis-shaped"):
        evaluate(_FakeModel("bad.pth", broken=True), source, ProvidedMasks(mdir), parse_buckets("0.1-0.3"),
                 out_dir=out, **kw)
    assert not (out / "manifest.json").exists()
    results = evaluate(_FakeModel("good.pth"), source, ProvidedMasks(mdir), parse_buckets("0.1-0.3"),
                       out_dir=out, **kw)
    assert results["complete"]
    assert json.loads((out / "manifest.json").read_text())["checked"]["model"]["weights"] == "good.pth"


# ------------------------------------------------------------- row 6: --out naming an existing file

def test_row6_out_naming_a_file_is_a_one_line_error_before_any_work(tmp_path, capsys, monkeypatch):
    from fdm_jax.inpaint import main

    target = tmp_path / "results.png"
    target.write_bytes(b"not a folder")
    _no_model_loading(monkeypatch)
    code = main(["--checkpoint", "random", "--config", TINY, "--image", str(_places_image()), "--mask-ratio", "0.3",
                 "--out", str(target)])
    assert code == 2
    _one_line_error(capsys, f"--out {target}: exists and is not a directory")
    assert target.read_bytes() == b"not a folder"


# ------------------------------------------------------------ row 9: suspicious inputs warn, inpaint

class _StopRun(Exception):
    pass


class _StopModels(dict):
    def __getitem__(self, key):
        raise _StopRun  # the inputs are prepared: stop before any model runs


def _warnings_of(monkeypatch, tmp_path, image: np.ndarray, mask: np.ndarray | None) -> list[str]:
    import warnings

    from fdm_jax.inpaint import main

    config = load_config(TINY)
    monkeypatch.setattr("fdm_jax.inference.put_fdm.load_put_fdm", lambda *a, **k: (config, _StopModels(), {}))
    cv2.imwrite(str(tmp_path / "img.png"), image)
    args = ["--checkpoint", "random", "--config", TINY, "--image", str(tmp_path / "img.png"), "--out",
            str(tmp_path / "out")]
    if mask is None:
        args += ["--mask-ratio", "0.3"]
    else:
        cv2.imwrite(str(tmp_path / "mask.png"), mask)
        args += ["--mask", str(tmp_path / "mask.png")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(_StopRun):
            main(args)
    return [str(w.message) for w in caught]


def test_row9_suspicious_mask_and_image_scale_warn(tmp_path, monkeypatch):
    photo = cv2.imread(str(_places_image()))  # 256 x 256; the tiny model takes 64 x 64
    mostly_white = np.full((256, 256), 255, np.uint8)
    mostly_white[100:140, 100:140] = 0  # 98 % "hole": white probably marks the known region
    normal = np.zeros((256, 256), np.uint8)
    normal[100:140, 100:140] = 255
    assert _warnings_of(monkeypatch, tmp_path, photo, normal) == []  # the control: no warning
    w = _warnings_of(monkeypatch, tmp_path, photo, mostly_white)
    assert len(w) == 1 and "98% of the pixels are holes" in w[0] and "--mask-polarity hole-black" in w[0]
    w = _warnings_of(monkeypatch, tmp_path, cv2.resize(photo, (16, 16)), None)  # 64 / 16: upscaled 4x
    assert len(w) == 1 and "16x16 is upscaled 4.0x" in w[0]
    w = _warnings_of(monkeypatch, tmp_path, cv2.resize(photo, (240, 80)), None)  # a third of the long side kept
    assert len(w) == 1 and "240x80 is centre-cropped" in w[0] and "33%" in w[0]


# ------------------------------------------------------------------------------------- training

def _train_config(max_steps: int, every: int, log_every: int = 2):
    """The demo config's FDM phase from a fresh codec (the quickest phase), as tests/test_train_loop.py."""
    return load_config("configs/demo.py", [
        "phase=fdm", "train.fdm.init_from=", f"run.max_steps={max_steps}", f"run.checkpoint_every={every}",
        f"run.log_every={log_every}", "run.sample_every=0", "run.tensorboard=False"])


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """4 steps, checkpoints at 2 and 4, metrics rows 2 and 4; each test resumes from a copy."""
    from fdm_jax.train import train_phase

    run = tmp_path_factory.mktemp("base") / "run"
    train_phase(_train_config(4, 2), run, progress=False)
    return run


def _copy(base: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(base, run)
    return run


def _committed(run: Path) -> list[int]:
    return sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())


def test_row2_corrupt_latest_checkpoint_falls_back_to_the_previous_one(base_run, tmp_path, capsys):
    from fdm_jax.train import train_phase
    from fdm_jax.train.checkpointing import load_trained_variables
    from fdm_jax.train.metrics_log import read_metrics

    run = _copy(base_run, tmp_path)
    data = max((run / "checkpoints/4/state").rglob("d/*"), key=lambda p: p.stat().st_size)
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # a truncated array file

    # Inference reads the newest readable checkpoint, saying which one it skipped.
    with pytest.warns(UserWarning, match=r"checkpoints/4: .*skipped for step 2"):
        variables, _ = load_trained_variables(run)
    step2, _ = load_trained_variables(run, step=2)
    for a, b in zip(jax.tree_util.tree_leaves(variables), jax.tree_util.tree_leaves(step2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # Training resumes from step 2, keeps the damaged step as 4.corrupt, and saves a good step 4.
    train_phase(_train_config(6, 2), run, progress=False)
    out = capsys.readouterr().out
    assert "checkpoints/4 cannot be read" in out and "kept as 4.corrupt; resuming from step 2" in out
    assert (run / "checkpoints/4.corrupt/state").is_dir()
    assert _committed(run) == [2, 4, 6]
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [2, 4, 6]

    # Bad metadata: the newest checkpoint's tree metadata is not JSON any more.
    (run / "checkpoints/6/state/_METADATA").write_text("{ not json")
    with pytest.warns(UserWarning, match=r"checkpoints/6: .*skipped for step 4"):
        variables, _ = load_trained_variables(run)
    assert len(jax.tree_util.tree_leaves(variables)) == len(jax.tree_util.tree_leaves(step2))


def test_row7_replayed_steps_replace_their_metrics_rows(base_run, tmp_path):
    from fdm_jax.train import train_phase

    run = _copy(base_run, tmp_path)
    shutil.rmtree(run / "checkpoints/4")  # killed before the save at 4 committed: steps 3, 4 are replayed
    before = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train_phase(_train_config(4, 2), run, progress=False)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]  # the raw file
    assert [r["step"] for r in rows] == [2, 4]
    assert rows[0] == before[0]  # step 2 was not replayed: its row is untouched
    assert rows[1]["time"] > before[1]["time"]  # step 4's row is the replay's


def _patch_commit(monkeypatch, step: int, action):
    """Runs `action` where orbax commits (renames) the checkpoint of `step`, the last write of a save."""
    from orbax.checkpoint._src.path import atomicity

    original = atomicity.AtomicRenameTemporaryPath.finalize

    async def finalize(self, *a, **k):
        if self._final_path.name == str(step):
            await action()
        return await original(self, *a, **k)

    monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", finalize)


def test_row8_a_kill_at_any_moment_loses_at_most_one_checkpoint_interval(base_run, tmp_path, monkeypatch):
    """The save at step 6 takes 3 s (a slow disk). Before every step the test records what a SIGKILL
    at that moment would lose: the steps done minus the newest committed checkpoint."""
    import asyncio

    from fdm_jax.data import pipeline
    from fdm_jax.train import train_phase

    run = _copy(base_run, tmp_path)

    async def slow():
        await asyncio.sleep(3.0)

    _patch_commit(monkeypatch, 6, slow)
    lost, shard = [], pipeline.shard_batch
    start = 4

    def watch(batch, mesh):
        lost.append((start + len(lost)) - max(_committed(run)))
        return shard(batch, mesh)

    monkeypatch.setattr(pipeline, "shard_batch", watch)
    train_phase(_train_config(9, 2), run, progress=False)
    assert len(lost) == 5 and max(lost) <= 2, lost  # the interval is 2 steps
    assert _committed(run)[-1] == 9


def test_disk_full_during_a_save_is_a_clear_error_and_the_run_resumes(base_run, tmp_path, monkeypatch):
    from fdm_jax.train import train_phase
    from fdm_jax.train.checkpointing import CheckpointError

    run = _copy(base_run, tmp_path)

    async def full():
        raise OSError(errno.ENOSPC, "No space left on device")

    _patch_commit(monkeypatch, 6, full)
    with pytest.raises(CheckpointError, match=r"checkpoints/6: save failed .*No space left on device.*"
                                              r"newest good checkpoint is \[4\] \(kept\)"):
        train_phase(_train_config(6, 2), run, progress=False)
    assert _committed(run) == [2, 4]
    monkeypatch.undo()  # space freed: the same command resumes from 4 and finishes
    train_phase(_train_config(6, 2), run, progress=False)
    assert _committed(run) == [2, 4, 6]


def test_nan_loss_stops_the_run_with_the_last_good_checkpoint_kept(base_run, tmp_path, monkeypatch):
    """From step 6 on the step returns NaN parameters and loss (a diverged run). Checkpoints every 2
    steps, logs every 4: the NaN state of step 6 must not become a checkpoint."""
    from fdm_jax.put_fdm import phases
    from fdm_jax.train import TrainingError, train_phase
    from fdm_jax.train.checkpointing import load_trained_variables

    make_phase = phases.make_phase

    def diverging(*a, **k):
        phase = make_phase(*a, **k)
        step = phase.train_step

        def train_step(state, batch):
            new, metrics = step(state, batch)
            bad = state.step + 1 >= 6
            nan = lambda x: jnp.where(bad, jnp.nan, x)  # noqa: E731
            new = new.replace(params=jax.tree_util.tree_map(nan, new.params))
            return new, {**metrics, "loss": nan(metrics["loss"])}

        object.__setattr__(phase, "train_step", train_step)  # a frozen dataclass: shadow the method
        return phase

    monkeypatch.setattr(phases, "make_phase", diverging)  # the loop looks it up when it builds a phase
    run = _copy(base_run, tmp_path)
    with pytest.raises(TrainingError, match=r"step 6: non-finite \['loss'\].*last good checkpoint: 4"):
        train_phase(_train_config(8, 2, log_every=4), run, progress=False)
    assert _committed(run) == [2, 4]
    variables, _ = load_trained_variables(run)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(variables))


def test_sigterm_checkpoints_the_current_step_and_exits_0(base_run, tmp_path, compile_cache):
    run = _copy(base_run, tmp_path)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu",
               JAX_COMPILATION_CACHE_DIR=compile_cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    cmd = [sys.executable, str(REPO / "train.py"), "--config", "configs/demo.py", "--workdir", str(run),
           "--no-progress", "--config.phase=fdm", "--config.train.fdm.init_from=", "--config.run.max_steps=1000",
           "--config.run.checkpoint_every=500", "--config.run.log_every=1", "--config.run.sample_every=0",
           "--config.run.tensorboard=False"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        rows = (run / "metrics.jsonl").read_text().splitlines()
        if rows and json.loads(rows[-1])["step"] >= 6:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    step = max(_committed(run))
    assert 6 <= step < 500  # the step reached, not a scheduled checkpoint
    assert f"SIGTERM at step {step}: checkpoint" in out and "run the same command again to resume" in out
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == step  # nothing trained after the checkpoint


# ------------------------------------------------------------------------------ fuzzed inputs

from hypothesis import HealthCheck, event, example, given, settings, strategies as st  # noqa: E402

FUZZ = settings(derandomize=True, max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


MUTATIONS = ("size_56x64", "size_72x64", "size_1x64", "size_0x64", "channels_1", "channels_4", "dtype_bool",
             "dtype_complex64", "image_nan", "image_inf", "image_above_255", "mask_0_255", "mask_negative",
             "mask_nan", "mask_without_channel_axis")


@FUZZ
@given(dtype=st.sampled_from(["float32", "float64", "float16", "uint8", "int32"]),
       mask_kind=st.sampled_from(["binary", "soft", "all_known", "all_hole"]),
       hole=st.sampled_from([0.1, 0.5, 0.95]), unit_range=st.booleans(),
       mutations=st.lists(st.sampled_from(MUTATIONS), max_size=2, unique=True))
@example(dtype="uint8", mask_kind="all_hole", hole=0.5, unit_range=False, mutations=[])
@example(dtype="float16", mask_kind="soft", hole=0.95, unit_range=True, mutations=[])
def test_fuzzed_arrays_to_inpaint_samples_run_or_raise_input_error(tiny_put, dtype, mask_kind, hole, unit_range,
                                                                    mutations):
    """A valid input (64 x 64 RGB, any real dtype, a mask in [0, 1] of any hole share, polarity
    included) with up to two mutations: it runs to a finite result of the stated shape, or raises
    InputError with a one-line message, never anything else."""
    from fdm_jax.io.images import InputError
    from fdm_jax.put_fdm.sampling import inpaint_samples

    config, models, variables = tiny_put
    assert config.image_size == 64
    rng = np.random.default_rng(0)
    h, w, c = 64, 64, 3
    for m in mutations:
        if m.startswith("size_"):
            h, w = (int(v) for v in m[5:].split("x"))
        if m.startswith("channels_"):
            c = int(m[9:])
    img = rng.uniform(0, 1 if unit_range else 255, (1, h, w, c))
    if "image_nan" in mutations:
        img[..., :1, :1, :] = np.nan
    if "image_inf" in mutations:
        img[..., -1:, -1:, :] = np.inf
    if "image_above_255" in mutations:
        img = img * 4 + 1
    for m in mutations:
        if m.startswith("dtype_"):
            dtype = m[6:]
    with np.errstate(invalid="ignore"):
        img = img.astype(dtype)
    known = (rng.random((1, h, w, 1)) >= hole).astype(np.float64)
    mask = {"binary": known, "soft": known * 0.5 + 0.25, "all_known": np.ones_like(known),
            "all_hole": np.zeros_like(known)}[mask_kind]
    if "mask_0_255" in mutations:
        mask = (1 - mask) * 255
    if "mask_negative" in mutations:
        mask = mask - 1
    if "mask_nan" in mutations:
        mask = np.where(known > 0, mask, np.nan)
    if "mask_without_channel_axis" in mutations:
        mask = mask[..., 0]
    mask = mask.astype(dtype if dtype.startswith("float") else "float32")
    try:
        out = inpaint_samples(models["codec"], variables["codec"], models["sampler"], variables["sampler"],
                              models["fdm"], variables["fdm"], img, mask, jax.random.key(0), 1, top_k=2)
    except InputError as e:
        assert str(e).startswith("inpaint_samples: ") and "\n" not in str(e)
        event("InputError")
        return
    event("ran")
    result = np.asarray(out["inpainted_image"])
    assert result.shape == (1, 1, h, w, 3) and np.isfinite(result).all()


@FUZZ
@given(h=st.sampled_from([64, 1, 7, 300]), w=st.sampled_from([64, 20, 1]), channels=st.sampled_from([1, 3, 4]),
       depth=st.sampled_from(["uint8", "uint16"]), mask_size=st.sampled_from(["image", "model", "other"]),
       mask_kind=st.sampled_from(["binary", "grey", "all_0", "all_255"]), mask_channels=st.sampled_from([1, 3]),
       polarity=st.sampled_from(["hole-white", "hole-black"]), hole=st.sampled_from([0.2, 0.9]))
def test_fuzzed_files_to_inpaint_input_handling_run_or_raise_input_error(tmp_path, h, w, channels, depth, mask_size,
                                                                         mask_kind, mask_channels, polarity, hole):
    import argparse
    import warnings

    from fdm_jax.io.images import InputError
    from fdm_jax.inpaint import _prepare_inputs, _read_inputs

    rng = np.random.default_rng(1)
    top = 255 if depth == "uint8" else 65535
    image = rng.integers(0, top + 1, (h, w, channels)).astype(depth)
    cv2.imwrite(str(tmp_path / "img.png"), image[..., 0] if channels == 1 else image)
    mh, mw = {"image": (h, w), "model": (64, 64), "other": (h + 3, w)}[mask_size]
    holes = rng.random((mh, mw)) < hole
    m = {"binary": np.where(holes, 255, 0), "grey": np.where(holes, 200, 40), "all_0": np.zeros((mh, mw)),
         "all_255": np.full((mh, mw), 255)}[mask_kind].astype(np.uint8)
    cv2.imwrite(str(tmp_path / "mask.png"), np.repeat(m[..., None], 3, -1) if mask_channels == 3 else m)
    args = argparse.Namespace(image=str(tmp_path / "img.png"), mask=str(tmp_path / "mask.png"),
                              mask_polarity=polarity, mask_ratio=None, seed=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw, raw_mask = _read_inputs(args)
            x, known = _prepare_inputs(args, 64, raw, raw_mask)
    except InputError as e:
        assert "\n" not in str(e) and ("mask" in str(e) or "image" in str(e))
        event("InputError")
        return
    event("ran")
    assert x.shape == (64, 64, 3) and x.dtype == np.float32 and np.isfinite(x).all()
    assert 0 <= x.min() and x.max() <= 255
    assert known.shape == (64, 64) and set(np.unique(known)) == {0.0, 1.0}
