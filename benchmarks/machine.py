"""What the benchmarks record about the machine, and the thread pinning of the side-by-side ones, once.

Run as `python benchmarks/<script>.py`, a script finds this module beside it (sys.path[0])."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pin_xla_threads(threads: int, extra_flags: str = "") -> None:
    """XLA's CPU thread count (and `extra_flags`) through XLA_FLAGS, appended to what is set; must run
    before jax is imported, as the thread pools start with the backend."""
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                               + ("false" if threads == 1 else "true")
                               + f" intra_op_parallelism_threads={threads} " + extra_flags).strip()
