#!/usr/bin/env bash
# Test runner for containers/inference (the StepFlow inference component server).
#
# Runs the package's pytest suite on CPU, offline, for both StepFlow generations:
#   0.11  in a virtualenv with the pinned runtime + test requirements of pyproject.toml
#         (torch, transformers, stepflow-py 0.11, stepflow-orchestrator 0.11.1);
#   0.13  in the same virtualenv, with stepflow-py 0.13.0 and stepflow-orchestrator 0.13.0
#         (dependency groups sdk-0_13 and test-0_13 of pyproject.toml) installed with
#         `pip install --target` into a separate directory put first on PYTHONPATH.
# Both are created once, outside the repository, and reused while the pins are equal.
# The runner is shared with containers/python-sdk/tests/run.sh:
# verify/fixtures/stepflow_fixtures/pytest_tiers.py; --help lists the options. See
# containers/inference/README.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHONPATH="$repo/verify/fixtures" exec "${PYTHON:-python3}" -m stepflow_fixtures.pytest_tiers inference "$@"
