"""benchmarks/matmul_xla_vs_torch.py and benchmarks/fill_step_vs_original.py at CI size (--tiny).

The fill-step comparison needs a checkout of the original (hyudsl/FDM), which is never vendored here:
it runs when FDM_ORIGINAL names one and is skipped otherwise."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # no fake 8-device CPU here
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_matmul_micro_benchmark_tiny(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "mm.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "matmul_xla_vs_torch.py"), "--tiny", "--batch-sizes", "1",
           "--xla-variants", "", "--warmup", "1", "--min-repeats", "2", "--min-time-s", "0", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["threads_per_side"] == 1 and report["shapes"]["tokens"] == 64
    assert set(report["sides"]) == {"torch", "xla"}
    for op in ("linear_128x128", "linear_128x384", "linear_128x512", "linear_512x128", "attention", "block"):
        row = report["summary_gflop_per_s"][f"b1/{op}"]
        assert row["torch"] > 0 and row["xla"] > 0, (op, row)
    assert report["summary_gflop_per_s"]["b1/attention"]["xla[dot_product]"] > 0
    assert report["summary_gflop_per_s"]["b1/attention"]["xla[token_major]"] > 0
    assert report["summary_gflop_per_s"]["b1/block"]["xla[dot_product]"] > 0
    assert len(report["sides"]["xla"]["b1/block"]["samples_s"]) >= 2


def test_fill_step_vs_original_tiny(tmp_path):
    original = os.environ.get("FDM_ORIGINAL")
    if not original:
        pytest.skip("FDM_ORIGINAL (a checkout of hyudsl/FDM) is not set")
    pytest.importorskip("torch")
    out = tmp_path / "fs.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "fill_step_vs_original.py"), "--original", original, "--tiny",
           "--batch-sizes", "1,2", "--repeats", "2", "--as-shipped", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["config"] == "configs/paris.py:tiny" and report["threads_per_side"] == 1
    assert [r["batch_size"] for r in report["results"]] == [1, 2]
    for r in report["results"]:
        assert r["check_same_position_filled"] and r["check_known_features_max_abs_diff"] == 0.0
        for side in ("ours", "original_no_grad", "original_as_shipped"):
            assert len(r["samples_s"][side]) == 2 and r["median_s"][side] > 0
        assert r["ratio_original_over_ours"] > 0
