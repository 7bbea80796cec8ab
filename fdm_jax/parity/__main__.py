
from fdm_jax.parity.harness import cli

if __name__ == "__main__":
    cli()
