"""Second-process compile time with the persistent compilation cache: a fresh process inpaints with
the same model as a first one and loads its programs from disk instead of compiling them.

    python benchmarks/compile_cache.py --config paris [--out benchmarks/results/compile_cache_paris_cpu.json]

Runs this file's `--child` mode twice, each in a new Python process, against one empty cache folder.
Each child builds the model (random weights of --config; the program that makes them is cached too),
then calls `model.inpaint` twice. compile_s is the sum of JAX's own `backend_compile_duration`
events in that process (XLA compiling; a program loaded from the cache records none); the wall
times of both calls and every JAX duration event are kept too. Sampling uses the parallel schedule with --num-passes passes so the
run itself is short next to the compile. Output: both children's numbers and
second_compile_fraction = compile_s(second) / compile_s(first) (issue target: <= 0.2).
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

REPO = Path(__file__).resolve().parents[1]


def child(config: str, cache: str, num_passes: int) -> dict:
    t0 = time.perf_counter()
    from fdm_jax.cli import compilation_cache

    compilation_cache.setup(cache)
    import jax
    import numpy as np

    events: dict[str, float] = {}

    def on_duration(name, secs, **kw):  # JAX's own timings of tracing, lowering, compiling, cache reads
        events[name] = events.get(name, 0.0) + secs

    jax.monitoring.register_event_duration_secs_listener(on_duration)

    import fdm_jax

    model = fdm_jax.load("random", config=config)
    t_load = time.perf_counter() - t0
    s = model.image_size
    image = np.random.default_rng(0).integers(0, 256, (s, s, 3), dtype=np.uint8)
    mask = np.zeros((s, s), bool)
    mask[s // 4: s // 2, s // 4: s // 2] = True
    times = []
    for i in range(2):
        t = time.perf_counter()
        model.inpaint(image, mask, key=jax.random.key(i), schedule="parallel", num_passes=num_passes)
        times.append(time.perf_counter() - t)
    backend = sum(v for k, v in events.items() if k.endswith("backend_compile_duration"))
    return {"load_s": t_load, "first_call_s": times[0], "second_call_s": times[1],
            "compile_s": backend, "first_minus_second_call_s": times[0] - times[1],
            "jax_duration_events_s": events, "total_s": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="paris")
    ap.add_argument("--num-passes", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.config, args.cache, args.num_passes)))
        return 0
    with tempfile.TemporaryDirectory() as cache:
        runs = []
        for _ in range(2):
            r = subprocess.run([sys.executable, __file__, "--child", "--config", args.config, "--cache", cache,
                                "--num-passes", str(args.num_passes)], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
            if r.returncode != 0:
                raise SystemExit(r.stderr[-3000:])
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        files = sum(1 for _ in Path(cache).rglob("*") if _.is_file())
    import jax

    result = {"benchmark": "second-process compile with the persistent compilation cache", "config": args.config,
              "num_passes": args.num_passes, "backend": jax.default_backend(), "cpu_count": os.cpu_count(),
              "cache_files": files, "first_process": runs[0], "second_process": runs[1],
              "second_compile_fraction": runs[1]["compile_s"] / max(runs[0]["compile_s"], 1e-9),
              "second_total_fraction": runs[1]["total_s"] / runs[0]["total_s"]}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
