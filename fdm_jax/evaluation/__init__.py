from fdm_jax.evaluation.runner import *  # noqa: F401,F403
from fdm_jax.evaluation.runner import __all__  # noqa: F401
