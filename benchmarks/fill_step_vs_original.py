"""One PUT + FDM fill step side by side with the original (hyudsl/FDM, whose image_synthesis code derives
from liuqk3/PUT), same weights, same state, one process, calls alternated, one thread each (--threads).

    git clone https://github.com/hyudsl/FDM /path/FDM      # never vendored here
    python benchmarks/fill_step_vs_original.py --original /path/FDM                 # Paris, batch 1 and 4
    python benchmarks/fill_step_vs_original.py --original /path/FDM --tiny          # CI size, seconds

A fill step is one iteration of the original's fill loop (image_synthesis/modeling/model/
inpainting_model.py `content_generate`): `get_sample_token` (emb_proj + pos_emb, the 35 blocks, the
final LayerNorm and to_logits over all 1024 positions, max over classes, topk over unfilled positions,
top-50 filter, softmax, multinomial) and the write of the drawn token's codebook feature
(`get_codebook_entry_with_token`). The original side calls `InpaintingModel.content_generate` itself on
a state with exactly one unfilled patch per image, so its while loop runs exactly one iteration; ours
is `fdm_jax.put_fdm.sampling.fill_step` on the same state (the same features, the same known mask),
jitted once ahead of time with the weights and the state as arguments.

Weights: the original MaskedImageInpaintingTransformer is built with the Paris transformer arguments
(configs/paris/inpainting/model.yaml: 35 layers, width 512, 8 heads, GELU2, 512 tokens, dropout 0) and
its own random init (torch seed 0); its state_dict goes through this project's converter
(fdm_jax.convert.put_fdm.convert_sampler). The codebook (VectorQuantizer n_e 1024, e_dim 256) is the
original quantizer's random embedding, copied into our codec variables (the rest of the codec is not
used by a fill step). The sampling settings are the paper's: num_token_per_iter 1, top-50.

The original runs under torch.no_grad() (`original_no_grad`, the ratio's reference: the cheapest way to
run it) and, with --as-shipped, also as inference.py runs it: autograd on, the transformer's
parameters requiring grad (its config does not freeze it), `original_as_shipped`.

Ratio = original median / ours median (> 1: ours is faster). Every call is recorded (`samples_s`), with
its process CPU time (`cpu_samples_s`; one thread per side, so CPU seconds are the work done, less
sensitive than wall seconds to other processes on a shared machine: `ratio_original_over_ours_cpu_s`).
Writes benchmarks/results/fill_step_vs_original_<config>_<threads>t.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--original", required=True, help="a checkout of hyudsl/FDM (the folder holding image_synthesis/)")
    ap.add_argument("--tiny", action="store_true", help="configs/paris.py:tiny (2 layers, 64 tokens): CI size")
    ap.add_argument("--batch-sizes", default="1,4")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per side and batch size")
    ap.add_argument("--threads", type=int, default=1, help="threads per side (torch and XLA)")
    ap.add_argument("--as-shipped", action="store_true", help="also time the original with autograd on")
    ap.add_argument("--attention", default=None, help="our model.sampler.attention (einsum | dot_product)")
    ap.add_argument("--xla-flags", default="", help="extra XLA_FLAGS for our side")
    ap.add_argument("--out", default=None)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    # Thread counts must be fixed before either library starts its pools.
    from machine import cpu_model, pin_xla_threads  # benchmarks/machine.py

    pin_xla_threads(args.threads, args.xla_flags)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(args.original).resolve()))
    from image_synthesis.modeling.codecs.image_codec.vector_quantizer import VectorQuantizer
    from image_synthesis.modeling.model.inpainting_model import InpaintingModel
    from image_synthesis.modeling.vector_predictor.transformer import MaskedImageInpaintingTransformer

    sys.path.insert(0, str(REPO))
    import jax
    import jax.numpy as jnp

    from fdm_jax.cli.config_loading import load_config
    from fdm_jax.convert.put_fdm import convert_sampler
    from fdm_jax.nn.params import abstract_variables
    from fdm_jax.put_fdm.codec import PatchVQVAE
    from fdm_jax.put_fdm.feature_sampler import FeatureSampler
    from fdm_jax.put_fdm.sampling import fill_step, init_state

    config_name = "configs/paris.py" + (":tiny" if args.tiny else "")
    cfg = load_config(str(REPO / config_name))
    sc, cc = cfg.model.sampler, cfg.model.codec
    if args.attention:
        sc.attention = args.attention
    top_k = min(50, sc.num_tokens)  # configs/paris/inpainting/task_config.yaml: filter_ratio 50

    torch.manual_seed(0)
    # configs/paris/inpainting/model.yaml generator_config (dropout 0: the model is in eval mode anyway).
    tg = MaskedImageInpaintingTransformer(
        n_layer=sc.num_layers, content_seq_len=sc.seq_len, n_embd=sc.width, n_head=sc.num_heads, embd_pdrop=0.0,
        attn_pdrop=0.0, resid_pdrop=0.0, attn_content_with_mask=False, mlp_hidden_times=sc.mlp_ratio,
        block_activate="GELU2", random_quantize=0.3, weight_decay=0.01, num_token=sc.num_tokens,
        embed_dim=sc.feature_dim).eval()
    with torch.no_grad():
        tg.pos_emb.normal_(0.0, 0.02)  # its init is zeros; random values keep the positions distinct
    quant = VectorQuantizer(n_e=cc.num_embed, e_dim=cc.embed_dim, masked_embed_start=cc.masked_embed_start,
                            embed_ema=True, get_embed_type="retrive", distance_type="euclidean").eval()
    # InpaintingModel.content_generate reads self.generator and self.content_codec only.
    codec_shim = types.SimpleNamespace(get_codebook_entry_with_token=lambda token, **kw: {
        "feature": quant.get_codebook_entry(token.view(-1), shape=token.shape)})
    orig_model = types.SimpleNamespace(generator=tg, content_codec=codec_shim)
    generate_config = types.SimpleNamespace(filter_ratio=top_k, num_token_per_iter=1)

    sampler = FeatureSampler(**sc)
    sampler_vars = convert_sampler({k: v.detach().numpy() for k, v in tg.state_dict().items()}, sampler)
    codec = PatchVQVAE(**{k: v for k, v in cc.items() if k in PatchVQVAE.__dataclass_fields__})
    s = 8 * codec.patch_size
    abstract = abstract_variables(codec, jnp.zeros((1, s, s, 3)), jnp.ones((1, s, s, 1)))
    codebook = np.asarray(quant.embed_weight.detach().numpy(), np.float32)

    def codec_leaf(path, leaf):
        name = "/".join(str(getattr(k, "key", k)) for k in path)
        if name.endswith("embedding") and leaf.shape == codebook.shape:
            return jnp.asarray(codebook)
        return jnp.zeros(leaf.shape, leaf.dtype)
    codec_vars = jax.tree_util.tree_map_with_path(codec_leaf, abstract)
    assert any(np.array_equal(np.asarray(x), codebook) for x in jax.tree_util.tree_leaves(codec_vars)), "codebook"

    grid = int(round(sc.seq_len ** 0.5))
    step = jax.jit(lambda cv, sv, st: fill_step(codec, cv, sampler, sv, st, top_k=top_k, num_token_per_iter=1))
    results, first_call = [], {}
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        rng = np.random.default_rng(batch)
        feature = rng.standard_normal((batch, grid, grid, sc.feature_dim)).astype(np.float32)
        token = rng.integers(0, cc.masked_embed_start, (batch, grid, grid)).astype(np.int64)
        token_type = np.ones((batch, grid, grid), np.int64)   # 1 = known
        holes = rng.integers(0, sc.seq_len, batch)            # one unfilled patch per image
        token_type.reshape(batch, -1)[np.arange(batch), holes] = 0

        g = {"feature": jnp.asarray(feature), "token": jnp.asarray(token, jnp.int32),
             "token_type": jnp.asarray(token_type, jnp.int32)}
        state, _ = init_state(codec, codec_vars, None, None, jax.random.key(0), features=g)
        t0 = time.perf_counter()
        exe = step.lower(codec_vars, sampler_vars, state).compile()
        compile_s = time.perf_counter() - t0

        def ours():
            return jax.block_until_ready(exe(codec_vars, sampler_vars, state))

        f_t = torch.from_numpy(np.ascontiguousarray(feature.transpose(0, 3, 1, 2)))  # B x C x h x w
        tt_t = torch.from_numpy(token_type)

        def original(grad=False):
            tok = torch.from_numpy(token.copy())
            with (contextlib.nullcontext() if grad else torch.no_grad()):
                out = InpaintingModel.content_generate(orig_model, f_t, tok, tt_t, generate_config)
            return out

        # The same pick on both sides (greedy would also agree on the token; top-50 draws differ by RNG).
        o_state = ours()
        torch.manual_seed(0)
        o_orig = original()
        same_position = bool(np.array_equal(np.asarray(o_state.fill_positions[:, 0]), holes))
        feat_orig = o_orig["generated_feature"].permute(0, 2, 3, 1).reshape(batch, sc.seq_len, -1).numpy()
        known_unchanged = float(np.max(np.abs(np.delete(feat_orig.reshape(batch * sc.seq_len, -1),
                                                         holes + np.arange(batch) * sc.seq_len, 0)
                                              - np.delete(np.asarray(o_state.sequence).reshape(batch * sc.seq_len, -1),
                                                          holes + np.arange(batch) * sc.seq_len, 0))))

        sides = {"ours": ours, "original_no_grad": original}
        if args.as_shipped:
            sides["original_as_shipped"] = lambda: original(grad=True)
        for name, fn in sides.items():  # one untimed call each (first_call: ours after compiling)
            t0 = time.perf_counter()
            fn()
            first_call[f"b{batch}/{name}"] = time.perf_counter() - t0
        samples = {name: [] for name in sides}
        cpu = {name: [] for name in sides}
        for _ in range(args.repeats):
            for name, fn in sides.items():
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        med = {name: statistics.median(v) for name, v in samples.items()}
        row = {
            "batch_size": batch, "median_s": med, "samples_s": samples,
            "cpu_samples_s": cpu, "median_cpu_s": {n: statistics.median(v) for n, v in cpu.items()},
            "cpu_s_per_wall_s": {n: sum(cpu[n]) / sum(samples[n]) for n in sides},
            "ratio_original_over_ours_cpu_s": (statistics.median(cpu["original_no_grad"])
                                               / statistics.median(cpu["ours"])),
            "ratio_original_over_ours": med["original_no_grad"] / med["ours"],
            "compile_s": compile_s, "load_average_after": os.getloadavg(),
            "check_same_position_filled": same_position, "check_known_features_max_abs_diff": known_unchanged,
        }
        if args.as_shipped:
            row["ratio_original_as_shipped_over_ours"] = med["original_as_shipped"] / med["ours"]
        results.append(row)
        print(json.dumps({k: row[k] for k in ("batch_size", "median_s", "ratio_original_over_ours")}), flush=True)

    stem = "paris_tiny" if args.tiny else "paris"
    result = {
        "what": "one fill step (transformer pass + pick + feature write), num_token_per_iter 1, top-50, "
                "random weights converted from the original",
        "config": config_name, "attention": sc.attention, "threads_per_side": args.threads,
        "xla_flags": os.environ["XLA_FLAGS"], "repeats": args.repeats, "results": results,
        "first_call_s": first_call, "torch": torch.__version__, "jax": jax.__version__,
        "original": str(args.original),
        "command": "python benchmarks/fill_step_vs_original.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    result["cpu_model"] = cpu_model()
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"fill_step_vs_original_{stem}_{args.threads}t.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
