"""The four training phases of PUT + FDM as pure step functions (FDM paper, Sec. 3.3;
hyudsl/FDM:image_synthesis/modeling/model/inpainting_model.py:InpaintingModel.forward).

    phase = make_phase(config, steps_per_epoch)
    state = phase.init_state(key)                      # or from a previous phase / original .pth
    state, metrics = phase.train_step(state, batch)    # jit it at the boundary (see loop.py)

| phase        | original config       | trains                                  | loss                              |
|--------------|-----------------------|-----------------------------------------|-----------------------------------|
| `codec`      | encoder_decoder.yaml  | encoder, quant_conv, post_quant_conv,   | EdgeConnect L_rec + quantize loss, |
|              |                       | decoder, codebook (EMA), discriminator  | discriminator step                |
| `sampler`    | transformer.yaml      | transformer                             | CE on masked patches              |
| `fdm`        | fdm.yaml              | FDM                                     | L_qe                              |
| `fdm_tuning` | fdm_tuning.yaml       | FDM, post_quant_conv, decoder, disc.    | L_rec + L_qe, discriminator step  |

Batches are dicts of `image` (B, H, W, 3) float [0, 255], `mask` (B, H, W, 1) 1 = known and, for
the codec phase, `erase_mask` (B, H, W, 1). Per iteration the generator-side optimizer steps first,
then the discriminator on the detached reconstruction, as the original Solver does
(hyudsl/FDM:image_synthesis/engine/solver.py:Solver.step).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from fdm_jax.put_fdm import PatchVQVAE, apply_fdm, build_models
from fdm_jax.put_fdm.quantization_error import quantization_error_inputs, quantization_error_loss
from fdm_jax.put_fdm.sampler_loss import masked_token_cross_entropy, sampler_training_inputs
from fdm_jax.train import optimizers
from fdm_jax.put_fdm.image_losses import ImageLosses
from fdm_jax.train.state import TrainState

PHASE_MODELS = {"codec": ("codec",), "sampler": ("codec", "sampler"), "fdm": ("codec", "fdm"),
                "fdm_tuning": ("codec", "fdm")}


def init_variables(models: dict, image_size: int, key) -> dict:
    """Fresh Flax variables {'codec': {'params', 'codebook'}, 'fdm': {...}, 'sampler': {...}} (the
    original's initialisations, see fdm_jax/put_fdm)."""
    keys = dict(zip(("codec", "sampler", "fdm"), jax.random.split(key, 3)))
    s = image_size
    out = {}
    if "codec" in models:
        out["codec"] = models["codec"].init(keys["codec"], jnp.zeros((1, s, s, 3)), jnp.ones((1, s, s, 1)))
    if "sampler" in models:
        m = models["sampler"]
        out["sampler"] = m.init(keys["sampler"], jnp.zeros((1, m.seq_len, m.feature_dim)))
    if "fdm" in models:
        m = models["fdm"]
        out["fdm"] = m.init(keys["fdm"], jnp.zeros((1, 4, 4, m.embed_dim)), jnp.ones((1, 4, 4, 1)))
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class Phase:
    """Static description of one phase: models, optimizers and loss settings (not a pytree)."""

    name: str
    config: Any  # the whole ConfigDict
    models: dict
    tx: optax.GradientTransformation
    labels: Any
    schedule: Callable
    image_losses: ImageLosses | None
    d_tx: optax.GradientTransformation | None
    d_schedule: Callable | None
    total_steps: int

    @property
    def cfg(self):
        return self.config.train[self.name]

    # -- state ------------------------------------------------------------------------------------
    def init_state(self, key, variables: dict | None = None, disc_variables: dict | None = None) -> TrainState:
        """A fresh state; `variables` (e.g. from the previous phase) replaces the fresh ones it has.
        The discriminator (phases codec, fdm_tuning) starts fresh as in the original (a phase-2 .pth has no `loss.*`);
        its init is eager, so jit this only with `disc_variables` given (see abstract_state)."""
        k_init, k_disc, k_run = jax.random.split(key, 3)
        fresh = jax.jit(lambda k: init_variables(self.models, self.config.image_size, k))(k_init)
        if variables:
            for name, v in variables.items():
                if name in fresh:
                    fresh[name] = v
        params = {name: v["params"] for name, v in fresh.items()}
        disc = None
        if self.image_losses is not None and self.image_losses.uses_discriminator:
            dv = disc_variables if disc_variables is not None else self.image_losses.init_discriminator(k_disc)
            disc = {"variables": dv, "opt_state": self.d_tx.init(dv["params"])}
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, codebook=fresh["codec"]["codebook"],
                          opt_state=self.tx.init(params), disc=disc, key=k_run)

    def abstract_state(self, key) -> TrainState:
        """The state's shapes and dtypes (jax.ShapeDtypeStruct leaves), nothing computed."""
        dv = None
        if self.image_losses is not None and self.image_losses.uses_discriminator:
            dv = self.image_losses.abstract_discriminator()
        return jax.eval_shape(lambda k, d: self.init_state(k, None, d), key, dv)

    # -- the step ---------------------------------------------------------------------------------
    def train_step(self, state: TrainState, batch: dict):
        loss_fn = getattr(self, f"_loss_{self.name}")
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, state, batch)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(aux["metrics"], loss=loss, lr=self.schedule(_count(state.opt_state)))  # lr of this update
        codebook = aux.get("codebook", state.codebook)
        disc = state.disc
        if disc is not None:
            # D's spectral vectors as the generator loss left them (its D call runs a power iteration).
            disc = {"variables": {**disc["variables"], "spectral_norm": aux["spectral"]}, "opt_state": disc["opt_state"]}
            disc, d_metrics = self._discriminator_step(disc, state.step, aux["reconstruction"], aux["target"])
            metrics.update(d_metrics)
        new = state.replace(step=state.step + 1, params=params, codebook=codebook, opt_state=opt_state, disc=disc)
        return new, metrics

    def _discriminator_step(self, disc, step, reconstruction, target):
        """forward(name='discriminator'): D on the target and the detached reconstruction. Before
        disc.start_iteration the original Solver skips this optimizer's iteration entirely
        (engine/solver.py: `if op_sc['start_iteration'] > self.last_iter: continue`), so D's
        parameters, spectral vectors and optimizer state (hence its lr count) stay unchanged."""
        ls = self.image_losses
        start = int(self.cfg.disc.start_iteration)

        dv = disc["variables"]

        def d_loss_fn(d_params):
            loss, terms, sn = ls.discriminator_loss({**dv, "params": d_params},
                                                    jax.lax.stop_gradient(reconstruction), target, step)
            return loss, (terms, sn)

        (d_loss, (d_terms, spectral)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(dv["params"])
        d_updates, d_opt = self.d_tx.update(d_grads, disc["opt_state"], dv["params"])
        d_params = optax.apply_updates(dv["params"], d_updates)
        active = step >= start
        metrics = {f"d_{k}": jnp.where(active, v, 0.0) for k, v in d_terms.items() if k != "loss"}
        metrics["d_loss"] = jnp.where(active, d_loss, 0.0)
        metrics["d_lr"] = jnp.where(active, self.d_schedule(_count(disc["opt_state"])), 0.0)  # of this update
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, old)
        new = {"variables": {"params": keep(d_params, dv["params"]),
                             "spectral_norm": keep(spectral, dv["spectral_norm"])},
               "opt_state": keep(d_opt, disc["opt_state"])}
        return new, metrics

    # -- per-phase losses: (params, state, batch) -> (loss, aux) -----------------------------------
    def _apply(self, name, params, state, *args, **kw):
        """models[name].apply with the parameters being differentiated (and the codec's codebook)."""
        return self.models[name].apply(state.replace(params=params).variables(name), *args, **kw)

    def _loss_codec(self, params, state, batch):
        """forward(name='generator'): the image erased by erase_mask is both input and target; its
        erase mask sets the token types (so erased patches use the masked half of the codebook)."""
        image, mask, erase = batch["image"], batch["mask"], batch["erase_mask"]
        erased = image * erase  # image_list_dataset: image * erase_mask (erased pixels 0, then -1)
        (x, y, q), upd = self._apply("codec", params, state, erased, mask, erase, update_ema=True,
                                     method=PatchVQVAE.train_forward, mutable=["codebook"])
        total, terms, spectral = self.image_losses.generator_loss(
            state.disc["variables"], y / 255.0, x / 255.0, mask, state.step, quantize_loss=q["quantize_loss"])
        return total, {"metrics": terms, "codebook": upd["codebook"], "spectral": spectral,
                       "reconstruction": y / 255.0, "target": x / 255.0}

    def _features(self, params, state, image, mask) -> dict:
        """f, q of the full image, the patch mask m and the target (f - q) m, without gradient (the
        codec is frozen in phases 2-3): quantization_error.quantization_error_inputs."""
        return quantization_error_inputs(self.models["codec"], state.replace(params=params).variables("codec"),
                                         image, mask)

    def _fdm(self, params, qi):
        fdm_fn = functools.partial(self.models["fdm"].apply, {"params": params["fdm"]})
        return apply_fdm(fdm_fn, qi["quantized"], qi["feature"], qi["masked_patch_idx"])  # (v, pv)

    def _loss_fdm(self, params, state, batch):
        """forward(name='fdm'): L_qe = mean |pv - (f - q) m| over all B*C*h*w elements (FDM paper, Eq. 1)."""
        qi = self._features(params, state, batch["image"], batch["mask"])
        _, pv = self._fdm(params, qi)
        qe = quantization_error_loss(pv, qi["target"])
        loss = float(self.cfg.loss.qe) * qe
        return loss, {"metrics": {"fdm_loss": qe, "masked_patch_fraction": jnp.mean(qi["masked_patch_idx"])}}

    def _loss_fdm_tuning(self, params, state, batch):
        """forward(name='fdm_decoder_tuning'): decode V = qv + pv with the masked image; L_rec on
        Y/255 vs I/255 plus L_qe (FDM paper, Eq. 3)."""
        image, mask = batch["image"], batch["mask"]
        qi = self._features(params, state, image, mask)
        v, pv = self._fdm(params, qi)
        y = self._apply("codec", params, state, v, image, mask, method=PatchVQVAE.decode_with_feature)
        total, terms, spectral = self.image_losses.generator_loss(
            state.disc["variables"], y / 255.0, image / 255.0, mask, state.step,
            lost_feature=pv, gt_feature=qi["target"])
        return total, {"metrics": terms, "spectral": spectral,
                       "reconstruction": y / 255.0, "target": image / 255.0}

    def _loss_sampler(self, params, state, batch):
        """forward(name='transformer'): CE over masked patches; random_quantize draws from
        fold_in(key, step) (the original's torch.rand)."""
        key = jax.random.fold_in(state.key, state.step)
        codec_vars = state.replace(params=params).variables("codec")
        inputs = sampler_training_inputs(self.models["codec"], codec_vars, batch["image"], batch["mask"],
                                         key=key, random_quantize=float(self.cfg.random_quantize))
        inputs = jax.lax.stop_gradient(inputs)
        logits = self._apply("sampler", params, state, inputs["features"])
        loss, acc = masked_token_cross_entropy(logits, inputs["token_target"], inputs["token_type"])
        return loss, {"metrics": {"token_ce": loss, "accuracy": acc}}

    # -- previews for sample grids ----------------------------------------------------------------
    def preview(self, state: TrainState, batch: dict) -> dict:
        """{'name': (B, H, W, 3) in [0, 255]} for the phase's sample grid (no randomness)."""
        image, mask = batch["image"], batch["mask"]
        masked = image * mask
        codec_vars = state.variables("codec")
        codec = self.models["codec"]
        if self.name == "codec":
            erased = image * batch["erase_mask"]
            _, y, _ = codec.apply(codec_vars, erased, mask, batch["erase_mask"], update_ema=False,
                                  method=PatchVQVAE.train_forward)
            return {"masked input": erased * mask, "reconstruction": y, "target": erased}
        if self.name == "sampler":
            from fdm_jax.put_fdm.sampling import inpaint
            out = inpaint(codec, codec_vars, self.models["sampler"], state.variables("sampler"), None, None,
                          image, mask, jax.random.fold_in(state.key, 0), top_k=1, use_fdm=False)
            return {"masked input": masked, "greedy inpainting": out["inpainted_image"], "target": image}
        qi = self._features(state.params, state, image, mask)
        v, _ = self._fdm(state.params, qi)
        m = qi["masked_patch_idx"]
        qv = qi["feature"] * (1 - m) + qi["quantized"] * m
        with_fdm = codec.apply(codec_vars, v, image, mask, method=PatchVQVAE.decode_with_feature)
        without = codec.apply(codec_vars, qv, image, mask, method=PatchVQVAE.decode_with_feature)
        return {"masked input": masked, "quantized": without, "quantized + FDM": with_fdm, "target": image}


def _count(opt_state) -> jax.Array:
    """The update count of the first ScaleByAdamState in an optax state (the schedule's argument)."""
    for leaf in jax.tree_util.tree_leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState)):
        if isinstance(leaf, optax.ScaleByAdamState):
            return leaf.count
    raise ValueError("no Adam state in the optimizer state")


def _is_tsgl(config) -> bool:
    return str(config.get("model_name", "")).startswith("tsgl")


def example_fn(config):
    """The host-side per-example function the data pipeline applies for this config's phase
    (TrainIterator(example_fn=...)): TSGL's structure inputs, None for PUT + FDM."""
    if _is_tsgl(config):
        from fdm_jax.tsgl.phase import structure_example_fn
        return structure_example_fn(config)
    return None


def make_phase(config, steps_per_epoch: int, *, perceptual_override=None) -> Phase:
    """Builds phase `config.phase` of `config` (configs/paris.py and friends; a TSGL config,
    model_name 'tsgl_*', gets fdm_jax.tsgl.phase.TSGLPhase). `perceptual_override`:
    see ImageLosses.from_config."""
    if _is_tsgl(config):
        from fdm_jax.tsgl.phase import make_tsgl_phase
        return make_tsgl_phase(config, steps_per_epoch)
    name = config.phase
    if name not in PHASE_MODELS:
        raise ValueError(f"config key phase: {name!r} is not one of {tuple(PHASE_MODELS)}")
    cfg = config.train[name]
    all_models = build_models(config.model)
    models = {k: all_models[k] for k in PHASE_MODELS[name]}
    total_steps = int(cfg.num_epochs) * int(steps_per_epoch)  # T_max (engine/solver.py)
    fresh = jax.eval_shape(lambda: init_variables(models, config.image_size, jax.random.key(0)))
    params = {k: v["params"] for k, v in fresh.items()}
    tx, labels, schedule = optimizers.phase_optimizer(cfg, params, total_steps)
    image_losses = d_tx = d_schedule = None
    if name in ("codec", "fdm_tuning"):
        image_losses = ImageLosses.from_config(cfg.loss, cfg.disc, config.get("perceptual"),
                                               perceptual_override=perceptual_override)
        if cfg.disc.enabled:
            d_tx, d_schedule = optimizers.discriminator_optimizer(cfg.disc, total_steps)
    return Phase(name=name, config=config, models=models, tx=tx, labels=labels, schedule=schedule,
                 image_losses=image_losses, d_tx=d_tx, d_schedule=d_schedule, total_steps=total_steps)
