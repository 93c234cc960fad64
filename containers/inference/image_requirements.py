"""Print the image's requirements, taken from pyproject.toml (the one place of the pins).

Used by the Containerfile's build stage (build context: containers/inference):

    python3 image_requirements.py pyproject.toml --torch-version 2.5.1 \\
        --sdk-version 0.11.0 --sdk-extras http > requirements.txt

* torch is left out (the build installs it first, from the CUDA index), but
  --torch-version must equal the torch pin: an image must not carry another torch than
  the one the tests ran with.
* stepflow-py is the one of --sdk-version: the pin in [project] dependencies (0.11,
  the default) or the one in a [dependency-groups] "sdk-*" group (0.13); any other
  version is refused. --sdk-extras replaces the extras ("" for none).
Exit 1 with a message on stderr when the build arguments disagree with the pins.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)$")


def _name(req: str) -> str:
    m = _PIN.match(req.strip())
    if not m:
        raise SystemExit(f"image_requirements: not an exact pin (name==version): {req!r}")
    return m.group(1).lower().replace("_", "-")


def _version(req: str) -> str:
    m = _PIN.match(req.strip())
    assert m
    return m.group(3)


def image_requirements(
    pyproject: dict, torch_version: str, sdk_version: str, sdk_extras: str
) -> list[str]:
    deps = pyproject["project"]["dependencies"]
    torch = [r for r in deps if _name(r) == "torch"]
    if not torch or _version(torch[0]) != torch_version:
        pinned = _version(torch[0]) if torch else "nothing"
        raise ValueError(
            f"TORCH_VERSION={torch_version} but pyproject.toml pins torch=={pinned}; "
            "change both together (the tests run with the pyproject.toml pin)"
        )
    # Candidate SDK requirement lists: the default one and each sdk-* group.
    candidates = [[r for r in deps if _name(r) == "stepflow-py"]]
    for group, reqs in sorted(pyproject.get("dependency-groups", {}).items()):
        if group.startswith("sdk-"):
            candidates.append(list(reqs))
    chosen = None
    known = []
    for reqs in candidates:
        sdk = [r for r in reqs if _name(r) == "stepflow-py"]
        if sdk:
            known.append(_version(sdk[0]))
            if _version(sdk[0]) == sdk_version:
                chosen = reqs
    if chosen is None:
        raise ValueError(
            f"STEPFLOW_PY_VERSION={sdk_version} is not pinned in pyproject.toml "
            f"(pinned: {', '.join(known)})"
        )
    extras = f"[{sdk_extras}]" if sdk_extras else ""
    out = [r for r in deps if _name(r) not in ("torch", "stepflow-py")]
    for r in chosen:
        out.append(f"stepflow-py{extras}=={sdk_version}" if _name(r) == "stepflow-py" else r)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject")
    parser.add_argument("--torch-version", required=True)
    parser.add_argument("--sdk-version", required=True)
    parser.add_argument("--sdk-extras", default="")
    args = parser.parse_args(argv)
    with open(args.pyproject, "rb") as f:
        pyproject = tomllib.load(f)
    try:
        reqs = image_requirements(pyproject, args.torch_version, args.sdk_version, args.sdk_extras)
    except ValueError as exc:
        print(f"image_requirements: {exc}", file=sys.stderr)
        return 1
    print("\n".join(reqs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
