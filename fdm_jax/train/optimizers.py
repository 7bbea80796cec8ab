"""Optimizers of the original configs as optax transformations (hyudsl/FDM:configs/*/*.yaml
`solver.optimizers_and_schedulers`; AdamW groups of vector_predictor/transformer.py `parameters`).

Only the phase's trainable parameters get an optimizer; every other leaf gets
`optax.set_to_zero()`, so frozen modules keep bit-identical values and carry no optimizer state.
"""

from __future__ import annotations

from typing import Callable

import jax
import optax

from fdm_jax.train.schedules import warmup_cosine


def _path_names(path) -> tuple[str, ...]:
    return tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def trainable_labels(params, trainable: tuple[str, ...]):
    """'train' | 'frozen' per leaf of {'codec': ..., 'fdm': ..., 'sampler': ...}.

    A leaf trains when its model name (`fdm`, `sampler`) or, inside the codec, its submodule name
    (`encoder`, `quant_conv`, `post_quant_conv`, `decoder`) is in `trainable`
    (config.train.<phase>.trainable; `codebook_ema` there is the EMA switch, not a parameter)."""
    known = {"encoder", "quant_conv", "post_quant_conv", "decoder", "fdm", "sampler", "codebook_ema"}
    unknown = sorted(set(trainable) - known)
    if unknown:
        raise ValueError(f"config train.<phase>.trainable: unknown part(s) {unknown}; known: {sorted(known)}")

    def label(path, _):
        names = _path_names(path)
        hit = names[0] in trainable or (names[0] == "codec" and len(names) > 1 and names[1] in trainable)
        return "train" if hit else "frozen"

    return jax.tree_util.tree_map_with_path(label, params)


def _decay_mask(decay_param_names: tuple[str, ...]) -> Callable:
    """Weight decay only on leaves named in decay_param_names (the sampler: Linear `kernel`s; biases,
    LayerNorm and pos_emb get none, modeling/vector_predictor/transformer.py parameters())."""

    def mask(tree):
        return jax.tree_util.tree_map_with_path(lambda p, _: _path_names(p)[-1] in decay_param_names, tree)

    return mask


def base_optimizer(opt_cfg, schedule) -> optax.GradientTransformation:
    """Adam or AdamW with the config's betas/eps/weight decay and an lr schedule."""
    b1, b2 = (float(b) for b in opt_cfg.betas)
    if opt_cfg.optimizer == "adam":
        if opt_cfg.weight_decay:
            raise ValueError("config: optimizer 'adam' with weight_decay != 0 is not an original setting")
        return optax.adam(schedule, b1=b1, b2=b2, eps=float(opt_cfg.eps))
    if opt_cfg.optimizer == "adamw":
        # torch AdamW: p <- p - lr*wd*p - lr*adam(g); optax adds wd*p to the update before scaling by
        # -lr, the same arithmetic on the same (old) p.
        return optax.adamw(schedule, b1=b1, b2=b2, eps=float(opt_cfg.eps),
                           weight_decay=float(opt_cfg.weight_decay),
                           mask=_decay_mask(tuple(opt_cfg.decay_param_names)))
    raise ValueError(f"config: optimizer {opt_cfg.optimizer!r} is not one of 'adam', 'adamw'")


def phase_optimizer(phase_cfg, params, total_steps: int):
    """(optax transformation, labels, schedule) for a phase's generator-side parameters."""
    schedule = warmup_cosine(warmup_lr=float(phase_cfg.warmup_lr), warmup_steps=int(phase_cfg.warmup_steps),
                             total_steps=total_steps, min_lr=float(phase_cfg.min_lr))
    labels = trainable_labels(params, tuple(phase_cfg.trainable))
    if not any(v == "train" for v in jax.tree_util.tree_leaves(labels)):
        raise ValueError(f"config train.<phase>.trainable={tuple(phase_cfg.trainable)} selects no parameter")
    tx = optax.multi_transform({"train": base_optimizer(phase_cfg, schedule), "frozen": optax.set_to_zero()},
                               labels)
    return tx, labels, schedule


def discriminator_optimizer(disc_cfg, total_steps: int):
    """The discriminator's Adam(0, 0.9) with its own warm-up; it only steps from
    disc_cfg.start_iteration on (the train step gates it), so its count starts there."""
    schedule = warmup_cosine(warmup_lr=float(disc_cfg.warmup_lr), warmup_steps=int(disc_cfg.warmup_steps),
                             total_steps=total_steps, min_lr=float(disc_cfg.min_lr))
    return base_optimizer(disc_cfg, schedule), schedule
