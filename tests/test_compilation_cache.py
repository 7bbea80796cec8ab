"""Where the command entry points put JAX's persistent compilation cache (fdm_jax.cli.compilation_cache)."""

import subprocess
import sys
from pathlib import Path

import pytest

from fdm_jax.cli import compilation_cache as cc


def test_folder_from_flag_then_variable_then_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(cc.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cc.resolve() == tmp_path / "xdg" / "fdm_jax" / "jax_cache"
    monkeypatch.setenv(cc.ENV, str(tmp_path / "env"))
    assert cc.resolve() == tmp_path / "env"
    assert cc.resolve(str(tmp_path / "flag")) == tmp_path / "flag"
    assert cc.resolve("none") is None and cc.resolve("None") is None
    monkeypatch.setenv(cc.ENV, "none")
    assert cc.resolve() is None
    assert cc.resolve(str(tmp_path / "flag")) == tmp_path / "flag"  # the flag wins over the variable


@pytest.mark.parametrize("command", [["train.py"], ["evaluate.py"], ["-m", "fdm_jax.inpaint"]])
def test_every_command_takes_the_flag(command):
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, *command, "--help"], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    assert "--compilation-cache: persistent compilation cache folder" in r.stdout
