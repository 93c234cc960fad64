#!/usr/bin/env bash
# Test runner for containers/python-sdk (the stepflow_kit_worker reconnect loop).
#
# Runs the pytest suite in a virtualenv (created once, outside the repository, reused
# while the versions are equal) holding the StepFlow 0.13 generation of src/contract.json
# (stepflow-py and the stepflow-orchestrator wheel, whose stepflow-server the tests start
# and kill) plus tests/requirements.txt. The last line is pytest's summary
# ("N passed ..."). The runner is shared with verify/inference/run.sh:
# verify/fixtures/stepflow_fixtures/pytest_tiers.py; --help lists the options.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
PYTHONPATH="$repo/verify/fixtures" exec "${PYTHON:-python3}" -m stepflow_fixtures.pytest_tiers python-sdk "$@"
