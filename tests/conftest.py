"""Test setup: 8 fake CPU devices for the sharding tests, float32-exact matmuls for the parity checks.

XLA_FLAGS must be set before JAX initialises its backends, hence here and not in a fixture.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")


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
