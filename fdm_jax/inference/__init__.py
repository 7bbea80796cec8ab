"""Loading trained or original models for inference: PUT + FDM (put_fdm) and the one-pass
generators Big-LaMa / TSGL (generators); the model registry (registry) and the models shipped in the
package, loadable by name (shipped)."""
