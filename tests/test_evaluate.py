"""evaluate.py / fdm_jax.evaluation: buckets, mask assignment, resume without redoing work, the table."""

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fdm_jax.cli.config_loading import load_config
from fdm_jax.data.masks import ProvidedMasks
from fdm_jax.data.sources import ArrayImageSource
from fdm_jax.evaluation import (EvaluationError, PutFdmInpainter, assign_masks, evaluate, hole_ratio,
                                parse_buckets)
from fdm_jax.metrics.fid import FIDStats, fid_score
from fdm_jax.inference.put_fdm import load_put_fdm
from fdm_jax.weights import cached_path
from shared_paths import fixtures_dir, require, shared_dir

REPO = Path(__file__).resolve().parents[1]
PLACES = shared_dir() / "data/images/places2_256_freeform"
PCONV = shared_dir() / "data/masks/pconv_test"
TINY = "configs/paris.py:tiny"
PUT = fixtures_dir() / "put_fdm"


def _weights() -> list[str]:
    """The original's tiny PUT+FDM weights of the fixtures (converting them takes ~2 s; initialising a
    random codec takes ~25 s on the test machine)."""
    return [str(require(PUT / "put_fdm_codec_fdm_tuning.pth")), str(require(PUT / "put_fdm_transformer.pth"))]
FAST_METRICS = ("lpips", "ssim", "psnr", "mae", "diversity", "fid")


def _mask_folder(root: Path, n: int = 40, size: int = 128) -> ProvidedMasks:
    """n masks (255 = hole) with one rectangular hole each, hole ratios spread over (0.05, 0.7)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(n):
        ratio = 0.05 + 0.65 * k / (n - 1)
        h = int(round(size * np.sqrt(ratio)))
        w = min(size, int(round(ratio * size * size / h)))
        y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        m = np.zeros((size, size), np.uint8)
        m[y:y + h, x:x + w] = 255
        cv2.imwrite(str(root / f"{k:05d}.png"), m)
    return ProvidedMasks(root)


def _images(n: int = 4) -> ArrayImageSource:
    """Smooth random colour images of 80x96 (the eval preprocessing resizes and crops them to 64)."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (5, 6, 3)).astype(np.uint8)
        out.append(cv2.resize(small, (96, 80), interpolation=cv2.INTER_LINEAR))
    return ArrayImageSource(out, [f"img{i}" for i in range(n)])


def _color_features(images: np.ndarray) -> np.ndarray:
    """A cheap 2-d feature for FID plumbing tests (the Inception path is the slow test)."""
    x = images.astype(np.float64) / 255.0
    return np.stack([x.mean(axis=(1, 2, 3)), x[..., 0].std(axis=(1, 2))], axis=1)


class _Counting:
    """An InpaintingModel wrapper counting the images it samples."""

    def __init__(self, model):
        self.model, self.name, self.size = model, model.name, model.size
        self.batches = 0

    def preprocess(self, image):
        return self.model.preprocess(image)

    def sample(self, images, masks, keys, num_samples):
        self.batches += 1
        return self.model.sample(images, masks, keys, num_samples)

    def fingerprint(self):
        return self.model.fingerprint()

    def reference_rows(self, buckets):
        return self.model.reference_rows(buckets)


@pytest.fixture(scope="module")
def tiny_model():
    require(cached_path("lpips_vgg16"))
    config, models, variables = load_put_fdm(_weights(), TINY)
    return PutFdmInpainter(config, models, variables, top_k=4, name="tiny PUT+FDM")


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    return _mask_folder(tmp_path_factory.mktemp("masks"))


def test_parse_buckets():
    b = parse_buckets("0.2-0.4, 0.4-0.6")
    assert [(x.lo, x.hi, x.label) for x in b] == [(0.2, 0.4, "0.2-0.4"), (0.4, 0.6, "0.4-0.6")]
    assert b[0].contains(0.4) and not b[0].contains(0.2) and not b[1].contains(0.4)  # (lo, hi]
    assert b[0].title == "20–40 %"
    for bad, msg in [("0.4-0.2", "lo < hi"), ("20-40", "not percent"), ("abc", "not 'lo-hi'"), ("", "no bucket"),
                     ("0.1-0.2,0.1-0.2", "twice")]:
        with pytest.raises(EvaluationError, match=msg):
            parse_buckets(bad)


def test_assign_masks_deterministic_in_bucket_and_prefix(masks):
    buckets = parse_buckets("0.2-0.4,0.4-0.6")
    a = assign_masks(masks, buckets, 4, 64, seed=0)
    assert a == assign_masks(masks, buckets, 4, 64, seed=0)
    for b in buckets:
        chosen = a[b.label]
        assert len(chosen) == 4 and len({c["mask_index"] for c in chosen}) == 4  # one distinct mask per image
        for c in chosen:
            r = hole_ratio(masks.load(c["mask_index"], 64))  # measured at the model size
            assert b.contains(r) and r == c["hole_ratio"]
    assert not {c["mask_index"] for c in a["0.2-0.4"]} & {c["mask_index"] for c in a["0.4-0.6"]}
    # The first k images get the same masks whatever the number of images.
    assert assign_masks(masks, buckets, 2, 64, seed=0)["0.4-0.6"] == a["0.4-0.6"][:2]
    assert assign_masks(masks, buckets, 4, 64, seed=1) != a
    with pytest.raises(EvaluationError, match=r"only \d+ of the 40 masks .* \(0.65, 0.99\]"):
        assign_masks(masks, parse_buckets("0.65-0.99"), 30, 64, seed=0)


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "samples").rglob("*.png"))}


def _strip(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in ("out_dir",)}


def test_resume_does_not_redo_work_and_gives_identical_results(tmp_path, tiny_model, masks):
    buckets = parse_buckets("0.2-0.4,0.4-0.6")
    kw = dict(num_samples=2, seed=3, batch_size=2, metrics=FAST_METRICS, fid_features=_color_features,
              progress=False)

    whole = _Counting(tiny_model)
    full = evaluate(whole, _images(), masks, buckets, out_dir=tmp_path / "full", **kw)
    assert full["complete"] and whole.batches == 4  # 2 buckets x 2 batches of 2 images

    part = _Counting(tiny_model)
    first = evaluate(part, _images(), masks, buckets, out_dir=tmp_path / "resumed", max_new_images=2, **kw)
    assert not first["complete"] and first["done"] == 2 and part.batches == 1
    assert not (tmp_path / "resumed/results.json").exists()
    done_before = _files(tmp_path / "resumed")
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "resumed/samples").rglob("*.png")}
    second = evaluate(part, _images(), masks, buckets, out_dir=tmp_path / "resumed", **kw)
    assert second["complete"] and part.batches == 4  # 3 more batches: the first one was not redone
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    lines = (tmp_path / "resumed/records.jsonl").read_text().splitlines()
    assert len(lines) == 8 and len({(json.loads(x)["bucket"], json.loads(x)["index"]) for x in lines}) == 8

    # Identical to the uninterrupted run: same sample files, same numbers.
    assert _files(tmp_path / "resumed") == _files(tmp_path / "full")
    assert all(_files(tmp_path / "resumed")[k] == v for k, v in done_before.items())
    assert _strip(second) == _strip(full)

    # A finished folder is not sampled again.
    again = evaluate(part, _images(), masks, buckets, out_dir=tmp_path / "resumed", **kw)
    assert part.batches == 4 and _strip(again) == _strip(full)

    # FID: real = the ground-truth images, fake = sample 0 of the bucket, from the saved PNGs.
    out = tmp_path / "full"
    for b in buckets:
        real, fake = FIDStats(dim=2), FIDStats(dim=2)
        def read(name):
            return cv2.imread(str(out / name))[..., ::-1]

        real.update_features(_color_features(np.stack([read(f"gt/{i:05d}.png") for i in range(4)])))
        fake.update_features(_color_features(np.stack([read(f"samples/{b.label}/{i:05d}_0.png") for i in range(4)])))
        assert full["buckets"][b.label]["metrics"]["fid"] == pytest.approx(fid_score(real.result(), fake.result()),
                                                                           rel=1e-9)
    # Per-image records hold every sample; the table value is the mean of sample 0.
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    lp0 = np.mean([r["metrics"]["lpips"][0] for r in recs if r["bucket"] == "0.2-0.4"])
    assert full["buckets"]["0.2-0.4"]["metrics"]["lpips"] == pytest.approx(lp0)
    assert all(len(r["metrics"]["ssim"]) == 2 and r["diversity"] > 0 for r in recs)
    table = (out / "table.md").read_text()
    assert "| tiny PUT+FDM |" in table and "FID ↓ 20–40 %" in table and "Div. ↑ 40–60 %" in table
    # grid.png: 2 buckets x 4 images, 4 labelled columns (masked input, 2 samples, original); the
    # cells are the saved PNGs, unchanged.
    grid = cv2.imread(str(out / "grid.png"))[..., ::-1]
    assert grid.shape[0] > 2 * 4 * 64 and grid.shape[1] > 4 * 64
    gt0 = read("gt/00000.png")
    hits = [(y, x) for y in range(grid.shape[0] - 63) for x in range(grid.shape[1] - 63)
            if grid[y, x, 0] == gt0[0, 0, 0] and np.array_equal(grid[y:y + 64, x:x + 64], gt0)]
    assert len(hits) == 2  # the original column of image 0, once per bucket
    plot = cv2.imread(str(out / "metrics.png"))
    assert plot is not None and plot.shape[1] >= 3 * 200  # one panel per metric


def test_other_settings_in_the_same_folder_is_an_error(tmp_path, tiny_model, masks):
    buckets = parse_buckets("0.4-0.6")
    kw = dict(num_samples=1, batch_size=2, metrics=("ssim",), progress=False, num_images=2)
    evaluate(tiny_model, _images(), masks, buckets, out_dir=tmp_path, seed=0, **kw)
    with pytest.raises(EvaluationError, match=r"seed was 0, now 1"):
        evaluate(tiny_model, _images(), masks, buckets, out_dir=tmp_path, seed=1, **kw)
    with pytest.raises(EvaluationError, match=r"top_k was 4, now 5"):
        other = PutFdmInpainter(tiny_model.config, tiny_model.models, tiny_model.variables, top_k=5)
        evaluate(other, _images(), masks, buckets, out_dir=tmp_path, seed=0, **kw)


def test_paste_known_keeps_the_known_pixels(tmp_path, tiny_model, masks):
    evaluate(tiny_model, _images(), masks, parse_buckets("0.2-0.4"), out_dir=tmp_path, num_samples=1, batch_size=2,
             num_images=2, metrics=("psnr",), paste_known=True, progress=False)
    for i in range(2):
        gt = cv2.imread(str(tmp_path / f"gt/{i:05d}.png"))
        s = cv2.imread(str(tmp_path / f"samples/0.2-0.4/{i:05d}_0.png"))
        known = cv2.imread(str(tmp_path / f"masks/0.2-0.4/{i:05d}.png"), cv2.IMREAD_GRAYSCALE) == 0
        assert known.any() and (~known).any()
        np.testing.assert_array_equal(s[known], gt[known])


def test_paper_reference_only_for_paper_datasets():
    config = load_config(TINY)
    from fdm_jax.put_fdm import build_models

    models = build_models(config.model)
    rows = PutFdmInpainter(config, models, {}).reference_rows(parse_buckets("0.2-0.4,0.4-0.6,0.1-0.2"))
    assert [r["label"].split(" (")[0] for r in rows] == ["PUT+FDM", "PUT"]
    assert "paper" in rows[0]["label"]
    assert rows[0]["values"]["fid"] == {"0.2-0.4": config.reference.fid_small, "0.4-0.6": config.reference.fid_large}
    assert rows[0]["values"]["lpips"]["0.4-0.6"] == config.reference.lpips_large
    assert rows[1]["values"] == {"fid": {"0.2-0.4": config.reference.put_fid_small,
                                         "0.4-0.6": config.reference.put_fid_large}}
    config.data.name = "demo"  # the demo config is built on paris:tiny but is not Paris
    assert PutFdmInpainter(config, models, {}).reference_rows(parse_buckets("0.2-0.4")) == []


def _cli():
    spec = importlib.util.spec_from_file_location("evaluate_cli", REPO / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_cli_on_places_with_pconv_masks(tmp_path, capsys):
    require(cached_path("lpips_vgg16"))
    data, mask_dir = require(PLACES), require(PCONV)
    out = tmp_path / "eval"
    w = _weights()
    args = ["--checkpoint", w[0], "--checkpoint", w[1], "--config", TINY, "--data", str(data), "--mask-dir",
            str(mask_dir),
            "--num-images", "4", "--num-samples", "2", "--batch-size", "4", "--top-k", "4",
            "--metrics", "lpips,ssim,psnr,mae,diversity", "--out", str(out)]
    assert _cli()(args) == 0
    captured = capsys.readouterr()
    assert "evaluating" in captured.err  # the progress bar
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["data"]["name"] == "places2_256_freeform"
    assert list(results["buckets"]) == ["0.2-0.4", "0.4-0.6"]
    for label, (lo, hi) in {"0.2-0.4": (0.2, 0.4), "0.4-0.6": (0.4, 0.6)}.items():
        ratios = results["buckets"][label]["hole_ratio"]
        assert lo < ratios["min"] <= ratios["max"] <= hi
        assert set(results["buckets"][label]["metrics"]) == {"lpips", "ssim", "psnr", "mae", "diversity"}
    table = (out / "table.md").read_text()
    assert table in captured.out
    assert "paper, Table 1, Paris StreetView" in table  # paris:tiny is a Paris config
    assert str(load_config(TINY).reference.lpips_small) in table
    # The images are the set's images/, not its masks/.
    assert all(json.loads(x)["image"].endswith(".jpg") for x in (out / "records.jsonl").read_text().splitlines())


@pytest.mark.parametrize("args,expect", [
    (["--buckets", "0.6-0.4"], "lo < hi"),
    (["--data", "/nonexistent/folder"], "--data /nonexistent/folder"),
    (["--num-samples", "1", "--metrics", "diversity"], "needs --num-samples >= 2"),
    (["--metrics", "fid,sharpness"], "unknown sharpness"),
])
def test_cli_bad_input_is_one_line_error(tmp_path, capsys, args, expect):
    base = {"--data": str(tmp_path), "--mask-dir": str(tmp_path), "--buckets": "0.2-0.4"}
    (tmp_path / "a.png").write_bytes(cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes())
    opts = dict(base)
    rest = []
    it = iter(args)
    for a in it:
        if a in opts:
            opts[a] = next(it)
        else:
            rest.append(a)
    argv = ["--checkpoint", "random", "--config", TINY, "--out", str(tmp_path / "o")] + \
        [x for kv in opts.items() for x in kv] + rest
    assert _cli()(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0], err


@pytest.mark.slow
def test_cli_with_inception_fid(tmp_path, capsys):
    """The full metric set, FID through the FID Inception (2048-d; scipy sqrtm takes about a minute)."""
    require(cached_path("lpips_vgg16"))
    require(cached_path("fid_inception"))
    out = tmp_path / "eval"
    w = _weights()
    args = ["--checkpoint", w[0], "--checkpoint", w[1], "--config", TINY, "--data", str(require(PLACES)), "--mask-dir",
            str(require(PCONV)), "--buckets", "0.4-0.6", "--num-images", "4", "--num-samples", "2",
            "--batch-size", "4", "--top-k", "4", "--out", str(out)]
    assert _cli()(args) == 0
    results = json.loads((out / "results.json").read_text())
    entry = results["buckets"]["0.4-0.6"]
    assert set(entry["metrics"]) == {"fid", "lpips", "ssim", "psnr", "mae", "diversity"}
    assert entry["metrics"]["fid"] is not None and entry["metrics"]["fid"] > 0
