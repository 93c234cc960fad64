"""Runs `python -m stepflow_inference` with a Python audit hook that records every
file-system write (open for writing, mkdir, rename, remove, ...) to the file named by
STEPFLOW_TEST_WRITE_AUDIT. Used to check that the server only writes where a read-only
root filesystem allows it. (Writes made from C/C++/Rust code bypass the hook; the test
also checks that HOME and the working directory stay empty.)"""

import os
import runpy
import sys

_fd = os.open(
    os.environ["STEPFLOW_TEST_WRITE_AUDIT"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {
    "os.mkdir",
    "os.remove",
    "os.rmdir",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.utime",
    "shutil.rmtree",
    "shutil.copyfile",
    "shutil.copymode",
    "shutil.copystat",
    "os.mkfifo",
    "os.mknod",
}
_TWO_PATH_EVENTS = {
    "os.rename",
    "os.replace",
    "os.link",
    "os.symlink",
    "shutil.move",
    "shutil.copytree",
}


def _record(event, path):
    if isinstance(path, int) or path is None:
        return
    try:
        p = os.fsdecode(os.fspath(path))
    except TypeError:
        return
    os.write(_fd, f"{event}\t{os.path.abspath(p)}\n".encode())


def _hook(event, args):
    if event == "open":
        path, mode, flags = args
        writes = (
            any(c in mode for c in "wax+")
            if isinstance(mode, str)
            else bool((flags or 0) & _WRITE_FLAGS)
        )
        if writes:
            _record(event, path)
    elif event in _PATH_EVENTS:
        _record(event, args[0])
    elif event in _TWO_PATH_EVENTS:
        _record(event, args[0])
        _record(event, args[1])


sys.addaudithook(_hook)
sys.argv = ["stepflow_inference", *sys.argv[1:]]
runpy.run_module("stepflow_inference", run_name="__main__", alter_sys=True)
