"""Training of PUT + FDM: the four phases as jitted, sharded, resumable steps (see loop.py)."""

from fdm_jax.train.loop import TrainingError, TrainingInterrupted, data_mesh, train, train_phase
from fdm_jax.train.phases import Phase, make_phase
from fdm_jax.train.state import TrainState

__all__ = ["Phase", "TrainState", "TrainingError", "TrainingInterrupted", "data_mesh", "make_phase", "train", "train_phase"]
