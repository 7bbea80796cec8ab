"""`python -m fdm_jax.metrics --real DIR --fake DIR [...]`: see fdm_jax/metrics/folders.py."""

import sys

from fdm_jax.metrics.folders import main

if __name__ == "__main__":
    sys.exit(main())
