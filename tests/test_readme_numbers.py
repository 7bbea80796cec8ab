"""The README's result tables for the shipped model are the numbers its benchmarks wrote: every row of
the held-out comparison and of the schedule table is read from benchmarks/results/*.json, rounded as
printed, and compared with the README's cells. A rerun of a benchmark that changes a number fails here
until the README says the new one.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
METRICS = ("lpips", "fid", "psnr", "ssim", "l1_hole")
DIGITS = {"lpips": 3, "fid": 1, "psnr": 2, "ssim": 3, "l1_hole": 4}


def _rows(text: str, first_cell: str) -> list[list[str]]:
    """Cells of every markdown table row whose first cell starts with `first_cell`."""
    out = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith(first_cell):
            out.append(cells)
    return out


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def test_heldout_comparison_rows_are_the_eval_results():
    readme = (REPO / "README.md").read_text()
    ours = json.loads((RESULTS / "put_fdm_small_eval.json").read_text())["all"]
    oracle = json.loads((RESULTS / "put_fdm_small_oracle.json").read_text())["all"]
    rows = {"put_fdm_small (FDM)": ours["put_fdm"], "put_fdm_small without FDM": ours["put_no_fdm"],
            "oracle: its codec decoding the true tokens": oracle["oracle"], "cv2 TELEA r5": ours["telea"],
            "cv2 NS r5": ours["ns"], "mean colour fill": ours["mean_colour"]}
    for label, metrics in rows.items():
        found = _rows(readme, label)
        assert found, f"README has no row {label!r}"
        cells = found[0][1:1 + len(METRICS)]
        want = [_fmt(metrics[m], DIGITS[m]) for m in METRICS]
        assert cells == want, f"README row {label!r}: {cells} but the results say {want}"
    # the prose's FDM claim: the feature L2 change, as a signed percentage
    change = 100 * ours["table3"]["feat_change"]
    assert f"here {change:+.1f} %" in readme


def test_schedule_rows_are_the_schedule_results():
    readme = (REPO / "README.md").read_text()
    rows = json.loads((RESULTS / "put_fdm_small_schedules.json").read_text())["rows"]
    labels = {("sequential", 1, None): "sequential, 1 token / pass", ("sequential", 4, None): "sequential, 4 tokens / pass",
              ("parallel", 1, 8): "parallel (MaskGIT cosine), 8 passes", ("parallel", 1, 16): "parallel, 16 passes",
              ("parallel", 1, 32): "parallel, 32 passes"}
    seen = 0
    for r in rows:
        key = (r["schedule"], r["num_token_per_iter"], r["num_passes"] if r["schedule"] == "parallel" else None)
        if key not in labels or r["top_k"] != 20:
            continue
        found = _rows(readme, labels[key])
        assert found, f"README has no schedule row {labels[key]!r}"
        want = [f"{r['passes']:.0f}", _fmt(r["cpu_s_per_image"], 2), _fmt(r["lpips"], 3), _fmt(r["fid"], 1),
                _fmt(r["psnr"], 2)]
        assert found[0][1:6] == want, f"README row {labels[key]!r}: {found[0][1:6]} but the results say {want}"
        seen += 1
    assert seen == len(labels)


def test_row_reader_reads_cells():
    # the reader itself: a row with a changed number does not match
    text = "| cv2 NS r5 | 0.211 | 125.0 |\n| other | 1 |"
    assert _rows(text, "cv2 NS r5") == [["cv2 NS r5", "0.211", "125.0"]]
    assert _rows(text.replace("0.211", "0.212"), "cv2 NS")[0][1] == "0.212"
