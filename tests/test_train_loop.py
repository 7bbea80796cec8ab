"""The training loop: checkpoints, exact resume (also after SIGKILL and across device counts),
metrics files, sample grids, and clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from fdm_jax.cli.config_loading import load_config
from fdm_jax.train import train_phase
from fdm_jax.train.checkpointing import load_trained_variables
from fdm_jax.train.metrics_log import read_metrics

REPO = Path(__file__).resolve().parents[1]


def fdm_config(max_steps, every):
    """The demo config's FDM phase from a fresh codec: the quickest phase to train."""
    return load_config("configs/demo.py", [
        "phase=fdm", "train.fdm.init_from=", f"run.max_steps={max_steps}", f"run.checkpoint_every={every}",
        "run.log_every=2", f"run.sample_every={max_steps}", "run.tensorboard=True"])


def leaves(variables):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(variables)]


def assert_same_variables(a, b):
    la, lb = leaves(a), leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y)


def test_resume_continues_exactly_and_across_device_counts(tmp_path):
    straight = tmp_path / "straight"
    train_phase(fdm_config(8, 4), straight, progress=False)
    resumed = tmp_path / "resumed"
    train_phase(fdm_config(4, 4), resumed, progress=False)  # saved at 4 on 8 devices
    train_phase(fdm_config(8, 4), resumed, devices=jax.devices()[:1], progress=False)  # resumed on 1
    a, config = load_trained_variables(straight)
    b, _ = load_trained_variables(resumed)
    # 8 -> 1 devices changes only the reduction order of the batch sums: float tolerance.
    for x, y in zip(leaves(a), leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
    assert config["phase"] == "fdm"
    rows = read_metrics(straight / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    assert all(np.isfinite(r["loss"]) and r["images_per_s"] > 0 for r in rows)
    assert [r["step"] for r in read_metrics(resumed / "metrics.jsonl")] == [2, 4, 6, 8]
    assert list((straight / "tensorboard").glob("events.out.tfevents.*"))
    assert (straight / "samples" / "step_0000008.png").stat().st_size > 0
    assert (straight / "loss_curves.png").stat().st_size > 0


def _train_cmd(workdir, max_steps):
    return [sys.executable, str(REPO / "train.py"), "--config", "configs/demo.py", "--workdir", str(workdir),
            "--no-progress", "--config.phase=fdm", "--config.train.fdm.init_from=",
            f"--config.run.max_steps={max_steps}", "--config.run.checkpoint_every=3", "--config.run.log_every=3",
            "--config.run.sample_every=0"]


@pytest.mark.slow  # three training subprocesses (~1.5 min); CI's second stage
def test_sigkill_then_restart_ends_with_the_uninterrupted_parameters(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_train_cmd(straight, 12), cwd=REPO, env=env, check=True, capture_output=True)

    proc = subprocess.Popen(_train_cmd(killed, 12), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    ckpts = killed / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        if ckpts.is_dir() and any(p.name == "6" for p in ckpts.iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = max(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
    assert 6 <= latest < 12
    subprocess.run(_train_cmd(killed, 12), cwd=REPO, env=env, check=True, capture_output=True)
    a, _ = load_trained_variables(straight)
    b, _ = load_trained_variables(killed)
    assert_same_variables(a, b)  # same devices, same program: bit-identical


def test_train_cli_rejects_a_misspelt_key(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "train.py"), "--workdir", str(tmp_path),
                        "--config.run.max_step=3"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2
    assert "config key 'run.max_step' does not exist" in r.stderr and "run.max_steps" in r.stderr
    assert "Traceback" not in r.stderr
