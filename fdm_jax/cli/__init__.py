"""What the commands (train.py, evaluate.py, python -m fdm_jax.inpaint) share: config loading and
the persistent compilation cache flag."""
