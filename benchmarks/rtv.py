"""CPU cost of the RTV structure image (fdm_jax.tsgl.rtv.tsmooth, StructureFlow's tsmooth(img, 0.015, 3,
0.001, 3)), TSGL-MEDFE's texture input, on a real photograph at 256x256 and 512x512, both solver branches.

    python benchmarks/rtv.py [--sizes 256,512] [--solvers pcg,exact] [--repeats 3] [--out FILE.json]

Each case runs once untimed, then --repeats times; the median and every time are in the JSON, with the
pcg iteration counts (they set the pcg branch's cost) and the machine. Default output:
benchmarks/results/rtv_cpu.json. The paper-side reference is the fixture's Octave timing
(shared/fixtures/tsgl/rtv_tsmooth.npz meta.timing_s / README: 5-9 s exact, 3-4 s pcg at 256x256).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import cpu_model  # noqa: E402  (benchmarks/machine.py)

from fdm_jax.tsgl import rtv  # noqa: E402

IMAGE = ROOT.parent / "shared" / "data" / "images" / "sun_hays80" / "img_016.jpg"  # 1024x768 photograph


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--solvers", default="pcg,exact")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--image", default=str(IMAGE), help="a photograph at least as large as the largest size")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rtv_cpu.json"))
    args = ap.parse_args(argv)
    full = np.asarray(Image.open(args.image).convert("RGB"))
    cases = []
    load_before = os.getloadavg()
    for size in (int(s) for s in args.sizes.split(",")):
        if min(full.shape[:2]) < size:
            raise SystemExit(f"--image {args.image} is {full.shape[1]}x{full.shape[0]}, smaller than {size}")
        top, left = (full.shape[0] - size) // 2, (full.shape[1] - size) // 2
        img = full[top:top + size, left:left + size]
        for solver in args.solvers.split(","):
            _, info = rtv.tsmooth(img, solver=solver, record=True)  # untimed
            times = []
            for _ in range(max(1, args.repeats)):
                t0 = time.perf_counter()
                rtv.tsmooth(img, solver=solver)
                times.append(time.perf_counter() - t0)
            case = {"size": size, "solver": solver, "median_s": statistics.median(times), "times_s": times}
            if solver == "pcg":
                case["pcg_iterations"] = info["pcg_iterations"].tolist()
            cases.append(case)
            print(f"{size}x{size} {solver:5s} median {case['median_s']:.2f} s  {['%.2f' % t for t in times]}")
    result = {"benchmark": "rtv tsmooth(img, 0.015, 3, 0.001, 3)", "image": os.path.relpath(args.image, ROOT),
              "crop": "centre", "command": "python benchmarks/rtv.py " + " ".join(argv or sys.argv[1:]),
              "cases": cases,
              "machine": {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
                          "python_version": platform.python_version(), "numpy_version": np.__version__,
                          "load_average_1_5_15_min_before_after": [load_before, os.getloadavg()],
                          "note": "2-core CPU shared with other jobs (see the load averages); wall-clock times"},
              "reference": "Octave 7.3 on the fixture generator's machine, 256x256: exact 5-9 s, pcg 3-4 s "
                           "(shared/fixtures/README.md, tsgl/rtv_tsmooth.npz)"}
    import scipy

    result["machine"]["scipy_version"] = scipy.__version__
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
