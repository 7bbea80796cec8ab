"""Parity harness against fixtures of the original implementations (see harness.py)."""

from fdm_jax.parity.harness import (EXIT_MISMATCH, EXIT_OK, EXIT_UNKNOWN, Fixture, Weights, compare,
                                    load_fixture, main, register, run_fixture)

__all__ = ["EXIT_MISMATCH", "EXIT_OK", "EXIT_UNKNOWN", "Fixture", "Weights", "compare", "load_fixture",
           "main", "register", "run_fixture"]
