"""Labelled grids and plots (fdm_jax.io.visualize): images land where they should, labels are drawn."""

import numpy as np
import pytest

from fdm_jax.io.visualize import PAD, labelled_grid, panel_plot


def test_cells_are_placed_unchanged_and_labels_are_drawn():
    rng = np.random.default_rng(0)
    cells = [[rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(3)] for _ in range(2)]
    grid = labelled_grid(cells, col_labels=["input", "masked input", "sample 0"], row_labels=["FDM", "no FDM"],
                         title="demo")
    # Find each cell by exact match: the images are copied, not resampled.
    for row in cells:
        for c in row:
            hits = [(y, x) for y in range(grid.shape[0] - 39) for x in range(grid.shape[1] - 47)
                    if grid[y, x, 0] == c[0, 0, 0] and np.array_equal(grid[y:y + 40, x:x + 48], c)]
            assert len(hits) == 1
    # The label strip above the first cell holds dark text pixels; a blank strip would be all white.
    y_cells = min(y for y in range(grid.shape[0]) if np.array_equal(grid[y, -PAD - 48:-PAD], cells[0][2][0]))
    strip = grid[:y_cells - PAD]
    assert (strip < 128).any()
    left = grid[y_cells:y_cells + 40, :PAD * 2]
    assert left.shape[0] == 40


def test_text_differs_per_label():
    cell = np.zeros((32, 32, 3), np.uint8)
    a = labelled_grid([[cell]], col_labels=["sample 0"])
    b = labelled_grid([[cell]], col_labels=["input"])
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_errors():
    with pytest.raises(ValueError, match="column labels"):
        labelled_grid([[np.zeros((8, 8, 3))]], col_labels=["a", "b"])
    with pytest.raises(ValueError, match="different sizes"):
        labelled_grid([[np.zeros((8, 8, 3)), np.zeros((9, 8, 3))]])


def test_panel_plot_writes_a_png(tmp_path):
    import cv2

    path = panel_plot({"LPIPS": ([0, 1, 2], [0.1, 0.2, 0.4]), "FID": ([0, 1, 2], [10.0, None, 900.0])},
                      tmp_path / "p.png", xlabel="hole ratio", xticklabels=["0-20%", "20-40%", "40-60%"])
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] > 100 and (img < 128).any()


def test_training_grid_and_loss_curve(tmp_path):
    import cv2

    from fdm_jax.train.metrics_log import MetricsLog, plot_metrics, write_grid

    batch = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3))
    path = write_grid(tmp_path / "g.png", {"masked input": batch * 0.5, "reconstruction": batch})
    img = cv2.imread(str(path))[..., ::-1]
    assert img.shape[1] == 2 * 32 + 3 * PAD and img.shape[0] > 2 * 32 + 3 * PAD  # a label strip on top
    np.testing.assert_array_equal(img[-PAD - 32:-PAD, -PAD - 32:-PAD], np.clip(batch[1], 0, 255).astype(np.uint8))
    log = MetricsLog(tmp_path / "run", tensorboard=False)
    for step in range(1, 6):
        log.write(step, {"loss": 1.0 / step, "lr": 1e-3})
    log.close()
    png = plot_metrics(tmp_path / "run" / "metrics.jsonl", tmp_path / "run" / "loss_curves.png")
    assert png is not None and cv2.imread(str(png)) is not None
    assert plot_metrics(tmp_path / "none.jsonl", tmp_path / "x.png") is None
