"""Strict converter for the EdgeConnect discriminator of the original checkpoints
(`loss.discriminator.*` of a phase-1 or phase-3 InpaintingModel state_dict).

PyTorch's spectral_norm stores per conv `convK.0.weight_orig` (O, I, 4, 4), `convK.0.weight_u` (O,)
and `convK.0.weight_v` (I*16,). `features` is an alias of `conv1` (networks.py:
`self.conv1 = self.features = nn.Sequential(...)`), so `features.0.*` repeats conv1's tensors; it
is accepted only when identical. Target: {'params': {convK: {kernel}}, 'spectral_norm': {convK: {u, v}}}
of `fdm_jax.losses.discriminator.Discriminator`.
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp
import numpy as np

from fdm_jax.convert.put_fdm import ConversionError, convert_with
from fdm_jax.losses.adversarial import FAKE_LABEL, REAL_LABEL
from fdm_jax.losses.discriminator import SN_COLLECTION, Discriminator
from fdm_jax.nn.params import abstract_variables

PREFIX = "loss.discriminator."
LABEL_KEYS = {"loss.adversarial_loss.real_label": REAL_LABEL, "loss.adversarial_loss.fake_label": FAKE_LABEL}
_LEAVES = {"kernel": ("weight_orig", "conv"), "u": ("weight_u", "same"), "v": ("weight_v", "same")}


def _key(path):
    _, conv, leaf = path
    name, kind = _LEAVES[leaf]
    return f"{conv}.0.{name}", kind


def discriminator_state_dict(model_state_dict: Mapping[str, np.ndarray], source: str = "state_dict") -> dict:
    """The bare Discriminator state_dict (keys without `loss.discriminator.`) from an InpaintingModel
    state_dict. The nsgan labels, if stored, must be the defaults 1 / 0 the port hard-codes."""
    sd = {k[len(PREFIX):]: v for k, v in model_state_dict.items() if k.startswith(PREFIX)}
    if not sd:
        raise ConversionError(f"{source}: no {PREFIX}* keys (a phase-2 or transformer checkpoint has no "
                              "discriminator; the phase-3 discriminator starts from fresh weights)")
    for key, expected in LABEL_KEYS.items():
        if key in model_state_dict and float(np.asarray(model_state_dict[key])) != expected:
            raise ConversionError(f"{source}: {key} = {float(np.asarray(model_state_dict[key]))}, "
                                  f"expected {expected} (nsgan labels)")
    return sd


def convert_discriminator(state_dict: Mapping[str, np.ndarray], disc: Discriminator,
                          what: str = "discriminator state_dict") -> dict:
    """Bare `Discriminator.state_dict()` -> {'params', 'spectral_norm'} for `disc` (its widths must
    match the checkpoint's). Missing, extra or mis-shaped keys, and a `features.0.*` alias that
    differs from `conv1.0.*`, raise ConversionError naming them."""
    ignored, mismatched = {}, []
    for leaf in ("weight_orig", "weight_u", "weight_v"):
        alias, target = f"features.0.{leaf}", f"conv1.0.{leaf}"
        if alias in state_dict:
            a = np.asarray(state_dict[alias])
            t = state_dict.get(target)
            if t is not None and (a.shape != np.shape(t) or not np.array_equal(a, np.asarray(t))):
                mismatched.append(f"{alias} differs from {target}")
            ignored[alias] = f"alias of {target} (networks.py: self.conv1 = self.features)"
    if mismatched:
        raise ConversionError(f"{what}: " + "; ".join(mismatched) + " (they are one module in the original)")
    abstract = abstract_variables(disc, jnp.zeros((1, 32, 32, 3)))
    out = convert_with(abstract, state_dict, _key, what, ignored=ignored)
    if SN_COLLECTION not in out:
        raise ConversionError(f"{what}: target has no {SN_COLLECTION} collection")
    return out
