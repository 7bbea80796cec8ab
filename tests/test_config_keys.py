"""Every key of every shipped config is read by some code: a key no code reads is a setting a user
changes without effect (or a stale copy of the original's YAML).

Keys consumed as a whole by a constructor (`**config.model`, `RefineConfig(**config.refiner)`, the
EdgeConnect loss and stroke-mask parameters) are checked by that constructor, which rejects unknown
keys; every other leaf's name must be read in the code (attribute access `.key`, or `"key"` as a
subscript, `.get("key")`, `in` test or keyword) of fdm_jax/, train.py or evaluate.py.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import ml_collections
import pytest

from fdm_jax.cli.config_loading import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ["paris", "paris:tiny", "places", "places:tiny", "demo", "put_fdm_small", "big_lama", "big_lama:tiny",
           "tsgl_lama", "tsgl_lama:tiny", "tsgl_medfe", "tsgl_medfe:tiny"]


def read_names(paths) -> set[str]:
    """Names the code reads: attribute loads, string subscripts, .get()/getattr()/`in` strings, keys
    of dict literals the code looks values up with, and key patterns built with f-strings or
    str.format ('fid_{}' is kept as the regex 'fid_\\w+')."""
    names: set[str] = set()
    for path in paths:
        tree = ast.parse(Path(path).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, (ast.Constant, ast.JoinedStr)):
                names.add(_pattern(node.slice))
            elif isinstance(node, ast.Call):
                for a in node.args[:2]:
                    if isinstance(a, (ast.Constant, ast.JoinedStr)):
                        names.add(_pattern(a))
                if isinstance(node.func, ast.Attribute) and node.func.attr == "format":
                    names.add(_pattern(node.func.value))
            elif isinstance(node, ast.Compare) and isinstance(node.left, (ast.Constant, ast.JoinedStr)):
                names.add(_pattern(node.left))
            elif isinstance(node, ast.Dict):
                names.update(_pattern(k) for k in node.keys if isinstance(k, ast.Constant))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "{" in node.value:
                names.add(_pattern(node))  # a key template, e.g. "fid_{}".format(size)
    return {n for n in names if n}


def _pattern(node) -> str:
    """A string constant, or the regex of an f-string / format string with >= 3 literal characters."""
    if isinstance(node, ast.Constant):
        text = str(node.value)
        if "{" not in text:
            return text
        parts = re.split(r"\{[^}]*\}", text)
    elif isinstance(node, ast.JoinedStr):
        parts, cur = [], ""
        for v in node.values:
            if isinstance(v, ast.Constant):
                cur += str(v.value)
            else:
                parts.append(cur)
                cur = ""
        parts.append(cur)
    else:
        return ""
    if sum(len(p) for p in parts) < 3:
        return ""
    return "re:" + "\\w+".join(re.escape(p) for p in parts)


def is_read(name: str, names: set[str]) -> bool:
    return name in names or any(n.startswith("re:") and re.fullmatch(n[3:], name) for n in names)


def code_files():
    return sorted((REPO / "fdm_jax").rglob("*.py")) + [REPO / "train.py", REPO / "evaluate.py"]


def leaves(config, prefix=""):
    for k, v in config.items():
        if isinstance(v, ml_collections.ConfigDict):
            yield from leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def whole_consumers(config) -> dict[str, set[str]]:
    """Subtrees a constructor takes as keyword arguments -> the keys it accepts."""
    from fdm_jax.data.masks import stroke_mask
    from fdm_jax.lama.refine import RefineConfig
    from fdm_jax.losses.edge_connect import DEFAULTS as EDGE_CONNECT_KEYS

    def params(fn):
        return set(inspect.signature(fn).parameters)

    out = {}
    name = config.get("model_name")
    if name is None:  # PUT + FDM
        from fdm_jax.put_fdm import FeatureDequantizer, FeatureSampler, PatchVQVAE

        for part, cls in (("codec", PatchVQVAE), ("sampler", FeatureSampler), ("fdm", FeatureDequantizer)):
            out[f"model.{part}."] = {f.name for f in cls.__dataclass_fields__.values()}
        for phase, t in config.train.items():
            if t.loss.kind not in ("token_ce", "qe"):  # the image losses: EdgeConnectLoss.from_config
                out[f"train.{phase}.loss."] = set(EDGE_CONNECT_KEYS)
        for stage in config.masks.keys():
            out[f"masks.{stage}.stroken_mask_params."] = params(stroke_mask)
    elif name == "lama":
        from fdm_jax.lama.generator import FFCResNetGenerator

        out["model."] = {f.name for f in FFCResNetGenerator.__dataclass_fields__.values()}
    else:
        from fdm_jax.tsgl.lama import TSGLLamaGenerator
        from fdm_jax.tsgl.medfe import TSGLMedfeGenerator

        cls = {"tsgl_lama": TSGLLamaGenerator, "tsgl_medfe": TSGLMedfeGenerator}[config.model.name]
        out["model."] = {f.name for f in cls.__dataclass_fields__.values()} | {"name"}  # convert.tsgl.build_generator
    if "refiner" in config:
        out["refiner."] = {f.name for f in __import__("dataclasses").fields(RefineConfig)}
    return out


def unread_keys(config, names) -> list[str]:
    consumers = whole_consumers(config)
    bad = []
    for key in leaves(config):
        prefix = next((p for p in consumers if key.startswith(p)), None)
        if prefix is not None:
            if key[len(prefix):].split(".")[0] not in consumers[prefix]:
                bad.append(key)
        elif not is_read(key.rsplit(".", 1)[-1], names):
            bad.append(key)
    return bad


@pytest.fixture(scope="module")
def names():
    return read_names(code_files())


@pytest.mark.parametrize("spec", CONFIGS)
def test_every_config_key_is_read(spec, names):
    assert unread_keys(load_config(spec), names) == []


def test_an_unread_key_is_caught(names):
    """The check has teeth: a key no code reads, at top level, in a plain group and inside a
    constructor-consumed group, is reported."""
    config = load_config("paris:tiny")
    with config.unlocked():
        config.data.never_read_anywhere_xyz = 1
        config.model.codec.not_a_codec_field_xyz = 2
        config.unused_top_level_xyz = 3
    assert sorted(unread_keys(config, names)) == ["data.never_read_anywhere_xyz", "model.codec.not_a_codec_field_xyz",
                                                  "unused_top_level_xyz"]
