#!/usr/bin/env bash
# Test runner for containers/inference (the StepFlow inference component server).
#
# Creates (once) a virtualenv outside the repository, keyed by a hash of the pinned
# dependency versions, installs the package into it and runs its pytest suite on CPU,
# offline. See containers/inference/README.md.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: verify/inference/run.sh [--recreate] [--venv-only] [-h|--help] [-- PYTEST_ARGS...]

  --recreate    delete the cached virtualenv and install everything again
  --venv-only   create/refresh the virtualenv and print its path, run no tests
  -h, --help    show this help
  --            pass the remaining arguments to pytest

Environment:
  STEPFLOW_KIT_CACHE  cache root (default: $HOME/.cache/stepflow-kit); the venv lives in
                      $STEPFLOW_KIT_CACHE/inference-venv-<hash of pinned versions>/
  PYTHON              interpreter used to create the venv (default: python3)
USAGE
}

recreate=0
venv_only=0
pytest_args=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --recreate) recreate=1 ;;
        --venv-only) venv_only=1 ;;
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

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pkg_dir="$repo_root/containers/inference"
python="${PYTHON:-python3}"
cache_root="${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}"

# Cache key: every pinned requirement (lines with '==') plus the interpreter version.
py_version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
key="$({
    echo "python $py_version"
    grep -ho '"[^"]*==[^"]*"' "$pkg_dir/pyproject.toml" | sort
} | sha256sum | cut -c1-12)"
venv="$cache_root/inference-venv-$key"

if [ "$recreate" -eq 1 ] && [ -d "$venv" ]; then
    echo "run.sh: removing $venv"
    rm -rf "$venv"
fi

if [ ! -f "$venv/.deps-complete" ]; then
    echo "run.sh: creating $venv (python $py_version)"
    rm -rf "$venv"
    mkdir -p "$cache_root"
    start=$(date +%s)
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip setuptools
    # Install only the dependencies (runtime + test extra) from pyproject.toml.
    "$venv/bin/python" - "$pkg_dir/pyproject.toml" >"$venv/requirements.txt" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
for req in project["dependencies"] + project["optional-dependencies"]["test"]:
    print(req)
PY
    "$venv/bin/python" -m pip install --quiet --progress-bar off -r "$venv/requirements.txt"
    end=$(date +%s)
    touch "$venv/.deps-complete"
    echo "run.sh: dependencies installed in $((end - start)) s; venv size: $(du -sh "$venv" | cut -f1)"
else
    echo "run.sh: using cached venv $venv"
fi

# Install the package itself (non-editable) from a copy of its sources, so that the
# build leaves no build/ or *.egg-info behind in the repository.
build_dir="$(mktemp -d)"
trap 'rm -rf "$build_dir"' EXIT
cp -r "$pkg_dir/pyproject.toml" "$pkg_dir/README.md" "$pkg_dir/src" "$build_dir/"
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation \
    --force-reinstall "$build_dir"

if [ "$venv_only" -eq 1 ]; then
    echo "$venv"
    exit 0
fi

# Offline: nothing in the tests may reach a model hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
export STEPFLOW_KIT_CONTRACT="$repo_root/src/contract.json"

set +e
(cd "$pkg_dir" && "$venv/bin/python" -m pytest -p no:cacheprovider -ra tests ${pytest_args[@]+"${pytest_args[@]}"})
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "run.sh: pytest collected no tests; treating as failure" >&2
    exit 1
fi
exit "$rc"
