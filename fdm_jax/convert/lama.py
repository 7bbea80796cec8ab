"""Strict PyTorch -> Flax converters for LaMa's FFC modules (the state_dict names of
geomagical/lama-with-refiner:saicinpainting/training/modules/ffc.py).

Sources:
  * the released Big-LaMa checkpoint `big-lama/models/best.ckpt`: a PyTorch Lightning checkpoint whose
    ckpt['state_dict'] holds the generator under `generator.` (plus discriminator / loss tensors,
    which are ignored); `read_generator_state_dict` extracts it;
  * a bare generator state_dict (`model.<idx>...`), e.g. the fixtures' `param/*` or their `.pth`.

Every Flax variable is looked up under its original name; a missing, unexpected or mis-shaped key
raises `ConversionError` naming it (fdm_jax.convert.put_fdm.convert_with). `num_batches_tracked`
counters are ignored: eval-mode BatchNorm does not read them.

Name rules (Flax path -> state_dict key): init -> model.1; down_i -> model.{2+i};
block_i -> model.{2+n_down+i}; up_i/conv and up_i/bn -> the ConvTranspose2d and BatchNorm2d after the
ConcatTupleLayer; out_conv -> the last Conv2d. Inside an FFC_BN_ACT: ffc.convl2l|convl2g|convg2l,
ffc.convg2g.{conv1.0 (conv1), conv1.1 (bn1), fu.conv_layer, fu.bn, conv2}, bn_l, bn_g.
Leaves: kernel -> weight (Conv2d OIHW -> HWIO; ConvTranspose2d IOHW -> HWIO), bias -> bias,
scale -> weight, batch_stats mean/var -> running_mean/running_var.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np

from fdm_jax.convert.pth_reader import PthFormatError, load_pth
from fdm_jax.convert.put_fdm import ConversionError, convert_with
from fdm_jax.lama.ffc import FFCResnetBlock, FourierUnit
from fdm_jax.lama.generator import FFCResNetGenerator
from fdm_jax.nn.params import abstract_variables

GENERATOR_PREFIX = "generator."  # trainers/base.py: BaseInpaintingTrainingModule.generator
_LEAVES = {"kernel": "weight", "bias": "bias", "scale": "weight", "mean": "running_mean", "var": "running_var"}


def _fu(p):
    match p:
        case ["conv_layer"] | ["bn"]:
            return p[0]
    raise KeyError(p)


def _spectral(p):
    match p:
        case ["conv1"]:
            return "conv1.0"  # nn.Sequential(Conv2d, BatchNorm2d, ReLU)
        case ["bn1"]:
            return "conv1.1"
        case ["conv2"]:
            return "conv2"
        case ["fu", *rest]:
            return "fu." + _fu(rest)
    raise KeyError(p)


def _ffc(p):
    match p:
        case [("convl2l" | "convl2g" | "convg2l") as c]:
            return c
        case ["convg2g", *rest]:
            return "convg2g." + _spectral(rest)
    raise KeyError(p)


def _bn_act(p):
    match p:
        case ["ffc", *rest]:
            return "ffc." + _ffc(rest)
        case [("bn_l" | "bn_g") as b]:
            return b
    raise KeyError(p)


def _block(p):
    match p:
        case [("conv1" | "conv2") as c, *rest]:
            return f"{c}.{_bn_act(rest)}"
    raise KeyError(p)


def _generator(model: FFCResNetGenerator):
    n, b = model.n_downsampling, model.n_blocks
    concat = 2 + n + b  # model[0] pad, [1] init, [2..1+n] downs, blocks, then ConcatTupleLayer

    def key(p):
        head, *rest = p
        if head == "init":
            return f"model.1.{_bn_act(rest)}"
        kind, _, i = head.rpartition("_")
        if kind == "down":
            return f"model.{2 + int(i)}.{_bn_act(rest)}"
        if kind == "block":
            return f"model.{2 + n + int(i)}.{_block(rest)}"
        if kind == "up" and rest in (["conv"], ["bn"]):
            return f"model.{concat + 1 + 3 * int(i) + (rest == ['bn'])}"  # ConvT, BN, ReLU per level
        if head == "out_conv" and not rest:
            return f"model.{concat + 3 * n + 2}"  # ReflectionPad2d(3), then the Conv2d
        raise KeyError(p)

    return key


def _key_fn(module_map):
    def key(path: tuple[str, ...]):
        _, *p = path  # collection: params | batch_stats
        module, leaf = p[:-1], p[-1]
        torch_key = f"{module_map(list(module))}.{_LEAVES[leaf]}"
        if leaf != "kernel":
            kind = "same"
        else:
            kind = "convT" if len(module) == 2 and module[0].startswith("up_") else "conv"
        return torch_key, kind
    return key


def _ignored(state_dict: Mapping[str, Any]) -> dict[str, str]:
    return {k: "BatchNorm counter, unused in eval mode" for k in state_dict if k.endswith(".num_batches_tracked")}


def convert_generator(state_dict: Mapping[str, np.ndarray], model: FFCResNetGenerator,
                      what: str = "LaMa generator state_dict") -> dict:
    """FFCResNetGenerator.state_dict() (`model.<idx>...`) -> variables {'params', 'batch_stats'}."""
    s = model.modulo
    abstract = abstract_variables(model, jnp.zeros((1, s, s, 3)), jnp.ones((1, s, s, 1)))
    return convert_with(abstract, state_dict, _key_fn(_generator(model)), what, _ignored(state_dict))


def convert_resnet_block(state_dict: Mapping[str, np.ndarray], block: FFCResnetBlock,
                         what: str = "FFCResnetBlock state_dict") -> dict:
    """FFCResnetBlock.state_dict() (`conv1.ffc...`) -> variables."""
    c_g = int(block.dim * block.ratio_gin)
    abstract = abstract_variables(block, (jnp.zeros((1, 4, 4, block.dim - c_g)), jnp.zeros((1, 4, 4, c_g))))
    return convert_with(abstract, state_dict, _key_fn(_block), what, _ignored(state_dict))


def convert_fourier_unit(state_dict: Mapping[str, np.ndarray], fu: FourierUnit, in_channels: int,
                         what: str = "FourierUnit state_dict") -> dict:
    """FourierUnit.state_dict() (`conv_layer.weight`, `bn.*`) -> variables."""
    abstract = abstract_variables(fu, jnp.zeros((1, 4, 4, in_channels)))
    return convert_with(abstract, state_dict, _key_fn(_fu), what, _ignored(state_dict))


# ----------------------------------------------------------------------------------- checkpoint files

class _Opaque:
    """Inert stand-in for a non-tensor object in a Lightning checkpoint (OmegaConf hyper-parameters,
    callbacks state ...): it accepts any constructor/state arguments and runs nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):  # pickle SETITEMS on dict subclasses
        pass

    def append(self, value):  # pickle APPENDS on list subclasses
        pass

    def extend(self, values):
        pass


def _load_with_opaque_objects(path: str) -> Any:
    """The pure pth reader, except that globals outside its allowlist load as `_Opaque` instead of
    failing. Nothing from the file is imported or called, so this is as safe as the strict reader."""
    from fdm_jax.convert import pth_reader as pr

    class _Lenient(pr._Unpickler):
        def find_class(self, module, name):
            try:
                return super().find_class(module, name)
            except PthFormatError:
                return _Opaque

    with zipfile.ZipFile(path) as archive:
        pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkls:
            raise PthFormatError(f"{path}: zip archive has no <prefix>/data.pkl; not a torch.save checkpoint")
        prefix = pkls[0].split("/", 1)[0]
        try:
            return pr._plain(_Lenient(archive.read(pkls[0]), archive, prefix, path).load())
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError) as e:
            raise PthFormatError(f"{path}: cannot read data.pkl: {type(e).__name__}: {e}") from e


def read_generator_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The generator state_dict (`model.<idx>...` keys) of an original LaMa checkpoint file.

    Accepts the Lightning `best.ckpt` (ckpt['state_dict'], keys `generator.model...`; the other
    modules' keys are dropped) or a bare generator state_dict. The file is read without executing
    pickled code: with torch via torch.load(weights_only=True) or with the pure reader; when the
    checkpoint also pickles non-tensor objects (Lightning's OmegaConf hyper-parameters), those are
    replaced by inert placeholders and only the tensors are used.
    """
    path = os.fspath(path)
    try:
        obj = load_pth(path)
    except FileNotFoundError:
        raise
    except Exception as strict_error:  # noqa: BLE001  (torch.load raises assorted errors on odd files)
        try:
            obj = _load_with_opaque_objects(path)
        except (PthFormatError, zipfile.BadZipFile, OSError) as e:
            raise ConversionError(f"{path}: cannot read the checkpoint ({type(strict_error).__name__}: "
                                  f"{strict_error}; {e})") from e
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise ConversionError(f"{path}: expected a state_dict or a Lightning checkpoint with 'state_dict'")
    keys = [k for k in obj if isinstance(k, str)]
    if any(k.startswith(GENERATOR_PREFIX) for k in keys):
        sd = {k[len(GENERATOR_PREFIX):]: v for k, v in obj.items() if k.startswith(GENERATOR_PREFIX)}
    else:
        sd = dict(obj)
    bad = [k for k, v in sd.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise ConversionError(f"{path}: non-tensor entries in the generator state_dict: {bad[:5]}")
    if not any(k.startswith("model.") for k in sd):
        raise ConversionError(f"{path}: no generator keys (expected 'generator.model.*' in a Lightning "
                              f"checkpoint or 'model.*' in a bare state_dict; found e.g. {keys[:5]})")
    return sd


def load_generator(path: str | os.PathLike, model: FFCResNetGenerator) -> dict:
    """Read an original LaMa checkpoint and convert its generator for `model`."""
    return convert_generator(read_generator_state_dict(path), model, what=f"{os.fspath(path)} [generator]")
