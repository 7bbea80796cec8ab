"""Break each core component once (a one-line change) and check that the test named for it fails.

    python tests/mutation_check.py            # every mutation in MUTATIONS
    python tests/mutation_check.py fdm_residual fill_order

For each mutation: the exact line is replaced in the source file, the named tests run in a fresh
pytest process, the file is restored (also on Ctrl-C), and the result is recorded. A mutation whose
tests still pass is a hole in the suite: the script exits 1 and names it. A mutation whose target line
no longer exists is an error too (the table in tests/README.md would be stale). Results are written to
tests/mutation_results.json. Not part of the pytest run: each mutation reruns a slice of the suite.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    what: str  # the component, in words
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = [
    Mutation("codebook_lookup", "nearest-code search of the dual codebook (known-patch half)",
             "fdm_jax/put_fdm/vector_quantizer.py",
             "unmasked = jnp.argmin(d[:, :masked_embed_start], axis=1)",
             "unmasked = jnp.argmax(d[:, :masked_embed_start], axis=1)",
             ("tests/test_parity_put_fdm.py::test_fixture_passes_from_params[codec_small.npz]",)),
    Mutation("fdm_residual", "FDM adds its predicted quantisation error: v = qv + pv",
             "fdm_jax/put_fdm/feature_dequantizer.py",
             "return qv + pv, pv",
             "return qv, pv",
             ("tests/test_parity_put_fdm.py::test_fixture_passes_from_params[fdm_full.npz]",
              "tests/test_sampling.py::test_sampling_fixture_passes[sampling_greedy.npz-params]")),
    Mutation("fill_order", "which masked patch is filled next (most confident first)",
             "fdm_jax/put_fdm/sampling.py",
             "return jnp.where(known, -jnp.inf, jnp.max(logits, axis=-1))",
             "return jnp.where(known, -jnp.inf, jnp.min(logits, axis=-1))",
             ("tests/test_sampling.py::test_sampling_fixture_passes[sampling_greedy.npz-params]",)),
    Mutation("top_k_filter", "top-K filtering of the token logits before the draw",
             "fdm_jax/put_fdm/sampling.py",
             "k = max(min(int(k), logits.shape[-1]), 1)",
             "k = max(min(int(k) + 1, logits.shape[-1]), 1)",
             ("tests/test_sampling_distribution.py",)),
    Mutation("refinement_loss", "the refinement loss: term B ties the scale to the coarser result",
             "fdm_jax/lama/refine.py",
             "return t1 + t2, (t1, t2, n1, n2, pred)",
             "return t1, (t1, t2, n1, n2, pred)",
             ("tests/test_refine.py::test_refine_fixture",)),
    Mutation("spade_normalisation", "SPADE's modulation: norm(x) * (1 + gamma) + beta",
             "fdm_jax/tsgl/spade.py",
             "return normalized * (1 + gamma) + beta",
             "return normalized * gamma + beta",
             ("tests/test_tsgl_spade.py::test_spade_blocks_fixture",)),
    Mutation("spade_local_norm", "SPADE's local (positional) norm uses the unbiased variance",
             "fdm_jax/tsgl/spade.py",
             "var = jnp.var(x, axis=-1, keepdims=True, ddof=1)",
             "var = jnp.var(x, axis=-1, keepdims=True, ddof=0)",
             ("tests/test_tsgl_spade.py::test_spade_blocks_fixture",)),
    Mutation("checkpoint_restore", "training resumes from the restored checkpoint, not from scratch",
             "fdm_jax/train/checkpointing.py",
             'return out["state"], out["config"]',
             'return jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), abstract_state), out["config"]',
             ("tests/test_train_loop.py::test_resume_continues_exactly_and_across_device_counts",)),
]


def run_one(m: Mutation) -> dict:
    path = ROOT / m.file
    original = path.read_text()
    if original.count(m.old) != 1:
        return {"name": m.name, "status": "stale", "detail": f"{m.file}: {m.old!r} found {original.count(m.old)} times"}
    start = time.time()
    try:
        path.write_text(original.replace(m.old, m.new))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
                              cwd=ROOT, capture_output=True, text=True)
    finally:
        path.write_text(original)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    caught = proc.returncode == 1  # 1: tests ran and failed; 2-5 are usage/collection errors
    return {"name": m.name, "status": "caught" if caught else ("MISSED" if proc.returncode == 0 else "error"),
            "returncode": proc.returncode, "tests": list(m.tests), "summary": tail,
            "seconds": round(time.time() - start, 1)}


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not argv or m.name in argv]
    unknown = set(argv) - {m.name for m in MUTATIONS}
    if unknown:
        print(f"unknown mutation(s) {sorted(unknown)}; known: {[m.name for m in MUTATIONS]}")
        return 2
    results = []
    for m in chosen:
        r = run_one(m)
        results.append(r)
        print(f"{m.name:22s} {r['status']:7s} {r.get('seconds', '')!s:>7s}s  {r.get('summary', r.get('detail'))}",
              flush=True)
    out = ROOT / "tests" / "mutation_results.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update({r["name"]: r for r in results})
    out.write_text(json.dumps(previous, indent=1) + "\n")
    return 0 if all(r["status"] == "caught" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
