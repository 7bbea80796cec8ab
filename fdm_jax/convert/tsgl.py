"""Strict PyTorch -> Flax converters for both TSGL generators and their SPADE blocks
(state_dicts of htyjers/ConvInpaint-TSGL@e9f6438: TSGL_*/test/model.py), plus `tsgl_summary`.

Sources: the original checkpoints, `torch.save(DataParallel(G).state_dict())` (`G_<epoch % 15>.pth`,
`Gs_0.pth`): every key carries the `module.` prefix, stripped here; or a bare state_dict (the fixtures'
`param/*`). `read_state_dict` reads a `.pth` without torch (fdm_jax.convert.pth_reader).

Every Flax variable is looked up under its original name: a missing, unexpected or mis-shaped key raises
`ConversionError` naming it (fdm_jax.convert.put_fdm.convert_with). Deliberately unused keys:
  * `num_batches_tracked` (eval-mode BatchNorm does not read it);
  * MEDFE `*.resample_filter`: the constant [1,3,3,1] FIR; checked to be that constant;
  * MEDFE `*.blocks.<odd>.attn_mask`: the Swin shift masks, which the forward recomputes anyway;
  * the training-only structure decoders (MEDFE `en_high_6/7.*`, `de_high_*`; LaMa `up_high.*`) when the
    model is built without `with_structure_decoder` (inference).
Nothing is baked: the spectral-norm convs keep `weight_orig` (kernel) with the stored `weight_u`/`weight_v`
(the `spectral_norm` collection; the forward divides by u . W v as torch's eval mode does), the MAT layers
keep their unscaled weights (the equalised-LR gain is applied in the forward), and the balance module's
random frozen `mask_conv` weights are loaded like any other kernel.

Layouts: Conv2d (O, I, kh, kw) -> (kh, kw, I, O); ConvTranspose2d (I, O, kh, kw) -> (kh, kw, I, O);
FullyConnectedLayer (out, in) -> (in, out); BatchNorm weight/bias/running_mean/running_var ->
scale/bias/mean/var; InstanceNorm(affine) weight/bias -> scale/bias.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Mapping

import jax
import jax.extend.core as jax_core
import jax.numpy as jnp
import numpy as np

from fdm_jax.convert.pth_reader import load_pth
from fdm_jax.convert.put_fdm import ConversionError, convert_with
from fdm_jax.nn.params import abstract_variables, count_params
from fdm_jax.tsgl.spade import SPADE, SPADEResnetBlock
from fdm_jax.tsgl.lama import N_DOWNSAMPLING, TSGLLamaGenerator
from fdm_jax.tsgl.medfe import FIR_TAPS, TSGLMedfeGenerator

MODULE_PREFIX = "module."  # torch.nn.DataParallel(G).state_dict()
_LEAVES = {"bias": "bias", "scale": "weight", "mean": "running_mean", "var": "running_var",
           "u": "weight_u", "v": "weight_v"}
MEDFE_TRAINING_ONLY = ("en_high_6.", "en_high_7.", "de_high_")  # model.py: the structure decoder D_S
LAMA_TRAINING_ONLY = ("up_high.",)  # model.py: up_high


# ----------------------------------------------------------------------------------- checkpoint files

def strip_module_prefix(state_dict: Mapping[str, Any], source: str = "state_dict") -> dict:
    """Drop DataParallel's `module.` prefix (all keys or none must have it)."""
    keys = list(state_dict)
    has = [k.startswith(MODULE_PREFIX) for k in keys]
    if any(has) and not all(has):
        odd = [k for k, h in zip(keys, has) if not h][:5]
        raise ConversionError(f"{source}: some keys carry DataParallel's '{MODULE_PREFIX}' prefix and some do not "
                              f"(e.g. {odd})")
    return {k[len(MODULE_PREFIX):]: v for k, v in state_dict.items()} if all(has) and keys else dict(state_dict)


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A TSGL generator checkpoint (`G_*.pth` / `Gs_0.pth`, or a bare state_dict) -> {key: array}, no prefix."""
    path = os.fspath(path)
    obj = load_pth(path)
    if not isinstance(obj, Mapping) or not obj:
        raise ConversionError(f"{path}: expected a state_dict (a mapping of tensors), got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise ConversionError(f"{path}: non-tensor entries in the state_dict: {bad[:5]}")
    return strip_module_prefix(obj, path)


# ----------------------------------------------------------------------------------- key maps

def _spade(p: list[str]) -> str:
    """SPADE submodules: param_free_norm, mlp_shared (nn.Sequential(conv, ReLU) -> .0), mlp_gamma, mlp_beta."""
    match p:
        case ["param_free_norm"] | ["mlp_gamma"] | ["mlp_beta"]:
            return p[0]
        case ["mlp_shared"]:
            return "mlp_shared.0"
    raise KeyError(p)


def _resblock(p: list[str]) -> tuple[str, bool]:
    """SPDNormResnetBlock: (torch module, is a spectral-norm conv)."""
    match p:
        case [("conv_0" | "conv_1" | "conv_s") as c]:
            return c, True
        case [("norm_0" | "norm_1" | "norm_s") as n, *rest]:
            return f"{n}.{_spade(rest)}", False
    raise KeyError(p)


def _ffc_bn_act(p: list[str]) -> str:
    """ffc.py FFC_BN_ACT as fdm_jax.lama.ffc names it."""
    match p:
        case ["ffc", ("convl2l" | "convl2g" | "convg2l") as c]:
            return f"ffc.{c}"
        case ["ffc", "convg2g", "conv1"]:
            return "ffc.convg2g.conv1.0"
        case ["ffc", "convg2g", "bn1"]:
            return "ffc.convg2g.conv1.1"
        case ["ffc", "convg2g", "conv2"]:
            return "ffc.convg2g.conv2"
        case ["ffc", "convg2g", "fu", ("conv_layer" | "bn") as c]:
            return f"ffc.convg2g.fu.{c}"
        case [("bn_l" | "bn_g") as b]:
            return b
    raise KeyError(p)


def _lama_rear(p: list[str], n_blocks: int) -> tuple[str, str]:
    """FFCResNetGenerator.rear's modules -> (index path inside the original nn.Sequential, kernel kind):
    n_blocks resblocks, ConcatTupleLayer, 5 x (ConvT, BN, ReLU), ReflectionPad, Conv2d, activation."""
    head, *rest = p
    kind, _, i = head.rpartition("_")
    if kind == "block" and rest and rest[0] in ("conv1", "conv2"):
        return f"{i}.{rest[0]}.{_ffc_bn_act(rest[1:])}", "conv"
    if kind == "up" and rest in (["conv"], ["bn"]):
        return f"{n_blocks + 1 + 3 * int(i) + (rest == ['bn'])}", "convT"
    if head == "out_conv" and not rest:
        return f"{n_blocks + 3 * N_DOWNSAMPLING + 2}", "conv"
    raise KeyError(p)


def _lama_module(model: TSGLLamaGenerator):
    def module(p: list[str]) -> tuple[str, str, bool]:
        head, *rest = p
        if head in ("model_high", "model_low"):
            return f"{head}.1.{_ffc_bn_act(rest)}", "conv", False  # [ReflectionPad2d, FFC_BN_ACT]
        if head.startswith(("model_high_", "model_low_")):
            return f"{head}.0.{_ffc_bn_act(rest)}", "conv", False  # nn.Sequential(FFC_BN_ACT)
        if head.startswith("h2l_"):
            key, sn = _resblock(rest)
            return f"{head}.{key}", "conv", sn
        if head == "decoder":
            key, kind = _lama_rear(rest, model.n_blocks)
            return f"model.{key}", kind, False
        if head == "up_high":
            from fdm_jax.tsgl.lama import N_STRUCTURE_BLOCKS
            key, kind = _lama_rear(rest, N_STRUCTURE_BLOCKS)
            return f"up_high.{key}", kind, False
        raise KeyError(p)
    return module


def _medfe_pc_block(p: list[str]) -> tuple[str, str]:
    head, *rest = p
    if head.startswith("cov_"):
        _, k, i = head.split("_")
        match rest:
            case ["conv", ("input_conv" | "mask_conv") as c]:
                return f"cov_{k}.{i}.conv.{c}", "conv"
            case ["bn"]:
                return f"cov_{k}.{i}.bn", "conv"
    elif head == "base":
        match rest:
            case ["se_fc0"]:
                return "base.model.0.fc.0", "conv"
            case ["se_fc2"]:
                return "base.model.0.fc.2", "conv"
            case ["down"]:
                return "base.down.0", "conv"
    elif head.startswith(("down", "fuse")) and len(rest) == 1 and rest[0].startswith("model_"):
        return f"{head}.model.{rest[0][len('model_'):]}", "conv"
    elif head.startswith("up") and rest == ["conv"]:
        return f"{head}.conv", "conv"
    raise KeyError(p)


def _medfe_module(p: list[str]) -> tuple[str, str, bool]:
    head, *rest = p
    if head.startswith(("en_high_", "de_high_")) and head != "de_high_0" and rest in (["conv"], ["bn"]):
        return f"{head}.{rest[0]}", "conv", False
    if head in ("en_low_1_f", "en_low_1_s") and rest == ["conv"]:
        return f"{head}.conv", "conv", False
    if head.startswith("en_low_") and rest:
        parts = []
        for r in rest:
            parts.append("blocks." + r[len("blocks_"):] if r.startswith("blocks_") else r)
        kind = "linear" if rest[0].startswith("blocks_") else "conv"
        return f"{head}.{'.'.join(parts)}", kind, False
    if head.startswith("h2l_"):
        key, sn = _resblock(rest)
        return f"{head}.{key}", "conv", sn
    if head.startswith("en_fusion_") and not rest:
        return f"{head}.0", "conv", False
    if head == "pc_block":
        key, kind = _medfe_pc_block(rest)
        return f"pc_block.{key}", kind, False
    if head.startswith("Decoder_") and rest in (["conv"], ["bn"]):
        return f"{head}.model.{1 if rest == ['conv'] else 2}", ("convT" if rest == ["conv"] else "conv"), False
    if head == "de_high_0":
        match rest:
            case ["structure_resolver", ("conv1" | "bn1" | "conv2" | "bn2") as c]:
                return f"de_high_0.structure_resolver.{c}", "conv", False
            case ["out_layer"]:
                return "de_high_0.out_layer.0", "conv", False
    raise KeyError(p)


def _key_fn(module: Callable[[list[str]], tuple[str, str, bool]]):
    def key(names: tuple[str, ...]):
        _, *p = names  # collection: params | batch_stats | spectral_norm
        prefix, kind, sn = module(list(p[:-1]))
        leaf = p[-1]
        if leaf == "kernel":
            return f"{prefix}.{'weight_orig' if sn else 'weight'}", kind
        return f"{prefix}.{_LEAVES[leaf]}", "same"
    return key


def _resblock_module(p):
    key, sn = _resblock(p)
    return key, "conv", sn


def _spade_module(p):
    return _spade(p), "conv", False


# ----------------------------------------------------------------------------------- ignored keys

def _ignored(state_dict: Mapping[str, Any], training_only: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for k in state_dict:
        if k.endswith(".num_batches_tracked"):
            out[k] = "BatchNorm counter, unused in eval mode"
        elif k.endswith(".resample_filter"):
            out[k] = "the constant [1,3,3,1] FIR of MAT's Conv2dLayer (checked)"
        elif k.endswith(".attn_mask"):
            out[k] = "Swin shift mask buffer, recomputed by the forward"
        elif training_only and k.startswith(training_only):
            out[k] = "training-only structure decoder (build the model with with_structure_decoder=True to load it)"
    return out


def _check_fir(state_dict: Mapping[str, Any], what: str) -> None:
    f = np.outer(FIR_TAPS, FIR_TAPS).astype(np.float32)
    f = f / f.sum(dtype=np.float32)
    bad = [k for k, v in state_dict.items() if k.endswith(".resample_filter")
           and (np.shape(v) != f.shape or not np.array_equal(np.asarray(v, np.float32), f))]
    if bad:
        raise ConversionError(f"{what}: resample_filter is not the [1,3,3,1] FIR (outer/64) the port assumes: "
                              + ", ".join(f"{k} {np.shape(state_dict[k])}" for k in bad))


# ----------------------------------------------------------------------------------- converters

def convert_spade(state_dict: Mapping[str, np.ndarray], module: SPADE, channels: int, seg_channels: int,
                  what: str = "SPADE state_dict") -> dict:
    """spade.py:SPADE.state_dict() -> variables ({'params'} and for norm 'batch' {'batch_stats'})."""
    abstract = abstract_variables(module, jnp.zeros((2, 4, 4, channels)), jnp.zeros((2, 4, 4, seg_channels)))
    return convert_with(abstract, state_dict, _key_fn(_spade_module), what, _ignored(state_dict))


def convert_spade_resblock(state_dict: Mapping[str, np.ndarray], module: SPADEResnetBlock, channels: int,
                           seg_local_channels: int, seg_global_channels: int,
                           what: str = "SPDNormResnetBlock state_dict") -> dict:
    """model.py:SPDNormResnetBlock.state_dict() -> {'params', 'batch_stats', 'spectral_norm'}."""
    abstract = abstract_variables(module, jnp.zeros((2, 4, 4, channels)), jnp.zeros((2, 4, 4, seg_local_channels)),
                         jnp.zeros((2, 4, 4, seg_global_channels)))
    return convert_with(abstract, state_dict, _key_fn(_resblock_module), what, _ignored(state_dict))


def convert_lama_generator(state_dict: Mapping[str, np.ndarray], model: TSGLLamaGenerator,
                           what: str = "TSGL-LaMa generator state_dict") -> dict:
    """TSGL_Lama FFCResNetGenerator.state_dict() (with or without `module.`) -> variables
    {'params', 'batch_stats', 'spectral_norm'}."""
    sd = strip_module_prefix(state_dict, what)
    s = model.modulo
    img, one = jnp.zeros((1, s, s, 3)), jnp.zeros((1, s, s, 1))
    abstract = abstract_variables(model, img, one, one, one, return_structure=model.with_structure_decoder)
    training_only = () if model.with_structure_decoder else LAMA_TRAINING_ONLY
    return convert_with(abstract, sd, _key_fn(_lama_module(model)), what, _ignored(sd, training_only))


def convert_medfe_generator(state_dict: Mapping[str, np.ndarray], model: TSGLMedfeGenerator,
                            what: str = "TSGL-MEDFE generator state_dict") -> dict:
    """TSGL_MEDFE Generator.state_dict() (with or without `module.`) -> variables
    {'params', 'batch_stats', 'spectral_norm'}."""
    sd = strip_module_prefix(state_dict, what)
    _check_fir(sd, what)
    s = model.modulo
    img, one = jnp.zeros((1, s, s, 3)), jnp.zeros((1, s, s, 1))
    abstract = abstract_variables(model, img, one, img, one, one, return_structure=model.with_structure_decoder)
    training_only = () if model.with_structure_decoder else MEDFE_TRAINING_ONLY
    return convert_with(abstract, sd, _key_fn(_medfe_module), what, _ignored(sd, training_only))


def load_lama_generator(path: str | os.PathLike, model: TSGLLamaGenerator) -> dict:
    """Read an original TSGL-LaMa checkpoint file and convert it for `model`."""
    return convert_lama_generator(read_state_dict(path), model, what=os.fspath(path))


def load_medfe_generator(path: str | os.PathLike, model: TSGLMedfeGenerator) -> dict:
    """Read an original TSGL-MEDFE checkpoint file and convert it for `model`."""
    return convert_medfe_generator(read_state_dict(path), model, what=os.fspath(path))


# ----------------------------------------------------------------------------------- configs, summary

def build_generator(model_config, with_structure_decoder: bool = False):
    """configs/tsgl_{lama,medfe}.py `model` ConfigDict (with `name`) -> the generator module."""
    kw = dict(model_config)
    name = kw.pop("name", None)
    cls = {"tsgl_lama": TSGLLamaGenerator, "tsgl_medfe": TSGLMedfeGenerator}.get(name)
    if cls is None:
        raise ValueError(f"config model.name must be 'tsgl_lama' or 'tsgl_medfe', got {name!r}")
    for k in ("depths", "window_sizes"):
        if k in kw:
            kw[k] = tuple(kw[k])
    try:
        return cls(with_structure_decoder=with_structure_decoder, **kw)
    except TypeError as e:
        raise TypeError(f"config model: {e}") from None


def count_macs(fn: Callable, *args, **kwargs) -> int:
    """Multiply-accumulates of convolutions and matrix products in fn's jaxpr (traced, not run).

    conv_general_dilated: output elements x kernel taps x input channels per group; a transposed
    convolution (lhs_dilation > 1) counts its input elements x kernel taps x output channels, the
    MACs it really does (as torch.utils.flop_counter counts conv_transpose2d). dot_general: batch x
    free x contracting sizes. Elementwise ops, reductions and FFTs are not counted (torch's
    flop_counter does not count them either). Sub-jaxprs (jit, remat, custom_jvp) are followed.
    """
    jaxpr = jax.make_jaxpr(lambda *a: fn(*a, **kwargs))(*args).jaxpr
    return _jaxpr_macs(jaxpr)


def _sub_jaxprs(params):
    return jax_core.jaxprs_in_params(params)  # the open Jaxprs of jit / remat / custom_jvp / ... params


def _jaxpr_macs(jaxpr) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
            out = eqn.outvars[0].aval.shape
            dn = eqn.params["dimension_numbers"]
            taps = math.prod(rhs[i] for i in dn.rhs_spec[2:])
            cin_g, cout = rhs[dn.rhs_spec[1]], rhs[dn.rhs_spec[0]]
            if any(d > 1 for d in eqn.params["lhs_dilation"]):
                # each (undilated) input element meets every tap once per output channel of its group
                total += math.prod(lhs[i] for i in (dn.lhs_spec[0], *dn.lhs_spec[2:])) * taps * cin_g * cout
            else:
                total += math.prod(out) * taps * cin_g
        elif name == "dot_general":
            lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
            (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
            rhs_free = math.prod(d for i, d in enumerate(rhs) if i not in rc and i not in rb)
            total += math.prod(lhs) * rhs_free
        elif name == "scan":
            total += eqn.params["length"] * sum(_jaxpr_macs(j) for j in _sub_jaxprs(eqn.params))
        elif name == "cond":
            total += max((_jaxpr_macs(j) for j in _sub_jaxprs(eqn.params)), default=0)
        else:
            total += sum(_jaxpr_macs(j) for j in _sub_jaxprs(eqn.params))
    return total


def tsgl_summary(config) -> dict:
    """Parameters and GMACs of a TSGL config (configs/tsgl_lama.py or tsgl_medfe.py), beside the paper's.

    Counts: `params` = trainable parameters of the test-time generator (what the paper reports; buffers
    such as BN statistics and spectral-norm u/v excluded), `params_training_only` = the structure decoder
    stored in every checkpoint, `gmacs` = conv/matmul MACs of one test-time forward at
    config.data.image_size (count_macs on the jaxpr; FFTs and elementwise ops excluded). The paper's
    figures (config.reference) are 34.0M / 463.0G for TSGL-LaMa at 512x512 ("FLOPs" that are MACs) and
    37.8M / 95.1G for the 256 model (Table V), which the released code cannot reproduce.

    Against torch.utils.flop_counter on the original modules: TSGL-LaMa 34,468,035 / 463.38 GMAC here vs
    34,468,035 / 463.37 there; TSGL-MEDFE 138,331,611 / 195.86 here vs 138,331,611 / 197.74 there. The
    1.88 GMAC gap is exact bookkeeping: the structure encoder's mask-update convolution (ones kernel) is
    computed here with one output channel instead of Co identical ones (-2.43), and the balance module's
    Gaussian mixing, a mul + sum in PyTorch, is an einsum here and counted (+0.54).
    """
    s = int(config.data.image_size)
    model = build_generator(config.model)
    full = build_generator(config.model, with_structure_decoder=True)
    img, one = jnp.zeros((1, s, s, 3)), jnp.zeros((1, s, s, 1))
    if isinstance(model, TSGLLamaGenerator):
        args = (img, one, one, one)
    else:
        args = (img, one, img, one, one)
    s_full = max(s, full.modulo)
    args_full = tuple(jnp.zeros((1, s_full, s_full, a.shape[-1])) for a in args)
    v = abstract_variables(model, *args)
    v_full = abstract_variables(full, *args_full, return_structure=True)
    params = count_params(v["params"])
    macs = count_macs(lambda var, *a: model.apply(var, *a), v, *args)
    out = {
        "model": config.model.name,
        "image_size": s,
        "params": params,
        "params_training_only": count_params(v_full["params"]) - params,
        "buffers": count_params({k: c for k, c in v.items() if k != "params"}),
        "gmacs": macs / 1e9,
        "macs_counted_by": "count_macs: conv_general_dilated + dot_general MACs of the jaxpr of one forward",
    }
    ref = config.get("reference", None)
    if ref is not None:
        out["paper_params_M"] = ref.get("params_M", None)
        out["paper_gflops"] = ref.get("gflops", None)
        out["paper_note"] = ref.get("note", None)
    return out
