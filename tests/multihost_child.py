"""Runs train.py or evaluate.py (argv[1]) as one process of tests/test_multihost.py, recording every
file the process writes, so the test can tell which process wrote what.

One line per write to $FDM_JAX_WRITE_LOG (absolute path): Python-level opens with a write flag and
renames/replaces (audit hooks; tensorboardX, json files, matplotlib, orbax's metadata), and
cv2.imwrite (PNG grids and evaluation images, written from C++). The log is written with os.write on
a descriptor opened before the hook, so it records itself never, and survives a SIGKILL.
"""

import os
import runpy
import sys

_fd = os.open(os.environ["FDM_JAX_WRITE_LOG"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _record(path) -> None:
    if isinstance(path, int):
        return
    os.write(_fd, (os.path.abspath(os.fsdecode(path)) + "\n").encode())


def _hook(event, args):
    if event == "open":
        path, _mode, flags = args
        if flags is not None and flags & _WRITE:
            _record(path)
    elif event == "os.rename":
        _record(args[1])


sys.addaudithook(_hook)

import cv2  # noqa: E402

_imwrite = cv2.imwrite


def _recording_imwrite(path, *args, **kwargs):
    _record(path)
    return _imwrite(path, *args, **kwargs)


cv2.imwrite = _recording_imwrite

script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
