"""Test setup: 8 fake CPU devices for the sharding tests, float32-exact matmuls for the parity checks.

XLA_FLAGS must be set before JAX initialises its backends, hence here and not in a fixture.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Commands called in-process (inpaint.main, train.main) would switch on the persistent compilation
# cache in the user's home; tests that check the cache pass their own folder.
os.environ.setdefault("FDM_JAX_COMPILATION_CACHE", "none")

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """A project training run as `python train.py` writes it, for the tests that load one. CI exports
    FDM_JAX_DEMO_RUN (the demo run it has just trained, all four phases) and the tests reuse it;
    elsewhere two phases of the demo config train here for 2 steps (once per session)."""
    from pathlib import Path

    demo = os.environ.get("FDM_JAX_DEMO_RUN")
    if demo:
        assert (Path(demo) / "fdm_tuning").is_dir(), f"FDM_JAX_DEMO_RUN={demo} holds no finished demo run"
        return Path(demo)
    from fdm_jax.cli.config_loading import load_config
    from fdm_jax.train import train

    config = load_config("configs/demo.py", [
        "run.phases=('sampler', 'fdm')", "train.sampler.init_from=", "train.fdm.init_from=",
        "run.max_steps=2", "run.sample_every=0"])
    run = tmp_path_factory.mktemp("demo_run") / "run"
    train(config, run, progress=False)
    return run


def pytest_sessionfinish(session, exitstatus):
    """Under CI=true a skipped test is a failed run: nothing may pass by not running (the helpers in
    shared_paths.py already fail instead of skipping; this catches any other skip)."""
    if os.environ.get("CI", "").lower() != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"CI=true: {skipped} test(s) skipped; a skip is a failure in CI", red=True)
        session.exitstatus = 1
