#!/usr/bin/env bash
# Test runner for containers/python-sdk (the stepflow_kit_worker reconnect loop).
#
# Creates (once, outside the repository, reused while the pins are equal) a virtualenv
# with the StepFlow 0.13 generation of src/contract.json (stepflow-py and the
# stepflow-orchestrator wheel, whose stepflow-server binary the tests start and kill)
# plus tests/requirements.txt, then runs the pytest suite. The last line is pytest's
# summary ("N passed ...").
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: containers/python-sdk/tests/run.sh [--recreate] [-h|--help] [-- PYTEST_ARGS...]

  --recreate   delete the cached virtualenv and install it again
  -h, --help   show this help
  --           pass the remaining arguments to pytest

Environment:
  STEPFLOW_KIT_CACHE  cache root (default: $HOME/.cache/stepflow-kit); the venv is
                      $STEPFLOW_KIT_CACHE/python-sdk-tests-<hash of the pins and python>/
  PYTHON              interpreter used to create the venv (default: python3, >= 3.11)
USAGE
}

recreate=0
pytest_args=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --recreate) recreate=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        --)
            shift
            pytest_args=("$@")
            break
            ;;
        *)
            echo "run.sh: unknown argument: $1" >&2
            usage >&2
            exit 2
            ;;
    esac
    shift
done

tests_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$tests_dir/../../.." && pwd)"
python="${PYTHON:-python3}"
cache_root="${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}"
contract="$repo_root/src/contract.json"

# The generation-0.13 pins of the contract, one requirement per line.
stepflow_reqs="$("$python" - "$contract" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    gen = json.load(f)["generations"]["0.13"]
print(f"stepflow-py=={gen['sdk']}")
print(f"stepflow-orchestrator=={gen['orchestrator']}")
PY
)"
py_version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
reqs="$(printf '%s\n' "$stepflow_reqs"; grep -v -e '^#' -e '^[[:space:]]*$' "$tests_dir/requirements.txt")"
key="$(printf 'python %s\n%s\n' "$py_version" "$reqs" | sha256sum | cut -c1-12)"
venv="$cache_root/python-sdk-tests-$key"

if [ "$recreate" -eq 1 ] && [ -d "$venv" ]; then
    echo "run.sh: removing $venv"
    rm -rf "$venv"
fi
if [ ! -f "$venv/.complete" ]; then
    echo "run.sh: creating $venv (python $py_version): $(tr '\n' ' ' <<<"$reqs")"
    rm -rf "$venv"
    mkdir -p "$cache_root"
    start=$(date +%s)
    "$python" -m venv "$venv"
    printf '%s\n' "$reqs" >"$venv/requirements.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off \
        -r "$venv/requirements.txt"
    touch "$venv/.complete"
    echo "run.sh: installed in $(($(date +%s) - start)) s"
else
    echo "run.sh: using cached venv $venv"
fi

export STEPFLOW_KIT_CONTRACT="$contract" PYTHONDONTWRITEBYTECODE=1
cd "$tests_dir/.."
set +e
PYTHONPATH="" "$venv/bin/python" -m pytest -p no:cacheprovider -ra tests \
    ${pytest_args[@]+"${pytest_args[@]}"}
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "run.sh: pytest collected no tests; treating as failure" >&2
    rc=1
fi
exit "$rc"
