"""Data for training and evaluation: image sources (folders, tensorflow-datasets builders, the
built-in demo images), the original's training masks, preprocessing, and the deterministic,
resumable, device-sharded training iterator."""
