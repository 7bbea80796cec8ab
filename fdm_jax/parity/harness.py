"""The parity harness: rebuild the module a fixture of the ORIGINAL code names, load its weights
through the project's converters, run its inputs and compare every recorded output.

    python -m fdm_jax.parity FIXTURE.npz [...] [--weights ORIGINAL.pth ...]

    python -m fdm_jax.parity --strict FIXTURE.npz   # the default under CI=true

Exit status: 0 all outputs within tolerance; 1 some output beyond its tolerance (or not produced,
or the weights did not convert), a fixture with no outputs, or a runner module that failed to
import; 2 a fixture names a module no runner knows (only if nothing failed, and never in strict mode).
In strict mode (`--strict`, or `CI=true` in the environment) an output the runner reports as
*not checked* is a failure too: a fixture passes only by showing every output it records.
Runners register a regex over `meta.module`; each file in `fdm_jax/parity/runners/` adds its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

EXIT_OK, EXIT_MISMATCH, EXIT_UNKNOWN = 0, 1, 2


def strict_default() -> bool:
    """Strict unless asked otherwise: CI (CI=true) never counts an unshown output as a pass."""
    return os.environ.get("CI", "").lower() == "true"


@dataclasses.dataclass
class Fixture:
    path: Path
    meta: dict
    params: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]

    @property
    def kwargs(self) -> dict:
        return self.meta.get("kwargs", {})

    def tolerance(self, name: str) -> float:
        for key in ("tolerances", "tolerance_by_output"):
            if name in self.meta.get(key, {}):
                return parse_tolerance(self.meta[key][name], self.outputs.get(name))
        if "tolerance" in self.meta and not isinstance(self.meta["tolerance"], dict):
            return parse_tolerance(self.meta["tolerance"])
        raise KeyError(f"{self.path.name}: no tolerance recorded for output {name!r}")


def parse_tolerance(value, ref=None) -> float:
    """A recorded tolerance -> max abs error. Numbers are absolute; some fixtures state it in words
    (metrics/frechet_distance, metrics/diversity): 'exact' -> 0, '<x> relative ...' -> x * max|ref|,
    otherwise the first number ('|d| <= 1e-6 (...)' -> 1e-6)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if text.lower().startswith("exact"):
        return 0.0
    m = re.search(r"\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", text)
    if m is None:
        raise ValueError(f"unreadable tolerance {value!r}")
    tol = float(m.group())
    if "relative" in text and ref is not None and np.size(ref):
        tol *= float(np.max(np.abs(ref)))
    return tol


def load_fixture(path: str | Path) -> Fixture:
    path = Path(path)
    with np.load(path, allow_pickle=False) as f:
        if "meta" not in f.files:
            raise ValueError(f"{path}: not a fixture (no 'meta' entry)")
        meta = json.loads(str(f["meta"]))
        groups: dict[str, dict] = {"param": {}, "in": {}, "out": {}}
        for k in f.files:
            head, _, rest = k.partition("/")
            if head in groups:
                groups[head][rest] = f[k]
    return Fixture(path, meta, groups["param"], groups["in"], groups["out"])


@dataclasses.dataclass
class Weights:
    """Where a runner takes its weights from: the fixture's `param/*` or original checkpoint files."""

    fixture: Fixture
    files: tuple[str, ...] = ()

    def inpainting_parts(self) -> dict[str, dict]:
        """{'codec'|'fdm'|'sampler': PyTorch sub-state_dict} from the .pth files, else from param/*."""
        from fdm_jax.convert import checkpoints, put_fdm

        if self.files:
            parts, _ = checkpoints.load_inpainting_parts(self.files)
            return parts
        parts, _ = put_fdm.split_inpainting_state_dict(self.fixture.params, str(self.fixture.path))
        return parts

    def source(self) -> str:
        return ", ".join(self.files) if self.files else str(self.fixture.path)

    def inpainting_variables(self, models: Mapping) -> dict:
        """{'codec'|'fdm'|'sampler': Flax variables} for every module in `models`; a part the weights
        lack is a LookupError naming it."""
        from fdm_jax.convert.put_fdm import convert_inpainting_parts

        parts = self.inpainting_parts()
        missing = sorted(set(models) - set(parts))
        if missing:
            raise LookupError(f"no {', '.join(missing)} weights in {self.source()} "
                              f"(found parts: {sorted(parts) or 'none'})")
        return convert_inpainting_parts(parts, models, source=self.source())

    def part(self, name: str, bare_if_fixture: bool = True) -> dict:
        """The state_dict of one part. Fixtures of a single module store it bare (no prefix)."""
        if not self.files and bare_if_fixture:
            return self.fixture.params
        parts = self.inpainting_parts()
        if name not in parts:
            raise LookupError(f"no {name} weights in {self.source()} (found parts: {sorted(parts) or 'none'})")
        return parts[name]


Runner = Callable[[Fixture, Weights], Mapping[str, np.ndarray]]
_REGISTRY: list[tuple[re.Pattern, Runner]] = []


def register(pattern: str):
    """Decorator: run fixtures whose meta.module matches `pattern` (re.search) with this function.
    The function returns {output name: array in the fixture's (PyTorch) layout}."""

    def deco(fn: Runner) -> Runner:
        _REGISTRY.append((re.compile(pattern), fn))
        return fn

    return deco


def find_runner(module: str) -> Runner | None:
    from fdm_jax.parity import runners  # noqa: F401  (importing registers every runner)

    return next((fn for pat, fn in _REGISTRY if pat.search(module)), None)


@dataclasses.dataclass(frozen=True)
class NotChecked:
    """What a runner returns for an output it cannot produce in this environment (e.g. one that
    needs an optional dependency to rebuild unstored random weights). Reported, never a silent pass."""

    reason: str


@dataclasses.dataclass
class Row:
    name: str
    error: float | None  # None: not produced / shape mismatch
    tolerance: float
    note: str = ""
    not_checked: bool = False

    @property
    def ok(self) -> bool:
        """Within tolerance. A *not checked* row is never ok; lenient mode tolerates it explicitly."""
        return (not self.not_checked) and self.error is not None and self.error <= self.tolerance

    def passes(self, strict: bool) -> bool:
        return self.ok or (self.not_checked and not strict)


def compare(fx: Fixture, produced: Mapping[str, np.ndarray]) -> list[Row]:
    rows = []
    for name, ref in fx.outputs.items():
        tol = fx.tolerance(name)
        if name not in produced:
            rows.append(Row(name, None, tol, "not produced"))
            continue
        if isinstance(produced[name], NotChecked):
            rows.append(Row(name, None, tol, f"not checked: {produced[name].reason}", not_checked=True))
            continue
        got = np.asarray(produced[name])
        if got.shape != ref.shape:
            rows.append(Row(name, None, tol, f"shape {got.shape} != recorded {ref.shape}"))
            continue
        if ref.size == 0:
            rows.append(Row(name, 0.0, tol))
            continue
        g, r = got.astype(np.float64), ref.astype(np.float64)
        # Equal infinities (e.g. -inf outside a top-k filter) and NaN at the same place count as 0 error.
        same = (g == r) | (np.isnan(g) & np.isnan(r))
        with np.errstate(invalid="ignore"):
            err = float(np.max(np.where(same, 0.0, np.abs(g - r))))
        rows.append(Row(name, err if not np.isnan(err) else np.inf, tol))
    return rows


def run_fixture(path, weights: tuple[str, ...] = (), strict: bool | None = None) -> tuple[int, list[Row], str]:
    """-> (status, rows, message). `strict` (default: `strict_default()`) fails *not checked* rows."""
    strict = strict_default() if strict is None else strict
    fx = load_fixture(path)
    if not fx.outputs:
        return EXIT_MISMATCH, [], "the fixture records no outputs (out/*), so nothing can be shown"
    module = str(fx.meta.get("module", ""))
    runner = find_runner(module)
    if runner is None:
        from fdm_jax.parity.runners import IMPORT_ERRORS

        if IMPORT_ERRORS:  # a broken runner module may be the one this fixture needs: a failure
            broken = "; ".join(f"runner module {m} failed to import: {err.splitlines()[0]}"
                               for m, err in IMPORT_ERRORS.items())
            return EXIT_MISMATCH, [], f"no runner for module {module!r}; {broken}"
        return (EXIT_MISMATCH if strict else EXIT_UNKNOWN), [], f"unknown module: {module}"
    try:
        produced = runner(fx, Weights(fx, tuple(weights)))
    except Exception as e:  # a conversion error or a runner failure is a parity failure, reported in one line
        return EXIT_MISMATCH, [], f"{type(e).__name__}: {e}"
    rows = compare(fx, produced)
    return (EXIT_OK if all(r.passes(strict) for r in rows) else EXIT_MISMATCH), rows, module


def _format(row: Row) -> str:
    err = "—" if row.error is None else f"{row.error:.3e}"
    status = "NOT CHECKED" if row.not_checked else ("ok" if row.ok else "FAIL")
    return f"  {row.name:32s} max_abs_err {err:>10s}  tol {row.tolerance:.1e}  {status} {row.note}".rstrip()


def main(argv: list[str] | None = None) -> int:
    import jax

    # The fixtures are float32 on CPU; GPUs/TPUs would otherwise use reduced-precision matmuls.
    jax.config.update("jax_default_matmul_precision", "highest")

    ap = argparse.ArgumentParser(prog="python -m fdm_jax.parity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fixtures", nargs="+", help="fixture .npz files of the original code")
    ap.add_argument("--weights", action="append", default=[], metavar="FILE.pth",
                    help="take the weights from this original checkpoint (repeatable) instead of param/*")
    ap.add_argument("--strict", action=argparse.BooleanOptionalAction, default=strict_default(),
                    help="fail outputs the runner cannot check here and unknown modules "
                         "(default: on when CI=true)")
    args = ap.parse_args(argv)

    failed = unknown = False
    for path in args.fixtures:
        if not Path(path).is_file():
            print(f"{path}: no such fixture file")
            failed = True
            continue
        status, rows, msg = run_fixture(path, tuple(args.weights), strict=args.strict)
        label = {EXIT_OK: "PASS", EXIT_MISMATCH: "FAIL", EXIT_UNKNOWN: "UNKNOWN"}[status]
        if status != EXIT_OK:
            label += f"  ({msg})"
        elif any(r.not_checked for r in rows):
            label += f"  ({sum(r.not_checked for r in rows)} of {len(rows)} outputs not checked, see below)"
        elif args.weights:
            label += f"  (weights: {', '.join(args.weights)})"
        print(f"{path}: {label}")
        for r in rows:
            print(_format(r))
        failed |= status == EXIT_MISMATCH
        unknown |= status == EXIT_UNKNOWN
    return EXIT_MISMATCH if failed else (EXIT_UNKNOWN if unknown else EXIT_OK)


def cli() -> None:
    sys.exit(main())
