"""The generic training loop: jitted, sharded, resumable steps of any phase (PUT + FDM's in
fdm_jax/put_fdm/phases.py, TSGL's in fdm_jax/tsgl/phase.py), checkpointing, optimisers, logging."""

from fdm_jax.train.loop import TrainingError, TrainingInterrupted, data_mesh, train, train_phase
from fdm_jax.train.state import TrainState

__all__ = ["TrainState", "TrainingError", "TrainingInterrupted", "data_mesh", "train", "train_phase"]
