"""Package layout beyond what pyproject.toml can say: configs/ (top level in the repository, where
`python train.py --config configs/paris.py` finds it) ships inside the wheel as fdm_jax/configs, so an
installed package resolves `--config paris` without a checkout (fdm_jax/cli/config_loading.py)."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["fdm_jax", "fdm_jax.*"]) + ["fdm_jax.configs"],
      package_dir={"fdm_jax.configs": "configs"})
