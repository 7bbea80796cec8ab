"""benchmarks/loader.py at CI size: the grain training loader on imagenet_sample at 256², in this
process and with one worker process, one timed batch each."""

import json
import subprocess
import sys
from pathlib import Path

from shared_paths import require, shared_dir

REPO = Path(__file__).resolve().parents[1]
DATA = shared_dir() / "data"


def test_loader_benchmark_writes_images_per_second(tmp_path):
    images = require(DATA / "images" / "imagenet_sample")
    masks = require(DATA / "masks" / "pconv_test")
    out = tmp_path / "loader.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "loader.py"), "--workers", "0,1", "--warmup", "0",
           "--batches", "1", "--batch", "2", "--images", str(images), "--masks", str(masks), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["image_size"] == 256 and report["masks"] == str(masks)
    assert [c["workers"] for c in report["cases"]] == [0, 1]
    for case in report["cases"]:
        assert case["batch"] == 2 and case["timed_batches"] == 1
        assert case["images_per_s"] > 0 and case["startup_s"] > 0
