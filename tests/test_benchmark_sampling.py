"""benchmarks/sampling.py at CI size: the tiny config on real images, batch sizes 1 and 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared_paths import require, shared_dir

REPO = Path(__file__).resolve().parents[1]
DATA = shared_dir() / "data" / "images" / "places2_256_freeform"

PER_BATCH_KEYS = {
    "batch_size", "fdm_s", "sampler_pass_s", "encode_s", "decode_s", "e2e_s", "e2e_s_per_image",
    "images_per_s", "num_iterations", "masked_patches_per_image", "masked_patches_total",
    "masked_patches_max", "seconds_per_fill_step", "seconds_per_fill_step_net",
    "estimated_fill_steps_mask_50_60pct", "estimated_e2e_s_per_image_mask_50_60pct",
    "estimated_images_per_s_mask_50_60pct", "estimated_e2e_s_per_image_mask_20_30pct",
    "estimated_e2e_s_per_image_unlimited_masks", "timings",
}


def test_tiny_benchmark_writes_json(tmp_path):
    require(DATA / "images")
    require(DATA / "masks")
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # no fake 8-device CPU here
    env["JAX_PLATFORMS"] = "cpu"
    cmd = [sys.executable, str(REPO / "benchmarks" / "sampling.py"), "--config", "configs/paris.py:tiny",
           "--batch-sizes", "1,2", "--max-masked-patches", "12", "--data", str(DATA), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ESTIMATES" in proc.stdout and "e2e s/img" in proc.stdout

    report = json.loads(out.read_text())
    for key in ("device", "config", "image_size", "results", "paper_reference", "estimate_note",
                "max_masked_patches", "num_params"):
        assert key in report, key
    dev = report["device"]
    for key in ("device_name", "device_kind", "platform", "device_count", "cpu_count", "jax_version",
                "flax_version"):
        assert key in dev, key
    assert dev["platform"] == "cpu" and dev["device_count"] == 1
    assert report["image_size"] == 64 and report["max_masked_patches"] == 12
    ref = report["paper_reference"]
    assert ref["put_fdm_s_per_image"] == 25.24 and ref["fdm_s"] == 0.004 and "2080 Ti" in ref["device"]

    results = report["results"]
    assert [r["batch_size"] for r in results] == [1, 2]
    for r in results:
        missing = PER_BATCH_KEYS - r.keys()
        assert not missing, missing
        for key in ("fdm_s", "sampler_pass_s", "encode_s", "decode_s", "e2e_s", "e2e_s_per_image",
                    "images_per_s", "seconds_per_fill_step", "estimated_e2e_s_per_image_mask_50_60pct"):
            assert r[key] > 0, (key, r[key])
        assert r["timings"]["fdm"]["timed_calls"] >= 5
        assert len(r["masked_patches_per_image"]) == r["batch_size"]
        assert max(r["masked_patches_per_image"]) <= 12
        assert r["num_iterations"] == r["masked_patches_max"] >= 1
        assert r["e2e_s_per_image"] * r["images_per_s"] == pytest.approx(1.0)
        # the estimates are for the paper's 8x8 grid fraction of this 8x8 grid: 0.55 * 64 = 35 steps
        assert r["estimated_fill_steps_mask_50_60pct"] == 35
