"""Command lines through absl flags and ml_collections.config_flags, shared by train.py, evaluate.py
and python -m fdm_jax.inpaint.

    flags_ = parse_flags(argv, prog="train.py", doc=__doc__, define=define, config_default="demo")
    flags_.config                     # the ConfigDict with every --config.KEY=VALUE applied
    flags_.config_file                # the file it came from (None without a config)
    flags_.workdir                    # other flags by name ('-' in a flag name reads as '_')

`--config` takes a file, `file:variant` or a shipped config's name (`paris:tiny`); overrides come as
`--config.run.max_steps=100` or `--config.run.max_steps 100`; an unknown key or flag, a bad value or
variant is a one-line `CommandLineError` before any model is built. Each call parses a private
FlagValues, so commands can be called again in one process (tests, notebooks).
"""

from __future__ import annotations

import re
import sys
import types
import warnings
from typing import Callable, Sequence

from absl import flags
from ml_collections import config_flags

from fdm_jax.cli.config_loading import ConfigError, closest_keys, resolve_spec


class CommandLineError(ValueError):
    """A bad flag, config spec, variant or override; the message is one line naming it."""


class HelpRequested(Exception):
    """--help was given; `.text` is the help to print."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def _resolve_config_args(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--config" and i + 1 < len(argv):
            out += ["--config=" + resolve_spec(argv[i + 1])]
            i += 2
            continue
        if a.startswith("--config="):
            a = "--config=" + resolve_spec(a[len("--config="):])
        out.append(a)
        i += 1
    return out


def _define(fv, full, config_default, define):
    config_flags.DEFINE_config_file(
        "config", config_default, "config file[:variant] or shipped config name; override any value with "
        "--config.KEY=VALUE", flag_values=fv, lock_config=True, sys_argv=full)
    if define is not None:
        define(fv)


def _one_line(e: BaseException, argv: list[str], config_default) -> str:
    overrides = [a[len("--config."):] for a in argv if a.startswith("--config.")]
    if overrides and isinstance(e, (AttributeError, KeyError)):
        # config_flags names only the last part of a missing key: find the override that misses.
        spec = next((a[len("--config="):] for a in argv if a.startswith("--config=")), config_default)
        base = parse_flags([f"--config={spec}"], prog="config").config if spec else None
        for o in overrides:
            key = o.split("=", 1)[0]
            node = base
            for part in key.split("."):
                if node is None or not hasattr(node, "keys") or part not in node:
                    close = closest_keys(base, key) if base is not None else []
                    hint = f"; did you mean {', '.join(close)}?" if close else ""
                    return f"config key {key!r} does not exist{hint}"
                node = node[part]
    if "has no attribute 'get_config'" in str(e):
        spec = next((a[len("--config="):] for a in argv if a.startswith("--config=")), config_default)
        return f"config file {spec!r} defines no get_config() function"
    required = re.search(r"Flag --([\w-]+) must have a value other than None", str(e))
    if required:
        return f"flag --{required.group(1)} is required"
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    if "Attempted" in str(e) or "earlier failure to load" in str(e):
        return f"config file could not be loaded ({lines[-1]})"
    # A variant get_config rejects: its own message is the last line of the wrapped traceback.
    return lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')} {lines[-1]}"


def parse_flags(argv: Sequence[str] | None, *, prog: str, doc: str = "",
                define: Callable[[flags.FlagValues], None] | None = None,
                config_default: str | None = None) -> types.SimpleNamespace:
    """Parses `argv` (default sys.argv[1:]); returns the flags as attributes plus `.config`.
    Raises CommandLineError (one line) or HelpRequested."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        default = resolve_spec(config_default) if config_default else None
        argv = _resolve_config_args(argv)
    except ConfigError as e:
        raise CommandLineError(str(e)) from None
    full = [prog] + argv
    # config_flags imports every config file as the module 'config_config' with the deprecated
    # SourceFileLoader.load_module, which executes into the module already in sys.modules: a file
    # without get_config would then run the previous file's get_config. Start from a fresh module.
    sys.modules.pop("config_config", None)
    fv = flags.FlagValues()
    if any(a in ("-h", "--help", "--helpfull", "-help") for a in argv):
        _define(fv, [prog], default, define)
        raise HelpRequested(f"{doc.rstrip()}\n\nflags:\n{fv.get_help()}")
    try:
        # Without --config on the command line, config_flags loads the default and defines the
        # override flags here, at definition time. Its loader uses the deprecated load_module (see
        # above); that warning is config_flags' own business, not the user's.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*load_module\(\) method is deprecated", category=DeprecationWarning)
            _define(fv, full, default, define)
            rest = fv(full)
    except (flags.Error, AttributeError, KeyError, OSError, TypeError, ValueError) as e:
        raise CommandLineError(_one_line(e, argv, default)) from None
    if len(rest) > 1:
        raise CommandLineError(f"unexpected argument {rest[1]!r} (flags look like --name=value)")
    config = fv["config"].value
    error = getattr(config, "_error", None) if type(config).__name__ == "_ErrorConfig" else None
    if error is not None:  # config_flags defers some load failures to the first access
        raise CommandLineError(_one_line(error, argv, default)) from None
    values = {name.replace("-", "_"): fv[name].value for name in fv}
    values["config_file"] = config_flags.get_config_filename(fv["config"]) if values.get("config") else None
    return types.SimpleNamespace(**values)


def run(main: Callable[[types.SimpleNamespace], int], argv, **kwargs) -> int:
    """Parses the command line and calls main(flags); a bad command line prints one line, exits 2."""
    try:
        parsed = parse_flags(argv, **kwargs)
    except HelpRequested as h:
        print(h.text)
        return 0
    except CommandLineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return main(parsed)
