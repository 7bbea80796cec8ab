"""JAX's persistent compilation cache for the command entry points (train.py, evaluate.py,
python -m fdm_jax.inpaint): a compiled program is written to disk and a later process with the same
program, shapes and JAX version loads it instead of compiling again (the 35-layer sampler and the
random-init programs take minutes to compile on a CPU).

Where: `--compilation-cache DIR`, else the environment variable FDM_JAX_COMPILATION_CACHE, else
$XDG_CACHE_HOME/fdm_jax/jax_cache (~/.cache/fdm_jax/jax_cache). The value `none` (flag or variable)
disables it. JAX's own threshold applies: programs that compile in under a second are not written.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "FDM_JAX_COMPILATION_CACHE"
DISABLED = "none"


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fdm_jax" / "jax_cache"


def resolve(value: str | None = None) -> Path | None:
    """The cache folder for a flag value (None: the environment variable, then the default); None
    when disabled."""
    value = value if value is not None else os.environ.get(ENV)
    if value is not None and value.strip().lower() == DISABLED:
        return None
    return Path(value).expanduser() if value else default_dir()


def setup(value: str | None = None) -> Path | None:
    """Point JAX's persistent compilation cache at `resolve(value)` (creating it), or switch it off.
    Call before the first compilation. Returns the folder, or None when disabled."""
    import jax

    path = resolve(value)
    if path is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    return path


def define_flag(flag_values) -> None:
    """--compilation-cache DIR|none on a command's absl FlagValues (fdm_jax/cli/flags.py)."""
    from absl import flags

    flags.DEFINE_string("compilation-cache", None, f"persistent compilation cache folder, or 'none' to disable "
                        f"(default: ${ENV}, else {default_dir()})", flag_values=flag_values)


def notice(what: str) -> None:
    """One line on stderr before a program's first compilation in this process, saying where the
    compiled program is kept for the next process (or that nothing is kept). Process 0 only, in a
    multi-process run (the others compile the same program)."""
    import sys

    import jax

    if jax.process_index() != 0:
        return

    where = (f"cached in {jax.config.jax_compilation_cache_dir} for next time"
             if jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir
             else "no persistent cache: --compilation-cache DIR keeps it for next time")
    print(f"compiling {what} (first call; {where}) ...", file=sys.stderr, flush=True)
