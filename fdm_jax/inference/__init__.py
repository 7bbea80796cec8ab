"""Loading trained or original models for inference: PUT + FDM (put_fdm) and the one-pass
generators Big-LaMa / TSGL (generators)."""
