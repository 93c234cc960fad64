"""Compile the Python files under the given directories that have no .pyc yet.

Used by containers/inference/Containerfile after each install step (torch, the pinned
requirements, the package): the .pyc files are unchecked-hash ones, because the root file
system is read-only at run time and a file's mtime in an image layer says nothing. Files
an earlier layer compiled are left alone, so each layer carries only the .pyc files of
what it installed (`python3 -m compileall` would write every one of them again, and the
package's layer would carry torch's). Exit 1 when a file does not compile.

    python3 precompile.py /opt/venv
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import py_compile
import sys


def main(roots: list[str]) -> int:
    if not roots:
        print("usage: precompile.py DIR...", file=sys.stderr)
        return 2
    ok = True
    for top in roots:
        for root, _dirs, files in os.walk(top):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(root, name)
                if os.path.exists(importlib.util.cache_from_source(path)):
                    continue
                ok &= bool(compileall.compile_file(
                    path, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
