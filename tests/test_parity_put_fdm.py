"""Parity of the core modules with the ORIGINAL PyTorch code (shared/fixtures/put_fdm), through the
same harness users run (`python -m fdm_jax.parity`), from `param/*` and from the original `.pth` files."""

import subprocess
import sys

import numpy as np
import pytest

from fdm_jax.parity import EXIT_MISMATCH, EXIT_OK, EXIT_UNKNOWN, run_fixture
from shared_paths import fixtures_dir, require

PUT = fixtures_dir() / "put_fdm"
CORE_FIXTURES = ["codec_small.npz", "fdm_full.npz", "transformer_small.npz"]
CODEC_PTH = "put_fdm_codec_fdm_tuning.pth"
SAMPLER_PTH = "put_fdm_transformer.pth"


def _assert_pass(status, rows, msg):
    bad = [f"{r.name}: err {r.error} > tol {r.tolerance} {r.note}" for r in rows if not r.ok]
    assert status == EXIT_OK, f"{msg}; {bad}"
    assert rows, "no outputs compared"


@pytest.mark.parametrize("name", CORE_FIXTURES)
def test_fixture_passes_from_params(name):
    _assert_pass(*run_fixture(require(PUT / name)))


@pytest.mark.parametrize("name,weights", [
    ("codec_small.npz", [CODEC_PTH]),
    ("codec_small.npz", [CODEC_PTH, SAMPLER_PTH]),  # codec taken from the codec file, not the frozen copy
    ("transformer_small.npz", [SAMPLER_PTH]),
    ("transformer_small.npz", [CODEC_PTH, SAMPLER_PTH]),
])
def test_fixture_passes_from_original_pth(name, weights):
    _assert_pass(*run_fixture(require(PUT / name), tuple(str(require(PUT / w)) for w in weights)))


def test_cli_exit_codes(tmp_path):
    fx = require(PUT / "fdm_full.npz")
    run = lambda *a: subprocess.run([sys.executable, "-m", "fdm_jax.parity", *map(str, a)],
                                    capture_output=True, text=True)
    ok = run(fx)
    assert ok.returncode == EXIT_OK, ok.stdout + ok.stderr
    assert "pv" in ok.stdout and "tol" in ok.stdout

    # An output moved beyond its tolerance -> 1, and the line names it.
    with np.load(fx) as f:
        data = {k: f[k] for k in f.files}
    data["out/pv"] = data["out/pv"] + 1e-3
    np.savez(tmp_path / "tampered.npz", **data)
    bad = run(tmp_path / "tampered.npz")
    assert bad.returncode == EXIT_MISMATCH
    assert any("pv" in line and "FAIL" in line for line in bad.stdout.splitlines())

    # A module nobody ported -> 2.
    import json
    meta = json.loads(str(data["meta"]))
    meta["module"] = "some/other.py:Unknown"
    data["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "unknown.npz", **data)
    unk = run(tmp_path / "unknown.npz")
    assert unk.returncode == EXIT_UNKNOWN, unk.stdout

    # Weights that lack the part the fixture needs -> 1 with a one-line reason.
    missing = run(fx, "--weights", require(PUT / SAMPLER_PTH))
    assert missing.returncode == EXIT_MISMATCH
    assert "no fdm weights" in missing.stdout
