"""Cost of the training run's sample grid (`fdm_jax.train.loop.write_inpainting_samples`, the last
step of `python train.py`): first call (trace + compile + run) and second call (run only), on the demo
model.

    python benchmarks/sample_grid_compile.py [--run runs/demo] [--out FILE.json]

Without --run it first trains configs/demo.py for 2 iterations per phase into a temporary folder, in
a separate `train.py` process (the weights' values do not change the cost; training in this process
would compile the grid before the timed call). The persistent compilation cache is off in this
process, so the first call always compiles.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=None, help="a finished demo run root (default: train a 2-step one)")
    ap.add_argument("--out", default=None, help="write the timings as JSON here")
    args = ap.parse_args()

    import jax

    from fdm_jax.cli.config_loading import load_config
    from fdm_jax.train.loop import write_inpainting_samples

    root = Path(__file__).resolve().parents[1]
    config = load_config(str(root / "configs/demo.py"))
    if args.run is None:
        run = Path(tempfile.mkdtemp(prefix="sample_grid_")) / "run"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(root / "train.py"), "--workdir", str(run), "--no-progress",
                        "--config.run.max_steps=2", "--config.run.sample_every=0"], check=True, cwd=root,
                       env={**os.environ, "FDM_JAX_COMPILATION_CACHE": "none"})
        print(f"trained 2 steps per phase in {time.perf_counter() - t0:.1f} s: {run}", file=sys.stderr)
    else:
        run = Path(args.run)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        write_inpainting_samples(config, run)
        times.append(time.perf_counter() - t0)
    result = {"run": str(run), "first_call_s": round(times[0], 2), "second_call_s": round(times[1], 2),
              "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
