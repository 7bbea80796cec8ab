"""Parity of the core modules with the ORIGINAL PyTorch code (shared/fixtures/put_fdm), through the
same harness users run (`python -m fdm_jax.parity`), from `param/*` and from the original `.pth` files."""

import json
import os
import subprocess
import sys
import textwrap

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


def _run_cli(*args, env_extra=None, ci=False):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "fdm_jax.parity", *map(str, args)],
                          capture_output=True, text=True, env=env)


def test_cli_exit_codes(tmp_path):
    fx = require(PUT / "fdm_full.npz")
    run = _run_cli
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
    # ... and a failure in strict mode (CI=true or --strict): CI cannot pass on an unported module.
    assert run(tmp_path / "unknown.npz", ci=True).returncode == EXIT_MISMATCH
    assert run(tmp_path / "unknown.npz", "--strict").returncode == EXIT_MISMATCH

    # Weights that lack the part the fixture needs -> 1 with a one-line reason.
    missing = run(fx, "--weights", require(PUT / SAMPLER_PTH))
    assert missing.returncode == EXIT_MISMATCH
    assert "no fdm weights" in missing.stdout


def _fixture_data(name):
    with np.load(require(PUT / name)) as f:
        return {k: f[k] for k in f.files}


def test_strict_fails_a_fixture_whose_outputs_are_all_not_checked(tmp_path):
    """losses.npz's VGG maps are *not checked* without torch; a fixture holding only such outputs
    passes nothing in strict mode. Made here by keeping only the vgg_* outputs and hiding torch."""
    data = _fixture_data("losses.npz")
    kept = {k: v for k, v in data.items() if not k.startswith("out/") or k.startswith("out/vgg_")}
    assert any(k.startswith("out/vgg_") for k in kept)
    np.savez(tmp_path / "vgg_only.npz", **kept)
    # A sitecustomize that makes `import torch` fail, as on a machine without the optional extra.
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # import torch -> ImportError
    """))
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    strict = _run_cli(tmp_path / "vgg_only.npz", env_extra=env, ci=True)
    assert strict.returncode == EXIT_MISMATCH, strict.stdout + strict.stderr
    assert "NOT CHECKED" in strict.stdout
    assert _run_cli(tmp_path / "vgg_only.npz", "--strict", env_extra=env).returncode == EXIT_MISMATCH
    lenient = _run_cli(tmp_path / "vgg_only.npz", "--no-strict", env_extra=env)
    assert lenient.returncode == EXIT_OK, lenient.stdout + lenient.stderr
    assert "not checked" in lenient.stdout


def test_a_fixture_with_no_outputs_fails(tmp_path):
    data = {k: v for k, v in _fixture_data("fdm_full.npz").items() if not k.startswith("out/")}
    np.savez(tmp_path / "no_outputs.npz", **data)
    for kw in ({"ci": True}, {"ci": False}):
        res = _run_cli(tmp_path / "no_outputs.npz", **kw)
        assert res.returncode == EXIT_MISMATCH, res.stdout
        assert "no outputs" in res.stdout


def test_a_runner_module_that_fails_to_import_is_a_failure_naming_the_error(tmp_path):
    """The put_fdm runner module is made unimportable (as a syntax error or a missing dependency
    would): its fixture fails with exit 1 and the import error in the message, not exit 2."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        class _Broken:
            def find_spec(self, name, path=None, target=None):
                if name == "fdm_jax.parity.runners.put_fdm":
                    raise ImportError("injected: put_fdm runner is broken")
                return None
        sys.meta_path.insert(0, _Broken())
    """))
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    for kw in ({"ci": True}, {"ci": False}):
        res = _run_cli(require(PUT / "fdm_full.npz"), env_extra=env, **kw)
        assert res.returncode == EXIT_MISMATCH, res.stdout + res.stderr
        assert "put_fdm failed to import" in res.stdout and "injected" in res.stdout, res.stdout


def test_every_shared_fixture_has_a_runner():
    """A fixture added to ../shared/fixtures without a runner would only show up as "unknown" when
    someone runs it; here it fails at once (the fixtures themselves run in their own tests)."""
    from fdm_jax.parity.harness import find_runner, load_fixture
    from fdm_jax.parity.runners import IMPORT_ERRORS

    files = sorted(require(fixtures_dir()).glob("*/*.npz"))
    assert len(files) >= 22
    assert not IMPORT_ERRORS, IMPORT_ERRORS
    missing = [str(f) for f in files if find_runner(str(load_fixture(f).meta.get("module", ""))) is None]
    assert not missing, f"fixtures without a runner: {missing}"
