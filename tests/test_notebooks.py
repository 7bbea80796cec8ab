"""The notebooks of notebooks/ run top to bottom with tiny models (nbclient, a fresh kernel each).

Each run replaces the cell tagged `parameters` with CI sizes, appends a cell that reports the
notebook's key variables as JSON, and fails on any cell error. The committed notebooks must carry no
outputs and be exactly what notebooks/make_notebooks.py writes.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from shared_paths import fixtures_dir, require, shared_dir

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
NAMES = ("quickstart", "functional_tour", "high_resolution")
CELL_TIMEOUT = 240
CHECK = "NBCHECK "


def put_fdm_files() -> list[str]:
    d = fixtures_dir() / "put_fdm"
    return [str(require(d / "put_fdm_codec_fdm_tuning.pth")), str(require(d / "put_fdm_transformer.pth"))]


def common() -> str:
    return f"REPO_ROOT = {str(REPO)!r}\nDATA_DIR = {str(require(shared_dir() / 'data'))!r}\n"


def params(name: str) -> str:
    if name == "quickstart":
        return (f"CHECKPOINT = {put_fdm_files()!r}\nCONFIG = 'configs/paris.py:tiny'\nIMAGE = None\nMASK = None\n"
                "NUM_SAMPLES = 2\nTOP_K = 8\nSEED = 0\n" + common())
    if name == "functional_tour":
        lama = str(require(fixtures_dir() / "lama" / "ffc_generator_small.pth"))
        return (f"CHECKPOINT = {put_fdm_files()!r}\nCONFIG = 'configs/paris.py:tiny'\n"
                f"LAMA_CHECKPOINT = {lama!r}\nLAMA_CONFIG = 'configs/big_lama.py:tiny'\nLAMA_SIZE = 64\n"
                "NUM_IMAGES = 3\nSTEPS = 3\nNUM_SAMPLES = 3\nADAM_STEPS = 2\nTOP_K = 8\nSEED = 0\n" + common())
    lama = str(require(fixtures_dir() / "lama" / "ffc_generator_small.pth"))
    return (f"CHECKPOINT = {lama!r}\nCONFIG = 'configs/big_lama.py:tiny'\nPHOTO = 'img_001.jpg'\nMASK = None\n"
            "PCONV_MASK = '04000.png'\nMAX_SIDE = 128\nN_ITERS = 2\nMIN_SIDE = 64\nCROP = 48\n" + common())


# what each notebook must report after its run (evaluated in the kernel, printed as JSON)
CHECKS = {
    "quickstart": """{
        "samples_fdm": list(samples_fdm.shape), "samples_plain": list(samples_plain.shape),
        "image": list(image.shape), "size": model.image_size,
        "known_kept": bool((samples_fdm[:, ~hole] == image[~hole]).all() and (samples_plain[:, ~hole] == image[~hole]).all()),
        "fdm_changes_hole": float(np.abs(samples_fdm.astype(int) - samples_plain)[:, hole].mean()),
        "titles": [ax.get_title() for ax in fig.axes],
    }""",
    "functional_tour": """{
        "tokens": list(tokens.shape), "counts_total": int(counts.sum()), "grid": [h, w],
        "by_hand": by_hand, "loop_steps": loop_steps, "n_filled": n_filled, "n_unknown": int((~np.asarray(is_known)).sum()),
        "fill_step_nan": int(np.isnan(fill_step).sum()), "fill_step_max": float(np.nanmax(fill_step)),
        "diverse": list(diverse.shape), "std_hole": float(std_map[holes[i0]].mean()),
        "std_known": float(std_map[~holes[i0]].max()),
        "z": [list(t.shape) for t in z], "grad": [list(t.shape) for t in grad],
        "grad_finite": bool(all(np.isfinite(np.asarray(t)).all() for t in grad)),
        "grad_abs": float(sum(np.abs(np.asarray(t)).sum() for t in grad)), "losses": losses,
    }""",
    "high_resolution": """{
        "photo": list(photo.shape), "plain": list(plain.shape), "refined": list(refined.shape),
        "known_kept": bool((plain[~hole] == photo[~hole]).all() and (refined[~hole] == photo[~hole]).all()),
        "diff_hole": float(diff), "crop": list(refined[window].shape), "levels": len(pyramid_sizes(H, W, rcfg)[1]),
        "titles": [ax.get_title() for ax in fig.axes],
    }""",
}


def kernel_env() -> dict:
    """The kernel imports fdm_jax from this checkout on CPU, without the test session's fake devices."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("XLA_FLAGS", None)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    return env


def execute(name: str, cwd: Path):
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected one cell tagged 'parameters', found {len(tagged)}"
    tagged[0].source = params(name)
    nb.cells.append(nbformat.v4.new_code_cell(f"import json\nprint({CHECK!r} + json.dumps({CHECKS[name]}))"))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env=kernel_env())  # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    report = [line for o in outputs if o.output_type == "stream" for line in o.text.splitlines()
              if line.startswith(CHECK)]
    assert len(report) == 1, f"{name}: the check cell printed no report"
    figures = sum("image/png" in o.get("data", {}) for o in outputs if o.output_type == "display_data")
    return json.loads(report[0][len(CHECK):]), figures, outputs


@pytest.fixture(scope="module", autouse=True)
def _notebook_deps():
    for mod in ("matplotlib", "ipykernel", "matplotlib_inline"):
        assert importlib.util.find_spec(mod), f"{mod} is missing: pip install -e '.[test]'"


def test_quickstart_runs_from_notebooks_dir():
    r, figures, outputs = execute("quickstart", NB_DIR)
    assert figures == 1
    assert r["size"] == 64 and r["image"] == [64, 64, 3]
    assert r["samples_fdm"] == r["samples_plain"] == [2, 64, 64, 3]
    assert r["known_kept"]
    assert r["fdm_changes_hole"] > 0  # FDM changes the decoded hole (same tokens)
    for title in ("input", "masked input", "sample 1 (FDM)", "sample 2 (FDM)", "sample 1 (no FDM)", "sample 2 (no FDM)"):
        assert title in r["titles"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "backend 'cpu'" in text


def test_functional_tour_runs_from_repo_root():
    r, figures, _ = execute("functional_tour", REPO)
    assert figures == 4
    assert r["tokens"] == [3, 8, 8] and r["counts_total"] == 3 * 64 and r["grid"] == [8, 8]
    assert 0 < r["n_filled"] == r["n_unknown"] == 64 - r["fill_step_nan"]
    assert r["fill_step_max"] == r["n_filled"] - 1
    assert len(r["by_hand"]) == 3 and r["by_hand"] == r["loop_steps"]  # the hand-run steps are the loop's
    assert r["diverse"] == [3, 64, 64, 3]
    assert r["std_hole"] > 0 and r["std_known"] == 0  # samples differ only in the hole
    assert r["z"] == r["grad"] and r["z"][0][:3] == [1, 8, 8]
    assert r["grad_finite"] and r["grad_abs"] > 0
    assert len(r["losses"]) == 3 and r["losses"][-1] < r["losses"][0]


def test_high_resolution_runs():
    r, figures, _ = execute("high_resolution", NB_DIR)
    assert figures == 1
    assert r["photo"] == r["plain"] == r["refined"] and max(r["photo"][:2]) == 128
    assert r["known_kept"]
    assert r["levels"] == 2 and r["diff_hole"] > 0  # refinement ran on 2 levels and changed the hole
    assert r["crop"] == [48, 48, 3]
    for title in ("input", "masked input", "Big-LaMa", "Big-LaMa + refinement", "Big-LaMa + refinement (zoom)"):
        assert title in r["titles"]


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_stripped_and_generated(name):
    path = NB_DIR / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path}: outputs not stripped"
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    assert "REPO_URL = " in nb.cells[1].source and "import fdm_jax" in nb.cells[1].source
    spec = importlib.util.spec_from_file_location("make_notebooks", NB_DIR / "make_notebooks.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert path.read_text() == gen.render(name), f"{path} differs from notebooks/make_notebooks.py's output"
