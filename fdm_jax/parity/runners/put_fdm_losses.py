"""Parity runner for shared/fixtures/put_fdm/losses.npz: the FDM training losses of the original
(hyudsl/FDM inpainting_model.py forward names 'fdm', 'fdm_decoder_tuning', 'discriminator' with
edge_connect/losses.py:EdgeConnectLoss).

* Phase 2: L_qe from the codec + FDM of `param/*` (or of --weights files).
* Phase 3: Y from FDM + decoder as the 'fdm_decoder_tuning' forward, every EdgeConnect term, the
  discriminator maps and losses, and the spectral-norm u/v after the generator call and after the
  discriminator step. The discriminator always comes from the fixture's `param/loss.discriminator.*`
  (its u/v are the state before the recorded calls; the .pth files hold a different random D).
* The content/style terms are computed from the STORED VGG maps (`out/vgg_*`): the fixture's VGG19
  has random weights that are not stored. The maps themselves are recomputed with the port's VGG19
  when PyTorch is installed: the runner rebuilds torchvision's `vgg19(weights=None)` under
  `torch.manual_seed(vgg_seed)` (same construction order, hence the same random draws), converts it
  with `convert_vgg19` and runs the Flax VGG on the port's Y and I. Without torch the `vgg_*`
  outputs are not produced (reported as such).
"""

from __future__ import annotations

import json
import re

import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.convert.discriminator import convert_discriminator, discriminator_state_dict
from fdm_jax.losses import (Discriminator, EdgeConnectLoss, PerceptualNet, VGGFeatures, content_loss,
                            convert_vgg19, discriminator_apply, style_loss)
from fdm_jax.put_fdm.quantization_error import quantization_error_inputs
from fdm_jax.losses.vgg import LAYERS
from fdm_jax.put_fdm import FeatureDequantizer, PatchVQVAE, apply_fdm
from fdm_jax.parity.harness import NotChecked, Fixture, Weights, register
from fdm_jax.nn.layout import to_nchw, to_nhwc
from fdm_jax.parity.runners.put_fdm import codec_from_kwargs

# losses.py EdgeConnectLoss argument -> configs/put_fdm_common.py edge_connect_loss key
_ARG_TO_KEY = {"gan_loss": "gan_loss", "g_gradient_loss_weight": "g_gradient", "disc_start": "disc_start",
               "style_start": "style_start", "gradient_start": "gradient_start", "content_start": "content_start",
               "g_adv_loss_weight": "g_adv", "g_rec_loss_weight": "g_rec", "g_content_loss_weight": "g_content",
               "g_style_loss_weight": "g_style", "norm_to_0_1": "norm_to_0_1"}


def loss_config_from_notes(meta: dict) -> dict:
    """The phase-3 EdgeConnectLoss arguments recorded in meta.notes -> an edge_connect_loss()-style dict."""
    note = next((n for n in meta.get("notes", []) if n.startswith("Loss weights")), None)
    m = re.search(r"(\{.*?\})", note or "")
    if m is None:
        raise ValueError("losses fixture: no 'Loss weights {...}' entry in meta.notes")
    args = json.loads(m.group(1))
    if any(w != 1.0 for w in args.pop("perceptual_layer_weights", [1.0])):
        raise ValueError(f"losses fixture: perceptual_layer_weights other than 1.0 are not supported: {args}")
    unknown = sorted(set(args) - set(_ARG_TO_KEY))
    if unknown:
        raise ValueError(f"losses fixture: unknown EdgeConnectLoss arguments {unknown}")
    cfg = {_ARG_TO_KEY[k]: v for k, v in args.items()}
    cfg.update(kind="image+qe", qe=cfg.get("g_rec", 1.0))  # lip_loss * g_rec_loss_weight
    return cfg


def seeded_torchvision_vgg19(seed: int) -> dict[str, np.ndarray] | None:
    """The `features.*` state_dict of torchvision's `vgg19(weights=None)` built right after
    `torch.manual_seed(seed)`, or None without torch. torchvision itself is not needed: the same
    torch.nn layers are created in the same order (features convs, then the three classifier Linears,
    whose default init consumes the generator), then VGG._initialize_weights redraws every conv with
    kaiming_normal_(fan_out, relu) and zero bias, in module order."""
    try:
        import torch
    except ImportError:
        return None
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(torch.nn.MaxPool2d(2, 2))
            else:
                layers += [torch.nn.Conv2d(c, v, 3, padding=1), torch.nn.ReLU(True)]
                c = v
        for shape in ((512 * 7 * 7, 4096), (4096, 4096), (4096, 1000)):
            torch.nn.Linear(*shape)  # consumes the generator exactly like the classifier's construction
        for m in layers:
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                torch.nn.init.constant_(m.bias, 0)
        return {f"features.{i}.{n}": p.detach().numpy().copy()
                for i, m in enumerate(layers) for n, p in m.named_parameters()}
    finally:
        torch.random.set_rng_state(state)


def _maps(fx: Fixture, prefix: str, layers) -> dict:
    return {l: to_nhwc(fx.outputs[f"{prefix}_{l}"]) for l in layers}


@register(r'forward\(name="fdm_decoder_tuning"\)')
def run_losses(fx: Fixture, weights: Weights) -> dict:
    kw = fx.kwargs
    codec, fdm = codec_from_kwargs(kw), FeatureDequantizer(embed_dim=kw["e_dim"])
    v = weights.inpainting_variables({"codec": codec, "fdm": fdm})
    image, mask = to_nhwc(fx.inputs["image"]), to_nhwc(fx.inputs["mask"])
    step = jnp.asarray(kw["step"], jnp.int32)  # traced inside the jitted losses below
    out = {}

    # --- phase 2: forward(name="fdm") ---------------------------------------------------------
    cfg3 = loss_config_from_notes(fx.meta)
    phase2 = EdgeConnectLoss.from_config({"kind": "qe", "qe": cfg3["g_rec"], "g_gradient": 0.0, "g_style": 0.0,
                                          "g_content": 0.0, "g_adv": 0.0})

    @jax.jit
    def forward(cv, fv, image, mask):
        """The codec/FDM part shared by 'fdm' and 'fdm_decoder_tuning', and Y of the latter."""
        qi = quantization_error_inputs(codec, cv, image, mask)
        repaired, pv = apply_fdm(lambda qv, m: fdm.apply(fv, qv, m), qi["quantized"], qi["feature"],
                                 qi["masked_patch_idx"])
        y = codec.apply(cv, repaired, image, mask, method=PatchVQVAE.decode_with_feature) / 255.0
        qe_total, _, _ = phase2.generator_loss(lost_feature=pv, gt_feature=qi["target"])
        return qi, pv, y, qe_total

    qi, pv, y, qe_total = forward(v["codec"], v["fdm"], image, mask)
    out.update(qe_loss=np.asarray(qe_total), qe_target=to_nchw(qi["target"]), qe_pv=to_nchw(pv),
               masked_patch_idx=to_nchw(qi["masked_patch_idx"]))

    # --- phase 3: forward(name="fdm_decoder_tuning"), then name="discriminator" ----------------
    disc = Discriminator(widths=tuple(kw["disc_widths"]))
    dv = convert_discriminator(discriminator_state_dict(fx.params, str(fx.path)), disc,
                               what=f"{fx.path} [loss.discriminator]")
    content_layers, style_layers = LAYERS["vgg19"]
    perceptual = PerceptualNet(VGGFeatures(), content_layers, style_layers)  # layer lists only; maps are given
    loss = EdgeConnectLoss.from_config(cfg3, discriminator=disc, perceptual=perceptual)
    stored = {"content_x": _maps(fx, "vgg_perc_x", content_layers),
              "content_y": _maps(fx, "vgg_perc_y", content_layers),
              "style_x": _maps(fx, "vgg_style_x", style_layers),
              "style_y": _maps(fx, "vgg_style_y", style_layers)}

    @jax.jit
    def phase3(y, image, mask, step, dv, pf, pv, target):
        """Generator call, then the discriminator step on the detached Y (one compile for both)."""
        i = image / 255.0
        total, terms, sn_gen = loss.generator_loss(y, i, mask, step, disc_variables=dv, perceptual_features=pf,
                                                   lost_feature=pv, gt_feature=target)
        d_total, d_terms, sn_disc = loss.discriminator_loss({**dv, "spectral_norm": sn_gen}, y, i, step)
        # The D maps of the three calls, each from the state the previous call left.
        gen_map, _ = discriminator_apply(disc, dv, y)
        real_map, sn_b = discriminator_apply(disc, {**dv, "spectral_norm": sn_gen}, i)
        fake_map, _ = discriminator_apply(disc, {**dv, "spectral_norm": sn_b}, y)
        return dict(
            {f"p3_{k}": terms[k] for k in ("adv_loss", "rec_loss", "grad_loss", "content_loss", "style_loss",
                                           "fdm_loss")},
            p3_loss=total, d_loss=d_total, d_real_loss=d_terms["real_loss"], d_fake_loss=d_terms["fake_loss"],
            p3_image=i, p3_hole_mask=1.0 - mask, d_map_gen_fake=gen_map, d_map_real=real_map, d_map_fake=fake_map,
            content_terms=content_loss(pf["content_x"], pf["content_y"], content_layers)[1],
            style_terms=style_loss(pf["style_x"], pf["style_y"], style_layers)[1],
        ), sn_gen, sn_disc

    res, sn_gen, sn_disc = phase3(y, image, mask, step, dv, stored, pv, qi["target"])
    out.update({k: (to_nchw(x) if x.ndim == 4 else np.asarray(x)) for k, x in res.items()})
    out.update(p3_reconstruction=to_nchw(y), p3_lost_feature=to_nchw(pv), p3_gt_feature=to_nchw(qi["target"]))
    for stage, state in (("sn_after_gen", sn_gen), ("sn_after_disc", sn_disc)):
        for conv, uv in state.items():
            out[f"{stage}.{conv}.0.weight_u"] = np.asarray(uv["u"])
            out[f"{stage}.{conv}.0.weight_v"] = np.asarray(uv["v"])

    # --- the VGG19 maps, with the fixture's random VGG19 rebuilt through torch's generator -------
    sd = seeded_torchvision_vgg19(int(kw["vgg_seed"]))
    if sd is not None:
        vgg = VGGFeatures(taps=tuple(dict.fromkeys(content_layers + style_layers)))
        vv = convert_vgg19(sd, vgg, what=f"torchvision vgg19(weights=None), seed {kw['vgg_seed']}")

        @jax.jit
        def maps(vv, y, image, mask):
            i, hole = image / 255.0, 1.0 - mask
            f = vgg.apply(vv, jnp.concatenate([y, i, y * hole, i * hole]))  # one pass; images are independent
            b = y.shape[0]
            return {f"vgg_{tag}_{l}": f[l][n * b:(n + 1) * b]
                    for n, (tag, layers) in enumerate((("perc_x", content_layers), ("perc_y", content_layers),
                                                       ("style_x", style_layers), ("style_y", style_layers)))
                    for l in layers}

        out.update({k: to_nchw(x) for k, x in maps(vv, y, image, mask).items()})
    else:
        why = NotChecked("needs torch (optional extra) to rebuild the fixture's unstored random VGG19")
        out.update({k: why for k in fx.outputs if k.startswith("vgg_")})
    return out
