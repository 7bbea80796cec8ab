"""What the evaluation runs: the InpaintingModel protocol and PUT + FDM behind it (PutFdmInpainter,
with the paper's Table 1 reference rows)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from fdm_jax.evaluation.buckets import Bucket, EvaluationError

_REFERENCE_DATASETS = {"paris": "Paris StreetView", "naturalscene": "Places"}
_REFERENCE_BUCKETS = {(0.2, 0.4): "small", (0.4, 0.6): "large"}


@runtime_checkable
class InpaintingModel(Protocol):
    """What `evaluate` needs from an inpainting model (PUT+FDM here; LaMa / TSGL implement it too).

    name: the row label of the table. size: the square input size. preprocess: uint8 (H, W, 3) ->
    float32 (size, size, 3) in [0, 255], the model's eval preprocessing. sample: images (B, S, S, 3)
    float32 [0, 255], masks (B, S, S, 1) float32 1 = known, keys (B,) typed PRNG keys (one per image;
    image i's samples must depend on keys[i] only) -> (num_samples, B, S, S, 3) float [0, 255], the
    model's own output (known pixels pasted or not, as the original model does). fingerprint: a
    JSON-able identity of the weights and settings (checked when resuming). reference_rows: the
    paper's published numbers for these buckets ([] when none apply)."""

    name: str
    size: int

    def preprocess(self, image: np.ndarray) -> np.ndarray: ...

    def sample(self, images: np.ndarray, masks: np.ndarray, keys, num_samples: int) -> np.ndarray: ...

    def fingerprint(self) -> dict: ...

    def reference_rows(self, buckets: Sequence[Bucket]) -> list[dict]: ...


def weights_digest(variables) -> str:
    """SHA-256 over every array of a variables tree (paths and bytes, in tree order)."""
    import jax

    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(variables):
        a = np.asarray(leaf)
        h.update(jax.tree_util.keystr(path).encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class PutFdmInpainter:
    """PUT + FDM (or PUT's pipeline without FDM: use_fdm=False) behind `InpaintingModel`.

    Samples with `fdm_jax.put_fdm.sampling.inpaint_samples` (top-K from the config's sampling.top_k unless
    given); returns the raw decoder output, known pixels not pasted back (as the original)."""

    def __init__(self, config, models: dict, variables: dict, *, use_fdm: bool = True, top_k: int | None = None,
                 name: str | None = None):
        self.config = config
        self.models = models
        self.variables = {k: variables[k] for k in ("codec", "sampler", "fdm") if k in variables}
        self.use_fdm = bool(use_fdm)
        self.top_k = int(config.sampling.top_k if top_k is None else top_k)
        self.num_token_per_iter = int(config.sampling.get("num_token_per_iter", 1))
        self.schedule = str(config.sampling.get("schedule", "sequential"))
        self.num_passes = int(config.sampling.get("num_passes", 16))
        num_tokens = int(models["sampler"].num_tokens) if hasattr(models["sampler"], "num_tokens") else None
        if self.top_k < 1 or (num_tokens is not None and self.top_k > num_tokens):
            raise EvaluationError(f"--top-k {self.top_k}: expected 1 <= top_k <= {num_tokens} (the sampler's classes)")
        self.size = int(config.image_size)
        self.name = name or ("PUT+FDM" if self.use_fdm else "PUT (no FDM)")
        self._compiled: set[int] = set()  # sample counts whose first compilation was announced
        self._digest: str | None = None

    @classmethod
    def from_checkpoints(cls, checkpoints: Sequence[str], config_spec="paris", *,
                         use_fdm: bool = True, top_k: int | None = None, name: str | None = None):
        from fdm_jax.inference.put_fdm import load_put_fdm

        config, models, variables = load_put_fdm(checkpoints, config_spec)
        if name is None:
            label = ", ".join(Path(c).name or str(c) for c in checkpoints)
            name = f"{'PUT+FDM' if use_fdm else 'PUT (no FDM)'} ({label})"
        return cls(config, models, variables, use_fdm=use_fdm, top_k=top_k, name=name)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        from fdm_jax.data.preprocess import preprocess_from_config

        return preprocess_from_config(image, self.config.data.eval_preprocess)

    def sample(self, images, masks, keys, num_samples: int) -> np.ndarray:
        import jax.numpy as jnp

        from fdm_jax.put_fdm.sampling import jit_inpaint_samples

        if num_samples not in self._compiled:  # the shared jitted sampler; say when it first compiles here
            from fdm_jax.cli.compilation_cache import notice

            self._compiled.add(num_samples)
            notice(f"the PUT+FDM sampler for batches of {len(images)}, {num_samples} sample(s)")
        m, v = self.models, self.variables
        out = jit_inpaint_samples(m["codec"], v["codec"], m["sampler"], v["sampler"], m["fdm"], v["fdm"],
                                  jnp.asarray(images, jnp.float32), jnp.asarray(masks, jnp.float32), keys,
                                  num_samples, top_k=self.top_k, num_token_per_iter=self.num_token_per_iter,
                                  use_fdm=self.use_fdm, schedule=self.schedule,
                                  num_passes=np.int32(self.num_passes))["inpainted_image"]
        return np.asarray(out)

    def fingerprint(self) -> dict:
        if self._digest is None:
            used = {k: v for k, v in self.variables.items() if self.use_fdm or k != "fdm"}
            self._digest = weights_digest(used)
        fp = {"method": "put_fdm", "use_fdm": self.use_fdm, "top_k": self.top_k, "image_size": self.size,
              "eval_preprocess": _plain(self.config.data.eval_preprocess), "weights_sha256": self._digest}
        if self.num_token_per_iter != 1:  # absent for the paper's 1, so earlier results still resume
            fp["num_token_per_iter"] = self.num_token_per_iter
        if self.schedule != "sequential":
            fp["schedule"], fp["num_passes"] = self.schedule, self.num_passes
        return fp

    def reference_rows(self, buckets: Sequence[Bucket]) -> list[dict]:
        cfg = self.config
        dataset = str(cfg.data.name) if "data" in cfg and "name" in cfg.data else ""
        ref = cfg.get("reference") if hasattr(cfg, "get") else None
        if dataset not in _REFERENCE_DATASETS or ref is None or "fid_small" not in ref:
            return []
        where = f"paper, Table 1, {_REFERENCE_DATASETS[dataset]}"
        rows = [("PUT+FDM", {"fid": "fid_{}", "lpips": "lpips_{}"}), ("PUT", {"fid": "put_fid_{}"})]
        out = []
        for method, keys in rows:
            values = {}
            for b in buckets:
                size = _REFERENCE_BUCKETS.get((round(b.lo, 6), round(b.hi, 6)))
                if size is None:
                    continue
                for metric, key in keys.items():
                    if key.format(size) in ref:
                        values.setdefault(metric, {})[b.label] = float(ref[key.format(size)])
            if values:
                out.append({"label": f"{method} ({where})", "values": values,
                            "source": str(ref.get("table1_source", ""))})
        return out


def _plain(cfg) -> Any:
    """ConfigDict / mapping -> plain JSON-able dict."""
    if hasattr(cfg, "to_dict"):
        cfg = cfg.to_dict()
    return json.loads(json.dumps(cfg, default=str))
