"""Converters from the original PyTorch checkpoints to Flax variable trees."""
