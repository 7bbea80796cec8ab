"""`pip install .` outside the checkout: the installed package (not the repository) runs the inpaint
command from a project checkpoint (its config travels with it) and from a shipped paper config by
name (configs/ ships as fdm_jax/configs), and ships the models of fdm_jax/assets."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with this project installed from a wheel built here. Its dependencies come from
    this interpreter's site-packages through a plain path line (a .pth line adds the folder without
    running that folder's own .pth files, so the checkout's editable install does not leak in)."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "env")], check=True)
    py = root / "env" / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(REPO)], check=True, cwd=root)
    wheel = next(wheels.glob("fdm_jax-*.whl"))
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
                   check=True, cwd=root, env={**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]})
    return py, root


def run(py, cwd, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(py), *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_installed_package_is_used(venv):
    py, root = venv
    r = run(py, root, "-c", "import fdm_jax, fdm_jax.configs as c; print(fdm_jax.__file__); print(c.__file__)")
    assert r.returncode == 0, r.stderr
    files = r.stdout.split()
    assert all(str(root) in f and str(REPO) not in f for f in files), files


def test_inpaint_help_and_a_named_config(venv, tmp_path):
    py, root = venv
    r = run(py, root, "-m", "fdm_jax.inpaint", "--help")
    assert r.returncode == 0 and "--checkpoint" in r.stdout, r.stderr
    image = REPO.parent / "shared" / "data" / "images" / "imagenet_sample" / "n01440764_tench.jpg"
    r = run(py, root, "-m", "fdm_jax.inpaint", "--checkpoint", "random", "--config", "paris:tiny",
            "--config.sampling.top_k", "3", "--image", str(image), "--mask-ratio", "0.3", "--out", str(tmp_path / "r"),
            "--compilation-cache", "none")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "r" / "sample_0.png").is_file()


def test_inpaint_from_a_demo_checkpoint(venv, demo_run, tmp_path):
    py, root = venv
    image = REPO.parent / "shared" / "data" / "images" / "imagenet_sample" / "n01443537_goldfish.jpg"
    r = run(py, root, "-m", "fdm_jax.inpaint", "--checkpoint", str(demo_run), "--image", str(image),
            "--mask-ratio", "0.3", "--num-samples", "2", "--out", str(tmp_path / "d"), "--compilation-cache", "none")
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "d").glob("sample_*.png")) == ["sample_0.png", "sample_1.png"]


def test_the_shipped_model_is_in_the_wheel(venv):
    py, root = venv
    r = run(py, root, "-c", "from fdm_jax.inference import shipped; print(shipped.verify('put_fdm_small'))")
    assert r.returncode == 0, r.stderr[-2000:]
    assert str(root) in r.stdout and str(REPO) not in r.stdout, r.stdout
