"""Training throughput per phase: images/s of one jitted train step (generator + discriminator).

    python benchmarks/train_step.py --config configs/paris.py             # the paper setting
    python benchmarks/train_step.py --config configs/paris.py:tiny --steps 5

For each phase (codec, sampler, fdm, fdm_tuning) builds the config's model and optimizers, places
one global batch (train.<phase>.batch_size per device x devices, or --batch-size) of random images
and rectangular masks on a data-parallel mesh over every device, compiles the step (compile time
reported), then times --steps steps after one warm-up step. The perceptual/style terms of phases
codec and fdm_tuning run a VGG19 with RANDOM weights (the ImageNet file is the user's; the timing
does not depend on the weights). Writes benchmarks/results/train_step_<config>_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

REPO = Path(__file__).resolve().parents[1]
PHASES = ("codec", "sampler", "fdm", "fdm_tuning")


def random_vgg19():
    from fdm_jax.losses.vgg import LAYERS, PerceptualNet, VGGFeatures

    content, style = LAYERS["vgg19"]
    module = VGGFeatures(taps=tuple(dict.fromkeys(content + style)))
    variables = jax.jit(module.init)(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
    return PerceptualNet(module, content, style, "none"), variables


def bench_phase(config, phase: str, steps: int, batch_size: int | None):
    from fdm_jax.train import data_mesh
    from fdm_jax.put_fdm.phases import make_phase

    c = config.copy_and_resolve_references()
    c.phase = phase
    mesh = data_mesh()
    n = mesh.devices.size
    b = batch_size or int(c.train[phase].batch_size) * n
    uses_vgg = phase in ("codec", "fdm_tuning") and (c.train[phase].loss.g_content > 0 or c.train[phase].loss.g_style > 0)
    ph = make_phase(c, 1000, perceptual_override=random_vgg19() if uses_vgg else None)
    rep, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    state = jax.device_put(ph.init_state(jax.random.PRNGKey(0)), rep)
    s = c.image_size
    rng = np.random.default_rng(0)
    mask = np.ones((b, s, s, 1), np.float32)
    mask[:, s // 4: 3 * s // 4, s // 4: 3 * s // 4] = 0
    batch = jax.device_put({"image": jnp.asarray(rng.uniform(0, 255, (b, s, s, 3)), jnp.float32),
                            "mask": jnp.asarray(mask), "erase_mask": jnp.ones((b, s, s, 1), jnp.float32)}, data)
    step = jax.jit(ph.train_step, in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=(0,))
    t0 = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    state, m = compiled(state, batch)  # warm-up (with the discriminator active: see start steps)
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, m = compiled(state, batch)
    jax.block_until_ready(m)
    dt = (time.perf_counter() - t0) / steps
    return {"global_batch": b, "devices": n, "seconds_per_step": dt, "images_per_s": b / dt,
            "compile_s": compile_s, "vgg": "vgg19 (random weights)" if uses_vgg else "none"}


def main(argv=None):
    from fdm_jax.cli.config_loading import load_config, split_spec

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/paris.py")
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=None, help="global batch (default: config per-device x devices)")
    ap.add_argument("--out", default=None)
    args, rest = ap.parse_known_args(argv)
    config = load_config(args.config, [r[len("--config."):] for r in rest if r.startswith("--config.")])
    # Every loss term active from step 0, so the timed steps are the steady-state ones.
    for p in ("codec", "fdm_tuning"):
        for k in ("disc_start", "content_start", "style_start", "gradient_start"):
            config.train[p].loss[k] = 0
        config.train[p].disc.start_iteration = 0
    device = jax.devices()[0]
    name = re.sub(r"[^A-Za-z0-9]+", "_", f"{Path(split_spec(args.config)[0]).stem}_{split_spec(args.config)[1] or ''}_"
                  f"{device.platform}").strip("_")
    out = Path(args.out or REPO / "benchmarks" / "results" / f"train_step_{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {}
    for phase in args.phases.split(","):
        results[phase] = bench_phase(config, phase, args.steps, args.batch_size)
        print(phase, json.dumps(results[phase]), flush=True)
        payload = {"config": args.config, "device": f"{device.platform}: {device.device_kind}",
                   "device_count": jax.device_count(), "cpu": platform.processor() or platform.machine(),
                   "jax": jax.__version__, "steps": args.steps, "phases": results,
                   "note": "random images and weights; VGG19 with random weights where the config uses it"}
        out.write_text(json.dumps(payload, indent=2) + "\n")  # after every phase: partial runs keep their rows
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
