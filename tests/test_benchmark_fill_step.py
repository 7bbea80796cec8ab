"""benchmarks/matmul_xla_vs_torch.py at CI size (--tiny).

benchmarks/fill_step_vs_original.py needs a checkout of the original (hyudsl/FDM), which is never
vendored and which CI does not have, so it has no test here: it is run by hand (`--tiny` for a quick
check) and its result files are committed in benchmarks/results/."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # no fake 8-device CPU here
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_matmul_micro_benchmark_tiny(tmp_path):
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
