"""Pluralistic inference of PUT + FDM as pure functions (hyudsl/FDM:
image_synthesis/modeling/model/inpainting_model.py `sample` / `content_generate`,
vector_predictor/transformer.py `get_sample_token`, utils/misc.py `logits_top_k`).

The original fills masked patches `num_token_per_iter` (k) per pass of the full transformer; with the
paper's k = 1:

    F   <- unquantized features of the masked image; S <- F as a row-major sequence (B, L, C)
    known <- token_type == 1
    while some position is unknown:
        logits <- sampler(S)                      # full pass, no cache, no pixel re-encoding
        conf   <- max over classes; conf[known] <- -inf
        p      <- argmax over positions of conf   # the most confident unfilled patch
        z      <- logits[p]; keep the top_k largest, the rest -inf
        t      ~ softmax(z / temperature)         # the original hard-codes temperature 1
        S[p]   <- E[t]; known[p] <- True; token[p] <- t

With k > 1 (hyudsl/FDM: vector_predictor/transformer.py `get_sample_token`, model/inpainting_model.py
`content_generate`) one pass picks the k most confident positions (torch.topk over conf, descending),
samples one token at each from the same logits, and writes them in topk order, skipping picks that
are already known: once fewer than k unfilled positions remain, topk returns -inf (known) positions
too, so the last pass fills only the remainder. With k = -1 or k >= L every position is sampled in
one pass with a hard-coded top-50, and the whole sequence is re-embedded from its tokens (so known
patches then hold their quantized codes).

Beyond the original, `schedule="parallel"` (MaskGIT, Chang et al. CVPR 2022, Sec. 3.2 and its
cosine mask schedule, Eq. 2-3): every pass samples a token at EVERY unfilled position and keeps the
most confident ones (confidence = probability of the drawn token under the unfiltered softmax); after
pass t of T (`num_passes`) an image with n holes has n - floor(n cos(pi/2 (t+1)/T)) of them filled,
so every image of a batch finishes in exactly T passes, whatever its hole count. Position l of
pass t draws with fold_in(image_key, t * L + l).

Here the loop is one `jax.lax.while_loop` over the whole batch (state: `SamplingState`). An image
whose positions are all known simply stops changing (every update is gated by `jnp.where`), which is
what the original's dropping finished images out of the batch amounts to: the transformer has no
interaction across the batch.

Random keys. `key` is either ONE key for the batch, from which image i gets `fold_in(key, i)`, or an
array of B keys (one per image, used as given). In pass t the pick of topk rank j draws with
`fold_in(image_key, t * k + j)` (with k = 1: the n-th filled patch uses `fold_in(image_key, n)`).
Image i's samples therefore depend only on its own key, never on the batch it runs in: running
image i alone with `image_keys(key, B)[i:i+1]` reproduces the batched result.

Conventions: images (B, H, W, 3) float in [0, 255], NHWC; masks (B, H, W, 1) with 1 = known pixel.
Feature grids are (B, h, w, C); sequences are row-major, l = w * row + col.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from fdm_jax.put_fdm.codec import PatchVQVAE
from fdm_jax.put_fdm.feature_dequantizer import apply_fdm
from fdm_jax.put_fdm.patch_masks import UNMASKED, masked_patch_index

SCHEDULES = ("sequential", "parallel")

__all__ = [
    "SCHEDULES", "SamplingState", "composite", "confidence", "fill_step", "image_keys", "init_state", "inpaint",
    "parallel_targets",
    "inpaint_samples", "iteration_table", "jit_inpaint_samples",
    "select_position", "select_positions", "sample_tokens", "top_k_filter",
]

ONE_PASS_TOP_K = 50  # transformer.py get_sample_token: the one-pass branch hard-codes filter_ratio=50


@struct.dataclass
class SamplingState:
    """Carry of the fill loop (all arrays batched over images)."""

    sequence: jax.Array        # (B, L, C) features fed to the sampler: F, then E[t] where filled
    known: jax.Array           # (B, L) bool: known from the start or already filled
    tokens: jax.Array          # (B, L) int32: input tokens, then sampled tokens where filled
    fill_positions: jax.Array  # (B, L) int32: position filled at each step, -1 beyond the image's count
    fill_tokens: jax.Array     # (B, L) int32: token drawn at each step, -1 beyond
    fill_iteration: jax.Array  # (B, L) int32: the pass that filled each fill_positions entry, -1 beyond
    num_done: jax.Array        # (B,) int32: patches filled so far
    step: jax.Array            # () int32: loop iterations so far
    keys: jax.Array            # (B,) typed PRNG keys, one per image


# -- the pieces of one step (also used by the parity runner on the first step) --------------------

def confidence(logits: jax.Array, known: jax.Array) -> jax.Array:
    """get_sample_token's fill priority: the max-over-classes logit per position, -inf where known.
    logits (B, L, K), known (B, L) bool -> (B, L)."""
    return jnp.where(known, -jnp.inf, jnp.max(logits, axis=-1))


def select_position(logits: jax.Array, known: jax.Array) -> jax.Array:
    """get_sample_token's position rule: argmax over unknown positions of `confidence`.
    logits (B, L, K), known (B, L) bool -> (B,) int32 (0 when nothing is unknown)."""
    return jnp.argmax(confidence(logits, known), axis=-1).astype(jnp.int32)


def select_positions(logits: jax.Array, known: jax.Array, k: int) -> jax.Array:
    """get_sample_token with num_token_per_iter = k: torch.topk(conf, k) over positions, descending,
    conf = max-over-classes logit with known positions at -inf. -> (B, k) int32 (static k)."""
    return jax.lax.top_k(confidence(logits, known), k)[1].astype(jnp.int32)


def top_k_filter(logits: jax.Array, k: int) -> jax.Array:
    """misc.logits_top_k(filter_type='count'): the k largest logits along the last axis kept (by index,
    as torch.topk + scatter, so ties never keep more than k), the rest -inf."""
    k = max(min(int(k), logits.shape[-1]), 1)
    vals, idx = jax.lax.top_k(logits, k)
    out = jnp.full_like(logits, -jnp.inf)
    return jnp.put_along_axis(out, idx, vals, axis=-1, inplace=False)


def image_keys(key: jax.Array, batch: int) -> jax.Array:
    """Per-image keys (B,) from one key (`fold_in(key, i)`) or from B keys (returned as given).
    Accepts typed keys (`jax.random.key`) and raw uint32 keys (`jax.random.PRNGKey`)."""
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    if key.ndim == 0:
        return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(batch))
    if key.shape != (batch,):
        raise ValueError(f"key: one key or {batch} per-image keys expected, got shape {key.shape}")
    return key


# -- sampling ------------------------------------------------------------------------------------

def _embed(codec, codec_vars, tokens):
    return codec.apply(codec_vars, tokens, method=PatchVQVAE.embed)


def _check_num_token_per_iter(k):
    if isinstance(k, int) and (k == 0 or k < -1):
        raise ValueError(f"num_token_per_iter must be >= 1 or -1 (all in one pass), got {k}")


def _pass_size(num_token_per_iter, n: int):
    """(k, one_pass) as traced values: k tokens per pass; -1 or k >= L is the original's one-pass branch."""
    k_req = jnp.asarray(num_token_per_iter, jnp.int32)
    one_pass = (k_req == -1) | (k_req >= n)
    return jnp.where(one_pass, n, jnp.maximum(k_req, 1)), one_pass


def init_state(codec: PatchVQVAE, codec_vars, image, mask, key, features=None) -> tuple[SamplingState, dict]:
    """The sampling state before the first pass, and the codec's features of the masked image
    (`get_features`: feature, token, token_type). image (B, H, W, 3) in [0, 255]; mask (B, H, W, 1),
    1 = known; key: one key or B keys. `features`: get_features' output when already computed (the
    encoder then does not run again: inpaint_samples encodes once for all samples)."""
    g = features if features is not None else codec.apply(codec_vars, image, mask, method=PatchVQVAE.get_features)
    f, tt = g["feature"], g["token_type"]
    b, h, w, c = f.shape
    n = h * w
    state = SamplingState(
        sequence=f.reshape(b, n, c),
        known=(tt == UNMASKED).reshape(b, n),
        tokens=g["token"].reshape(b, n).astype(jnp.int32),
        fill_positions=jnp.full((b, n), -1, jnp.int32),
        fill_tokens=jnp.full((b, n), -1, jnp.int32),
        fill_iteration=jnp.full((b, n), -1, jnp.int32),
        num_done=jnp.zeros((b,), jnp.int32),
        step=jnp.zeros((), jnp.int32),
        keys=image_keys(key, b),
    )
    return state, g


def parallel_targets(num_holes, step, num_passes):
    """The parallel schedule's patches filled after pass `step` (0-based) of `num_passes`:
    n - floor(n cos(pi/2 (step+1)/T)) (MaskGIT's cosine schedule), all n after the last pass."""
    n = jnp.asarray(num_holes, jnp.int32)
    t = jnp.maximum(jnp.asarray(num_passes, jnp.int32), 1)
    ratio = jnp.cos(jnp.pi / 2 * (step + 1).astype(jnp.float32) / t.astype(jnp.float32))
    left = jnp.floor(n.astype(jnp.float32) * ratio).astype(jnp.int32)
    return jnp.where(step + 1 >= t, n, n - jnp.clip(left, 0, n))


def _parallel_step(codec, codec_vars, sampler, sampler_vars, s: SamplingState, *, top_k, num_passes, temperature):
    """One pass of the parallel schedule (module doc): draw everywhere, keep the most confident."""
    b, n, _ = s.sequence.shape
    rows = jnp.arange(b)[:, None]
    rank = jnp.arange(n, dtype=jnp.int32)
    logits = sampler.apply(sampler_vars, s.sequence)                         # (B, L, K)
    z = top_k_filter(logits, top_k) / temperature
    draw = jax.vmap(lambda kb: jax.vmap(lambda i: jax.random.fold_in(kb, i))(s.step * n + rank))(s.keys)
    t = jax.vmap(jax.vmap(jax.random.categorical))(draw, z).astype(jnp.int32)  # (B, L)
    # Confidence: the drawn token's probability under the unfiltered softmax (as MaskGIT), so greedy
    # top_k = 1 still ranks positions by how sure the sampler is.
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits / temperature, axis=-1), t[..., None], -1)[..., 0]
    conf = jnp.where(s.known, -jnp.inf, logp)
    holes = s.num_done + jnp.sum(~s.known, axis=-1, dtype=jnp.int32)         # the image's initial hole count
    remaining = holes - s.num_done
    count = jnp.minimum(jnp.maximum(parallel_targets(holes, s.step, num_passes) - s.num_done,
                                    (remaining > 0).astype(jnp.int32)), remaining)  # >= 1 while holes remain
    order = jax.lax.top_k(conf, n)[1].astype(jnp.int32)                       # rank -> position, most confident first
    picked_by_rank = rank[None, :] < count[:, None]
    inv = jnp.zeros_like(order).at[rows, order].set(rank)                     # position -> rank
    hit = jnp.take_along_axis(picked_by_rank, inv, 1)                         # (B, L) positions filled now
    slot = jnp.where(picked_by_rank, s.num_done[:, None] + rank[None, :], n)
    put = lambda a, v: a.at[rows, slot].set(v, mode="drop")                   # noqa: E731
    e = _embed(codec, codec_vars, t)
    return s.replace(
        sequence=jnp.where(hit[..., None], e, s.sequence),
        known=s.known | hit,
        tokens=jnp.where(hit, t, s.tokens),
        fill_positions=put(s.fill_positions, order),
        fill_tokens=put(s.fill_tokens, jnp.take_along_axis(t, order, 1)),
        fill_iteration=put(s.fill_iteration, jnp.broadcast_to(s.step, (b, n))),
        num_done=s.num_done + count,
        step=s.step + 1,
    )


def fill_step(codec: PatchVQVAE, codec_vars, sampler, sampler_vars, s: SamplingState, *, top_k: int = 50,
              num_token_per_iter=1, temperature=1.0, schedule: str = "sequential", num_passes=16) -> SamplingState:
    """One pass of the sampler (get_sample_token + the feature update of content_generate): one
    transformer forward over the sequence, then the num_token_per_iter most confident unfilled
    positions each draw a token from the top-K filtered softmax and take its codebook feature.
    schedule="parallel": MaskGIT's pass instead (module doc; num_passes T, traced).
    A pure function of the state: jit it, or `vmap` it over states; `sample_tokens` loops it."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: {schedule!r}; expected one of {SCHEDULES}")
    if schedule == "parallel":
        return _parallel_step(codec, codec_vars, sampler, sampler_vars, s, top_k=top_k, num_passes=num_passes,
                              temperature=temperature)
    b, n, _ = s.sequence.shape
    k, one_pass = _pass_size(num_token_per_iter, n)
    rows = jnp.arange(b)[:, None]
    rank = jnp.arange(n, dtype=jnp.int32)

    def one_per_pass(s, logits, active):
        """k = 1 (the paper's setting): the most confident position only; the same draws as `ranked`
        gives for k = 1, without ranking and sampling every position."""
        p = select_position(logits, s.known)                                 # (B,)
        z = top_k_filter(logits[rows[:, 0], p], top_k)                       # (B, K)
        draw = jax.vmap(jax.random.fold_in)(s.keys, jnp.broadcast_to(s.step, (b,)))
        t = jax.vmap(jax.random.categorical)(draw, z / temperature).astype(jnp.int32)
        hit = active[:, None] & (rank[None, :] == p[:, None])
        slot = jnp.where(active, s.num_done, n)[:, None]
        put = lambda a, v: a.at[rows, slot].set(v[:, None], mode="drop")
        return (hit, jnp.broadcast_to(t[:, None], (b, n)), put(s.fill_positions, p), put(s.fill_tokens, t),
                put(s.fill_iteration, jnp.broadcast_to(s.step, (b,))), active.astype(jnp.int32))

    def ranked(s, logits, active):
        """k > 1: all positions in topk order (rank j = j-th most confident); the first k ranks are the
        picks, each drawing with fold_in(image_key, step * k + j)."""
        order = select_positions(logits, s.known, n)                         # (B, L) rank -> position
        picked = (rank < k) & ~jnp.take_along_axis(s.known, order, 1) & active[:, None]
        by_rank = jnp.take_along_axis(logits, order[..., None], 1)           # (B, L, K) in rank order
        z = jax.lax.cond(one_pass, lambda: top_k_filter(by_rank, ONE_PASS_TOP_K),
                         lambda: top_k_filter(by_rank, top_k))
        draw = jax.vmap(lambda kb: jax.vmap(lambda i: jax.random.fold_in(kb, i))(s.step * k + rank))(s.keys)
        t = jax.vmap(jax.vmap(jax.random.categorical))(draw, z / temperature).astype(jnp.int32)  # (B, L)
        # Back to position order; picks of one pass are distinct positions, so writes never collide.
        inv = jnp.zeros_like(order).at[rows, order].set(rank)                # position -> rank
        # Fill records in topk order; unpicked ranks go to slot L, which the scatter drops.
        slot = jnp.where(picked, s.num_done[:, None] + jnp.cumsum(picked, 1) - 1, n)
        put = lambda a, v: a.at[rows, slot].set(v, mode="drop")
        return (jnp.take_along_axis(picked, inv, 1), jnp.take_along_axis(t, inv, 1),
                put(s.fill_positions, order), put(s.fill_tokens, t),
                put(s.fill_iteration, jnp.broadcast_to(s.step, (b, n))), jnp.sum(picked, 1, dtype=jnp.int32))

    active = jnp.any(~s.known, axis=-1)                                      # (B,)
    logits = sampler.apply(sampler_vars, s.sequence)                         # (B, L, K)
    hit, t_pos, fill_p, fill_t, fill_i, n_picked = jax.lax.cond(
        k == 1, one_per_pass, ranked, s, logits, active)                     # hit, t_pos: (B, L)
    e = _embed(codec, codec_vars, t_pos)                                     # (B, L, C)
    return s.replace(
        sequence=jnp.where(hit[..., None], e, s.sequence),
        known=s.known | hit,
        tokens=jnp.where(hit, t_pos, s.tokens),
        fill_positions=fill_p,
        fill_tokens=fill_t,
        fill_iteration=fill_i,
        num_done=s.num_done + n_picked,
        step=s.step + 1,
    )


def sample_tokens(codec: PatchVQVAE, codec_vars, sampler, sampler_vars, image, mask, key, *,
                  top_k: int = 50, num_token_per_iter=1, temperature: float = 1.0, on_step=None,
                  schedule: str = "sequential", num_passes=16, features=None) -> dict:
    """InpaintingModel.content_generate as one `lax.while_loop` of `fill_step` from `init_state`.

    image (B, H, W, 3) in [0, 255]; mask (B, H, W, 1), 1 = known; key: one key or B keys (module doc).
    top_k = 1 is greedy (deterministic); top_k is static (a shape). num_token_per_iter (k, module doc)
    may be a traced int32 scalar: changing it does not recompile. schedule "parallel" (static) fills in
    exactly num_passes (traced) passes instead (module doc). Returns, per image:
      input_feature (B, h, w, C)  F, unquantized features of the masked image
      input_token (B, h, w)       the quantizer's dual-codebook indices of F
      token_type (B, h, w)        1 known, 0 fully masked, 2 partly masked
      generated_feature (B, h, w, C)  F at known patches, E[t] at filled patches
      tokens (B, L) int32         input_token at known positions, the sampled token at filled ones
      fill_positions, fill_tokens (B, L) int32  in fill order, -1 beyond the image's count
      fill_iteration (B, L) int32 the pass (0-based) that filled each fill_positions entry, -1 beyond
      num_filled (B,) int32       patches filled per image
      num_iterations () int32     loop iterations (= max over images of ceil(num_filled / k); the
                                  original's number of get_sample_token calls)
    on_step: optional host function called with the finished step count after every iteration
    (through `jax.debug.callback`, for progress bars); None compiles no callback.
    """
    _check_num_token_per_iter(num_token_per_iter)
    state, g = init_state(codec, codec_vars, image, mask, key, features)
    f, tt = g["feature"], g["token_type"]
    b, h, w, c = f.shape
    known0 = state.known
    _, one_pass = _pass_size(num_token_per_iter, h * w)
    one_pass = one_pass & (schedule == "sequential")

    def body(s: SamplingState) -> SamplingState:
        s = fill_step(codec, codec_vars, sampler, sampler_vars, s, top_k=top_k,
                      num_token_per_iter=num_token_per_iter, temperature=temperature, schedule=schedule,
                      num_passes=num_passes)
        if on_step is not None:
            jax.debug.callback(on_step, s.step)
        return s

    s = jax.lax.while_loop(lambda s: jnp.any(~s.known), body, state)
    num_filled = jnp.sum(~known0, axis=-1).astype(jnp.int32)
    sequence = s.sequence
    # content_generate's one-pass branch: content_feat <- E[content_token] for the whole sequence.
    sequence = jnp.where(one_pass & (num_filled > 0)[:, None, None], _embed(codec, codec_vars, s.tokens), sequence)
    return {
        "input_feature": f,
        "input_token": g["token"],
        "token_type": tt,
        "generated_feature": sequence.reshape(b, h, w, c),
        "tokens": s.tokens,
        "fill_positions": s.fill_positions,
        "fill_tokens": s.fill_tokens,
        "fill_iteration": s.fill_iteration,
        "num_filled": num_filled,
        "num_iterations": s.step,
    }


def iteration_table(fill_positions, fill_tokens, fill_iteration, num_token_per_iter: int,
                    num_iterations: int) -> dict:
    """Host-side view of the fill records per pass, as the original's topk picks: positions and
    tokens (B, num_iterations, k) in topk order and the count filled per pass (B, num_iterations).
    A pick that landed on an already-known (-inf) position, and every pass after an image finished,
    is -1: such picks always rank after the unfilled ones, so the filled picks are a prefix."""
    fp, ft, fi = (np.asarray(a) for a in (fill_positions, fill_tokens, fill_iteration))
    b = fp.shape[0]
    pos = np.full((b, num_iterations, num_token_per_iter), -1, np.int64)
    tok = np.full_like(pos, -1)
    count = np.zeros((b, num_iterations), np.int64)
    for i in range(b):
        for p, t, it in zip(fp[i], ft[i], fi[i]):
            if it < 0:
                continue
            pos[i, it, count[i, it]] = p
            tok[i, it, count[i, it]] = t
            count[i, it] += 1
    return {"iter_positions": pos, "iter_tokens": tok, "iter_num_filled": count}


# -- FDM and decoding ----------------------------------------------------------------------------

def inpaint(codec: PatchVQVAE, codec_vars, sampler, sampler_vars, fdm, fdm_vars, image, mask, key, *,
            top_k: int = 50, num_token_per_iter=1, temperature: float = 1.0, use_fdm: bool = True,
            on_step=None, schedule: str = "sequential", num_passes=16, features=None) -> dict:
    """InpaintingModel.sample: sample tokens, then FDM, then decode.

    QV = F*(1-m) + G*m; V = QV + m*FDM([QV; m]) (m = masked_patch_idx); Y = decoder(post_quant_conv(V),
    masked image, mask); inpainted_image = clamp((Y+1)*127.5, 0, 255), float, known pixels NOT pasted
    back (as the original; see `composite`). With use_fdm=False (or fdm None) G is decoded directly
    (the FDM repository's pipeline without FDM, which decodes known patches from unquantized F).
    Returns sample_tokens' dict plus masked_patch_idx (B, h, w, 1), pv (with FDM), feature_after_fdm
    (the decoded features V) and inpainted_image (B, H, W, 3).
    """
    out = sample_tokens(codec, codec_vars, sampler, sampler_vars, image, mask, key,
                        top_k=top_k, num_token_per_iter=num_token_per_iter, temperature=temperature,
                        on_step=on_step, schedule=schedule, num_passes=num_passes, features=features)
    f, gen = out["input_feature"], out["generated_feature"]
    m = masked_patch_index(mask, codec.patch_size)
    if use_fdm and fdm is not None:
        v, pv = apply_fdm(lambda q, mm: fdm.apply(fdm_vars, q, mm), gen, f, m)
        out["pv"] = pv
    else:
        v = gen
    out["masked_patch_idx"] = m
    out["feature_after_fdm"] = v
    out["inpainted_image"] = codec.apply(codec_vars, v, image, mask, method=PatchVQVAE.decode_with_feature)
    return out


def _split_keys(key: jax.Array, num: int, batch: int) -> jax.Array:
    """(num, B) per-image keys: sample s of image i uses split(k_i, num)[s], k_i = image_keys(key, B)[i]."""
    return jax.vmap(lambda k: jax.random.split(k, num), out_axes=1)(image_keys(key, batch))


def inpaint_samples(codec: PatchVQVAE, codec_vars, sampler, sampler_vars, fdm, fdm_vars, image, mask,
                    key, num_samples: int, *, top_k: int = 50, num_token_per_iter=1,
                    temperature: float = 1.0, use_fdm: bool = True, on_step=None, schedule: str = "sequential",
                    num_passes=16) -> dict:
    """`num_samples` pluralistic results of every image as one program (vmap over per-sample keys).
    Every output gains a leading sample axis (N, B, ...). Sample s of image i depends only on image i's
    key (see `_split_keys`), so it is batch-independent like `inpaint`. Bad input (shapes, dtypes, NaN or
    out-of-range values, a size the sampler cannot take) is an `InputError` raised before any model runs."""
    from fdm_jax.io.input_checks import InputError, check_image_mask

    if int(num_samples) < 1:
        raise InputError(f"inpaint_samples: num_samples must be at least 1, got {num_samples}")
    image, mask = check_image_mask(image, mask, where="inpaint_samples", patch_size=codec.patch_size,
                                   seq_len=getattr(sampler, "seq_len", None))
    keys = _split_keys(key, num_samples, image.shape[0])
    # The encoder runs once per image: its features do not depend on the sample's key, and a value
    # computed outside the vmap stays unbatched (vmapping it would encode every image N times).
    features = codec.apply(codec_vars, image, mask, method=PatchVQVAE.get_features)
    fn = functools.partial(inpaint, codec, codec_vars, sampler, sampler_vars, fdm, fdm_vars, image, mask,
                           top_k=top_k, num_token_per_iter=num_token_per_iter, temperature=temperature,
                           use_fdm=use_fdm, on_step=on_step, schedule=schedule, num_passes=num_passes,
                           features=features)
    return jax.vmap(fn)(keys)


@functools.partial(jax.jit, static_argnames=("codec", "sampler", "fdm", "num_samples", "top_k", "use_fdm",
                                             "on_step", "schedule"))
def jit_inpaint_samples(codec: PatchVQVAE, codec_vars, sampler, sampler_vars, fdm, fdm_vars, image, mask, key,
                        num_samples: int, *, top_k: int = 50, num_token_per_iter=1, temperature=1.0,
                        use_fdm: bool = True, on_step=None, schedule: str = "sequential", num_passes=16) -> dict:
    """`inpaint_samples` compiled once per model definition, shapes and static settings (num_samples,
    top_k, use_fdm, on_step, schedule): the variables, images, masks, keys, num_token_per_iter,
    num_passes and temperature are arguments, so new images, keys or weights of the same shapes reuse the program, and XLA never
    sees the weights as constants. on_step must be the same function object across calls (a
    module-level function) for the program to be reused."""
    return inpaint_samples(codec, codec_vars, sampler, sampler_vars, fdm if use_fdm else None,
                           fdm_vars if use_fdm else None, image, mask, key, num_samples, top_k=top_k,
                           num_token_per_iter=num_token_per_iter, temperature=temperature, use_fdm=use_fdm,
                           on_step=on_step, schedule=schedule, num_passes=num_passes)


def composite(output: jax.Array, image: jax.Array, mask: jax.Array) -> jax.Array:
    """Paste the known pixels (mask != 0) of `image` over `output` (both (B, H, W, 3) in [0, 255]).
    The original does not do this; use it when known pixels must be exactly the input."""
    return jnp.where(mask != 0, image, output)
