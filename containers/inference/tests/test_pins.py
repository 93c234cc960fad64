"""One set of pins for the image and the tests: pyproject.toml is the only place that
names the versions; the Containerfile's build-argument defaults must agree with it and
with src/contract.json, and the environment the tests run in must hold exactly them."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

PKG_DIR = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)$")


def _pyproject() -> dict:
    with open(PKG_DIR / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _pins(reqs: list[str]) -> dict[str, str]:
    pins = {}
    for req in reqs:
        m = _PIN.match(req.strip())
        assert m, f"not an exact pin (name==version): {req!r}"
        pins[m.group(1).lower().replace("_", "-")] = m.group(3)
    return pins


def runtime_pins() -> dict[str, str]:
    return _pins(_pyproject()["project"]["dependencies"])


def arg_defaults(name: str) -> list[str]:
    """Every `ARG name=default` of the Containerfile (one per stage that declares it)."""
    text = (PKG_DIR / "Containerfile").read_text()
    return re.findall(rf"^ARG\s+{re.escape(name)}=(\S*)\s*$", text, flags=re.M)


def test_every_requirement_is_pinned():
    data = _pyproject()
    _pins(data["project"]["dependencies"])
    for reqs in data["project"]["optional-dependencies"].values():
        _pins(reqs)
    for reqs in data["dependency-groups"].values():
        _pins(reqs)


def test_containerfile_torch_version_equals_the_pin():
    defaults = arg_defaults("TORCH_VERSION")
    assert defaults, "Containerfile declares no ARG TORCH_VERSION=<default>"
    pin = runtime_pins()["torch"]
    assert set(defaults) == {pin}, (
        f"Containerfile TORCH_VERSION defaults {defaults} != pyproject.toml torch=={pin}"
    )


def test_containerfile_sdk_version_equals_the_pin_and_the_contract(contract):
    default_gen = contract["defaultGeneration"]
    gen = contract["generations"][default_gen]
    # The image builds the contract's default generation unless told otherwise.
    assert arg_defaults("STEPFLOW_GENERATION") == [default_gen]
    defaults = arg_defaults("STEPFLOW_PY_VERSION")
    assert defaults and set(defaults) == {gen["sdk"]}, defaults
    extras = arg_defaults("STEPFLOW_PY_EXTRAS")
    assert extras and set(extras) == {gen["sdkExtras"]}
    # The 0.11 SDK (with its "http" extra) is the package's own dependency.
    deps = _pyproject()["project"]["dependencies"]
    assert runtime_pins()["stepflow-py"] == contract["generations"]["0.11"]["sdk"]
    sdk_req = next(r for r in deps if r.startswith("stepflow-py"))
    assert sdk_req.startswith(f"stepflow-py[{contract['generations']['0.11']['sdkExtras']}]==")
    # The 0.13 generation's SDK and core versions come from pyproject.toml too.
    groups = _pyproject()["dependency-groups"]
    assert _pins(groups["sdk-0_13"])["stepflow-py"] == contract["generations"]["0.13"]["sdk"]
    assert (
        _pins(groups["test-0_13"])["stepflow-orchestrator"]
        == contract["generations"]["0.13"]["orchestrator"]
    )
    assert (
        _pins(_pyproject()["project"]["optional-dependencies"]["test"])["stepflow-orchestrator"]
        == contract["generations"]["0.11"]["orchestrator"]
    )


@pytest.mark.parametrize("name", sorted(runtime_pins()))
def test_tests_run_with_the_pinned_versions(name):
    # torch from PyPI has no local version label; the image's cu121 build is
    # "2.5.1+cu121", so compare the public version.
    assert version(name).split("+")[0] == runtime_pins()[name]


def test_transformers_accepts_the_pinned_torch():
    from transformers.utils import is_torch_available

    assert is_torch_available(), "transformers disabled the pinned torch"


def _image_requirements(*args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, str(PKG_DIR / "image_requirements.py"), str(PKG_DIR / "pyproject.toml")]
        + list(args),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_image_requirements_are_the_pins_with_the_selected_sdk(contract):
    """What the Containerfile installs (besides torch from the CUDA index)."""
    pins = runtime_pins()
    torch = arg_defaults("TORCH_VERSION")[0]
    expected_rest = sorted(
        f"{n}=={v}" for n, v in pins.items() if n not in ("torch", "stepflow-py")
    )
    for gen in ("0.11", "0.13"):
        g = contract["generations"][gen]
        p = _image_requirements(
            "--torch-version", torch, "--sdk-version", g["sdk"], "--sdk-extras", g["sdkExtras"]
        )
        assert p.returncode == 0, p.stderr
        lines = p.stdout.split()
        extras = f"[{g['sdkExtras']}]" if g["sdkExtras"] else ""
        assert f"stepflow-py{extras}=={g['sdk']}" in lines
        assert sorted(line for line in lines if not line.startswith("stepflow-py")) == (
            expected_rest
        )
        assert not any(line.startswith("torch") for line in lines)


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ("--torch-version", "0.0.1", "--sdk-version", "0.11.0"),
            f"pins torch=={runtime_pins()['torch']}",
        ),
        (("--torch-version", runtime_pins()["torch"], "--sdk-version", "0.0.1"), "is not pinned"),
    ],
)
def test_image_requirements_refuse_unpinned_versions(args, message):
    p = _image_requirements(*args)
    assert p.returncode == 1
    assert message in p.stderr
