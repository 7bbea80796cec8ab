"""Each torch-matching numeric exists once, in fdm_jax/nn, and everything uses that one implementation.

(a) every module that uses a numeric holds the very object of fdm_jax.nn (no private copy);
(b) an AST scan of fdm_jax/ fails on a function of one of those responsibilities defined outside
    fdm_jax/nn (by name, or by the code pattern: a transposed convolution, a parameter count, an
    abstract init, a literal NCHW/NHWC or torch-kernel transpose);
(c) the nn implementations against torch itself (CPU), so replacing one by an identity or a near miss
    fails here and not only in a slow fixture test.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from fdm_jax.nn import layers, layout, padding, params, resize

PACKAGE = Path(__file__).resolve().parents[1] / "fdm_jax"

USES = [  # (the fdm_jax.nn object, the modules that use it)
    ("resize.resize_bilinear", ["fdm_jax.lama.refine", "fdm_jax.tsgl.medfe", "fdm_jax.metrics.fid"]),
    ("resize.bilinear_matrix", ["fdm_jax.metrics.lpips"]),
    ("resize.upsample_nearest2x", ["fdm_jax.tsgl.medfe", "fdm_jax.tsgl.lama"]),
    ("resize.nearest_resize", ["fdm_jax.tsgl.spade"]),
    ("resize.nearest_downsample", ["fdm_jax.put_fdm", "fdm_jax.put_fdm.patch_decoder"]),
    ("padding.pad_to_modulo", ["fdm_jax.lama.generator", "fdm_jax.lama.refine", "fdm_jax.inference.generators"]),
    ("layers.ConvTranspose2d", ["fdm_jax.lama.generator", "fdm_jax.tsgl.medfe", "fdm_jax.put_fdm.patch_decoder"]),
    ("params.count_params", ["fdm_jax.summary", "fdm_jax.convert.tsgl", "fdm_jax.lama.generator"]),
    ("params.abstract_variables", ["fdm_jax.convert.put_fdm", "fdm_jax.convert.lama", "fdm_jax.convert.tsgl",
                                   "fdm_jax.convert.discriminator", "fdm_jax.losses.vgg", "fdm_jax.losses.discriminator",
                                   "fdm_jax.metrics.inception", "fdm_jax.metrics.lpips", "fdm_jax.summary",
                                   "fdm_jax.lama.generator", "fdm_jax.put_fdm.image_losses"]),
    ("layout.to_nhwc", ["fdm_jax.parity.runners.put_fdm", "fdm_jax.parity.runners.lama", "fdm_jax.parity.runners.tsgl",
                        "fdm_jax.parity.runners.put_fdm_losses", "fdm_jax.parity.runners.put_fdm_sampling"]),
    ("layout.to_nchw", ["fdm_jax.parity.runners.put_fdm", "fdm_jax.parity.runners.lama", "fdm_jax.parity.runners.tsgl",
                        "fdm_jax.parity.runners.put_fdm_losses", "fdm_jax.parity.runners.put_fdm_sampling"]),
    ("layout.TORCH_TO_FLAX", ["fdm_jax.convert.put_fdm", "fdm_jax.metrics.inception"]),
    ("layout.torch_shape", ["fdm_jax.convert.put_fdm", "fdm_jax.metrics.inception"]),
]


@pytest.mark.parametrize("name, module", [(n, m) for n, ms in USES for m in ms])
def test_users_hold_the_one_implementation(name, module):
    nn_module, attr = name.split(".")
    obj = getattr(globals()[nn_module], attr)
    mod = importlib.import_module(module)
    held = [v for v in vars(mod).values() if v is obj]
    assert held, f"{module} does not import the fdm_jax.nn implementation it uses"


# ---------------------------------------------------------------------------------------------- (b)

# Names of functions that implement one of fdm_jax/nn's responsibilities (the copies this replaced).
FORBIDDEN_NAMES = {
    "resize_bilinear", "bilinear_resize", "linear_taps", "_linear_taps", "bilinear_matrix", "_bilinear_matrix",
    "_upsample_matrix", "nearest_resize", "nearest_indices", "nearest_downsample", "upsample2",
    "upsample_nearest2x", "pad_to_modulo", "_pad_reflect", "_pad", "conv_transpose", "conv_transpose2d",
    "count_params", "_n", "abstract_variables", "_abstract", "nhwc", "nchw", "to_nhwc", "to_nchw",
}
# Literal transposes that are a layout conversion: activations NCHW <-> NHWC, torch <-> Flax kernels.
LAYOUT_PERMUTATIONS = {(0, 2, 3, 1), (0, 3, 1, 2), (2, 3, 1, 0), (2, 3, 0, 1), (3, 2, 0, 1)}
# (file, function): why the pattern there is not a copy of an nn numeric.
ALLOWED = {
    ("tsgl/medfe.py", "nchw_view"): "the original's `.view(B, C, H, W)` of a (B, HW, C) tensor (a reshape rule)",
}


def _literal_ints(call: ast.Call):
    if call.keywords or not call.args or not all(isinstance(a, ast.Constant) for a in call.args):
        return None
    return tuple(a.value for a in call.args)


def _violations(path: Path, root: Path = PACKAGE) -> list[str]:
    rel = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []

    def scope_of(node, parents):
        for p in reversed(parents):
            if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return p.name
        return "<module>"

    def visit(node, parents):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in FORBIDDEN_NAMES:
            out.append(f"{where}: defines {node.name}() (the one implementation is in fdm_jax/nn)")
        if isinstance(node, ast.Call):
            fn = scope_of(node, parents)
            if (rel, fn) not in ALLOWED:
                if any(k.arg == "lhs_dilation" for k in node.keywords):
                    out.append(f"{where} in {fn}: a transposed convolution (use fdm_jax.nn.layers.conv_transpose2d)")
                f = node.func
                if isinstance(f, ast.Attribute) and f.attr == "transpose" and _literal_ints(node) in LAYOUT_PERMUTATIONS:
                    out.append(f"{where} in {fn}: transpose{_literal_ints(node)} (use fdm_jax.nn.layout)")
                if isinstance(f, ast.Attribute) and f.attr == "eval_shape" and node.args:
                    a = node.args[0]
                    if (isinstance(a, ast.Attribute) and a.attr == "init") or (
                            isinstance(a, ast.Lambda) and isinstance(a.body, ast.Call)
                            and isinstance(a.body.func, ast.Attribute) and a.body.func.attr == "init"):
                        out.append(f"{where} in {fn}: eval_shape of an init (use fdm_jax.nn.params.abstract_variables)")
                if isinstance(f, ast.Name) and f.id == "sum" and node.args and isinstance(node.args[0], ast.GeneratorExp):
                    src = ast.unparse(node.args[0])
                    if "leaves" in src and (".size" in src or ".shape" in src):
                        out.append(f"{where} in {fn}: a parameter count (use fdm_jax.nn.params.count_params)")
        for child in ast.iter_child_nodes(node):
            visit(child, parents + [node])

    visit(tree, [])
    return out


def test_no_copy_of_an_nn_numeric_outside_fdm_jax_nn():
    files = [p for p in PACKAGE.rglob("*.py") if "nn" not in p.relative_to(PACKAGE).parts[:1]]
    assert len(files) > 50
    found = [v for p in sorted(files) for v in _violations(p)]
    assert not found, "copies of fdm_jax/nn numerics:\n" + "\n".join(found)


def test_the_scan_sees_a_copy(tmp_path):
    """The scan itself works: each pattern it knows is reported in a planted module."""
    planted = tmp_path / "planted_copy.py"
    planted.write_text(
        "import jax\n"
        "def upsample2(x):\n    return x\n"
        "def f(x, k, m):\n"
        "    y = jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME', lhs_dilation=(2, 2))\n"
        "    v = jax.eval_shape(lambda: m.init(jax.random.key(0), x))\n"
        "    n = sum(a.size for a in jax.tree.leaves(v))\n"
        "    return x.transpose(0, 3, 1, 2), y, n\n")
    found = _violations(planted, tmp_path)
    assert len(found) == 5, found


# ---------------------------------------------------------------------------------------------- (c)

F = torch.nn.functional  # torch: the `test` extra; missing, the module fails to import, never skips

SIZES = [(5, 7), (7, 5), (4, 8), (8, 4), (13, 29), (29, 13), (256, 299), (263, 299), (64, 32), (3, 1), (1, 3), (6, 6)]


@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_taps_are_torchs(align_corners):
    """The interpolation weights bit for bit: F.interpolate of one-hot rows is the weight matrix."""
    for n_in, n_out in SIZES:
        eye = torch.eye(n_in).reshape(n_in, 1, 1, n_in)
        want = F.interpolate(eye, size=(1, n_out), mode="bilinear", align_corners=align_corners)[:, 0, 0].numpy().T
        got = resize.bilinear_matrix(n_in, n_out, align_corners).astype(np.float32)
        np.testing.assert_array_equal(got, want, err_msg=f"{n_in} -> {n_out}")


@pytest.mark.parametrize("align_corners", [False, True])
def test_resize_bilinear_matches_torch(align_corners):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 11, 17)).astype(np.float32)
    for size in [(23, 9), (5, 34), (11, 17), (22, 34), (4, 4)]:
        want = F.interpolate(torch.from_numpy(x), size=size, mode="bilinear", align_corners=align_corners).numpy()
        got = layout.to_nchw(resize.resize_bilinear(layout.to_nhwc(x), size, align_corners))
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0, err_msg=str(size))


def test_nearest_resize_matches_torch():
    x = np.random.default_rng(1).standard_normal((1, 2, 10, 12)).astype(np.float32)
    for size in [(20, 24), (5, 6), (7, 5), (13, 31), (10, 12), (3, 4)]:
        want = F.interpolate(torch.from_numpy(x), size=size, mode="nearest").numpy()
        got = layout.to_nchw(resize.nearest_resize(layout.to_nhwc(x), size))
        np.testing.assert_array_equal(got, want, err_msg=str(size))
    np.testing.assert_array_equal(layout.to_nchw(resize.upsample_nearest2x(layout.to_nhwc(x))),
                                  F.interpolate(torch.from_numpy(x), scale_factor=2, mode="nearest").numpy())
    np.testing.assert_array_equal(layout.to_nchw(resize.nearest_downsample(layout.to_nhwc(x), 2)),
                                  F.interpolate(torch.from_numpy(x), scale_factor=0.5, mode="nearest").numpy())


@pytest.mark.parametrize("k, s, p, op", [(3, 2, 1, 1), (4, 2, 1, 0), (3, 1, 1, 0), (5, 3, 2, 2), (4, 2, 0, 1)])
def test_conv_transpose2d_matches_torch(k, s, p, op):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    w = rng.standard_normal((3, 4, k, k)).astype(np.float32)  # torch ConvTranspose2d weight (in, out, kh, kw)
    want = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), stride=s, padding=p, output_padding=op).numpy()
    got = layers.conv_transpose2d(layout.to_nhwc(x), jnp.asarray(layout.TORCH_TO_FLAX["convT"](w)),
                                  stride=s, padding=p, output_padding=op)
    assert got.shape == (2,) + want.shape[2:] + (4,)
    np.testing.assert_allclose(layout.to_nchw(got), want, atol=1e-5, rtol=1e-5)


def test_pad_to_modulo_matches_torch_reflect_and_numpy_symmetric():
    x = np.random.default_rng(3).standard_normal((1, 2, 9, 13)).astype(np.float32)
    want = F.pad(torch.from_numpy(x), (0, -13 % 8, 0, -9 % 8), mode="reflect").numpy()
    got = padding.pad_to_modulo(layout.to_nhwc(x), 8, mode="reflect")
    assert isinstance(got, jnp.ndarray)
    np.testing.assert_array_equal(layout.to_nchw(got), want)
    hwc = x[0].transpose(1, 2, 0)
    sym = padding.pad_to_modulo(hwc, 8, mode="symmetric", axes=(0, 1))
    assert isinstance(sym, np.ndarray) and sym.shape == (16, 16, 2)
    np.testing.assert_array_equal(sym, np.pad(hwc, ((0, 7), (0, 3), (0, 0)), mode="symmetric"))
    square = hwc[:8, :8]
    assert padding.pad_to_modulo(square, 8, axes=(0, 1)) is square  # nothing to pad
    with pytest.raises(ValueError, match="reflect"):  # torch: padding must be smaller than the size
        padding.pad_to_modulo(jnp.zeros((1, 3, 3, 1)), 8, mode="reflect")
    with pytest.raises(RuntimeError):
        F.pad(torch.zeros(1, 1, 3, 3), (0, 5, 0, 5), mode="reflect")


def test_layout_and_kernel_tables_match_torch_layers():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(np.asarray(layout.to_nhwc(x)), x.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(layout.to_nchw(layout.to_nhwc(x)), x)
    assert layout.to_nchw(np.zeros((2, 4, 5))).shape == (2, 1, 4, 5)
    assert layout.to_nhwc(x.astype(np.uint8), np.float32).dtype == jnp.float32
    conv = torch.nn.Conv2d(3, 6, (2, 4))
    lin = torch.nn.Linear(3, 6)
    convt = torch.nn.ConvTranspose2d(3, 6, (2, 4))
    for kind, m, flax_shape in (("conv", conv, (2, 4, 3, 6)), ("linear", lin, (3, 6)), ("convT", convt, (2, 4, 3, 6))):
        w = m.weight.detach().numpy()
        k = layout.TORCH_TO_FLAX[kind](w)
        assert k.shape == flax_shape and layout.torch_shape(kind, flax_shape) == w.shape
        np.testing.assert_array_equal(layout.FLAX_TO_TORCH[kind](k), w)
    xt = torch.from_numpy(np.random.default_rng(4).standard_normal((1, 3, 5, 7)).astype(np.float32))
    with torch.no_grad():
        want = conv(xt).numpy()
    got = jax.lax.conv_general_dilated(layout.to_nhwc(xt.numpy()), layout.TORCH_TO_FLAX["conv"](conv.weight.detach().numpy()),
                                   (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(layout.to_nchw(got) + conv.bias.detach().numpy()[:, None, None], want, atol=1e-5)


def test_count_params_and_abstract_variables_match_torch():
    from fdm_jax.nn.layers import Conv2d, ConvTranspose2d, Linear

    assert params.count_params({"a": np.zeros((3, 4)), "b": [np.zeros(5)]}) == 17
    for ours, theirs, x in ((Conv2d(6, 3), torch.nn.Conv2d(4, 6, 3), jnp.zeros((1, 8, 8, 4))),
                            (ConvTranspose2d(6), torch.nn.ConvTranspose2d(4, 6, 4, 2, 1), jnp.zeros((1, 8, 8, 4))),
                            (Linear(7), torch.nn.Linear(4, 7), jnp.zeros((1, 4)))):
        v = params.abstract_variables(ours, x)
        assert all(isinstance(a, jax.ShapeDtypeStruct) for a in jax.tree.leaves(v))
        assert params.count_params(v["params"]) == sum(p.numel() for p in theirs.parameters())
