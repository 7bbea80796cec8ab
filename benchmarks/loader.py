"""Images per second of the training data pipeline alone (fdm_jax.data.pipeline.TrainIterator, the
grain pipeline train.py uses), with 0, 1 and 2 grain worker processes.

    python benchmarks/loader.py [--workers 0,1,2] [--threads 1] [--batches 12] [--out FILE.json]

Setting: configs/paris.py (256x256; resize the short side to 256, random crop, flip), the masks of
its `--phase` (default sampler: stroke masks plus the provided NVIDIA masks of
../shared/data/masks/pconv_test), batch 8, on the 903 JPEGs of ../shared/data/images/imagenet_sample
(decoded with PIL each time, as in training). Per worker count: the time to the first batch
(`startup_s`, includes spawning the worker processes) and, after --warmup batches, images/s over
--batches batches. Workers are spawned processes; each runs --threads grain threads. Default output:
benchmarks/results/loader_imagenet_256_cpu.json, with the machine's CPU count and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import cpu_model  # noqa: E402  (benchmarks/machine.py)

from fdm_jax.cli.config_loading import load_config  # noqa: E402
from fdm_jax.data.masks import ProvidedMasks  # noqa: E402
from fdm_jax.data.pipeline import TrainIterator  # noqa: E402
from fdm_jax.data.sources import FolderImageSource  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def measure(config, phase: str, images: Path, masks: Path, *, workers: int, threads: int, batch: int,
            warmup: int, batches: int) -> dict:
    source = FolderImageSource(images, config.data.image_end_with[phase])
    provided = ProvidedMasks.from_config(masks, config.masks[phase]) if masks.is_dir() else None
    t0 = time.perf_counter()
    with TrainIterator(source, config.masks[phase], config.data.train_preprocess, size=config.image_size, seed=0,
                       global_batch=batch, provided=provided, num_workers=workers, num_threads=threads,
                       process_index=0, process_count=1) as it:
        next(it)
        startup = time.perf_counter() - t0
        for _ in range(warmup):
            next(it)
        t1 = time.perf_counter()
        for _ in range(batches):
            b = next(it)
        elapsed = time.perf_counter() - t1
    assert b["image"].shape == (batch, config.image_size, config.image_size, 3)
    return {"workers": workers, "threads_per_process": threads, "batch": batch, "startup_s": round(startup, 3),
            "timed_batches": batches, "timed_s": round(elapsed, 3), "images_per_s": round(batches * batch / elapsed, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs" / "paris.py"))
    ap.add_argument("--phase", default="sampler")
    ap.add_argument("--images", default=str(DATA / "images" / "imagenet_sample"))
    ap.add_argument("--masks", default=str(DATA / "masks" / "pconv_test"))
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--threads", type=int, default=1, help="grain threads in each process")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "loader_imagenet_256_cpu.json"))
    args = ap.parse_args(argv)
    config = load_config(args.config)
    images, masks = Path(args.images), Path(args.masks)
    if not images.is_dir():
        raise SystemExit(f"--images {images}: not a folder")
    result = {"command": "python benchmarks/loader.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "config": args.config, "phase": args.phase, "image_size": int(config.image_size),
              "images": str(images), "masks": str(masks) if masks.is_dir() else None,
              "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                          "load_average_before": os.getloadavg()}, "cases": []}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for w in (int(x) for x in args.workers.split(",")):
        case = measure(config, args.phase, images, masks, workers=w, threads=args.threads, batch=args.batch,
                       warmup=args.warmup, batches=args.batches)
        print(json.dumps(case), flush=True)
        result["cases"].append(case)
        result["machine"]["load_average_after"] = os.getloadavg()
        out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
