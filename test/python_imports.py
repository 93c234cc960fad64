"""The import graph of the Python files below a directory, for test/python-imports.test.ts.

    python3 test/python_imports.py DIR

prints JSON: {"graph": {file: [file it imports, ...]}, "ambiguous": ["file: name", ...]},
files relative to DIR. Every import counts, also one inside a function (a late import
still closes a cycle), in try/except or under `if TYPE_CHECKING`.

How a name is found (as Python finds it when the file runs with its directory, or the
directory above its top package, on sys.path): each .py file belongs to a root, the
nearest directory above it that is not a package (has no __init__.py); its module name
is its path below that root. `import a.b.c` and `from a.b import c` go to the longest of
a.b.c, a.b, a that the importing file's own root holds; else to the one other root that
holds `a`; names no root holds are outside the repository (the standard library, PyPI)
and left out, names several other roots hold are reported as ambiguous. Relative imports
resolve within the importing file's package. An import of a submodule is an edge to the
submodule only (not to its package's __init__.py, which Python runs first anyway).
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

SKIP = {"node_modules", "lib", "dist", "__pycache__", "build"}


def python_files(top: Path) -> list[Path]:
    out = []
    for d, dirs, names in os.walk(top):
        dirs[:] = [x for x in dirs if x not in SKIP and not x.startswith(".")]
        out += [Path(d) / n for n in names if n.endswith(".py")]
    return sorted(out)


def root_and_name(path: Path) -> tuple[Path, str]:
    parts = [] if path.name == "__init__.py" else [path.stem]
    d = path.parent
    while (d / "__init__.py").is_file():
        parts.insert(0, d.name)
        d = d.parent
    return d, ".".join(parts)


def main(top: Path) -> dict:
    files = python_files(top)
    module: dict[Path, tuple[Path, str]] = {f: root_and_name(f) for f in files}
    roots: dict[Path, dict[str, Path]] = {}
    for f, (root, name) in module.items():
        roots.setdefault(root, {})[name] = f
    graph: dict[str, set[str]] = {}
    ambiguous: list[str] = []

    def in_root(root: Path, dotted: str) -> Path | None:
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            found = roots[root].get(".".join(parts[:n]))
            if found is not None:
                return found
        return None

    def resolve(f: Path, dotted: str) -> Path | None:
        own = module[f][0]
        found = in_root(own, dotted)
        if found is not None:
            return found
        top_name = dotted.split(".")[0]
        others = [r for r in roots if r != own and top_name in roots[r]]
        if len(others) > 1:
            ambiguous.append(f"{f.relative_to(top)}: {dotted} ({', '.join(str(r.relative_to(top)) for r in others)})")
            return None
        return in_root(others[0], dotted) if others else None

    for f in files:
        root, name = module[f]
        package = name if f.name == "__init__.py" else name.rpartition(".")[0]
        targets: list[Path | None] = []
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                targets += [resolve(f, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".") if package else []
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join([*base_parts, *([node.module] if node.module else [])])
                    for alias in node.names:
                        sub = f"{base}.{alias.name}" if base else alias.name
                        targets.append(roots[root].get(sub) or (in_root(root, base) if base else None))
                else:
                    assert node.module is not None
                    for alias in node.names:
                        targets.append(resolve(f, f"{node.module}.{alias.name}"))
        graph[str(f.relative_to(top))] = {str(t.relative_to(top)) for t in targets if t is not None and t != f}
    return {"graph": {k: sorted(v) for k, v in sorted(graph.items())}, "ambiguous": ambiguous}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 test/python_imports.py DIR")
    print(json.dumps(main(Path(sys.argv[1]).resolve())))
