#!/usr/bin/env bash
# Test runner for containers/inference (the StepFlow inference component server).
#
# Runs the package's pytest suite on CPU, offline, for both StepFlow generations:
#   0.11  in a virtualenv with the pinned runtime + test requirements of pyproject.toml
#         (torch, transformers, stepflow-py 0.11, stepflow-orchestrator 0.11.1);
#   0.13  in the same virtualenv, with stepflow-py 0.13.0 and stepflow-orchestrator 0.13.0
#         (dependency groups sdk-0_13 and test-0_13 of pyproject.toml) installed with
#         `pip install --target` into a separate directory that is put first on
#         PYTHONPATH, so it shadows stepflow-py 0.11 (the two cannot share one
#         environment, and a second torch venv would cost another ~6 GB).
# Both are created once, outside the repository, and reused while the pins are equal.
# See containers/inference/README.md.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: verify/inference/run.sh [--generation 0.11|0.13|all] [--recreate] [--venv-only]
                               [-h|--help] [-- PYTEST_ARGS...]

  --generation G  test StepFlow generation G only (default: all = 0.11, then 0.13)
  --recreate      delete the cached virtualenv and 0.13 SDK directory, install again
  --venv-only     create/refresh the virtualenv and the 0.13 SDK directory, print their
                  paths, run no tests
  -h, --help      show this help
  --              pass the remaining arguments to pytest (to each generation's run)

Environment:
  STEPFLOW_KIT_CACHE  cache root (default: $HOME/.cache/stepflow-kit). The venv lives in
                      $STEPFLOW_KIT_CACHE/inference-venv-<hash of the pins and python>/,
                      the 0.13 SDK in $STEPFLOW_KIT_CACHE/inference-sdk-<version>/
  PYTHON              interpreter used to create the venv (default: python3, >= 3.11)
USAGE
}

generations=(0.11 0.13)
recreate=0
venv_only=0
pytest_args=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --generation)
            if [ "$#" -lt 2 ]; then
                echo "run.sh: --generation needs a value" >&2
                usage >&2
                exit 2
            fi
            case "$2" in
                0.11 | 0.13) generations=("$2") ;;
                all) generations=(0.11 0.13) ;;
                *)
                    echo "run.sh: unknown generation: $2" >&2
                    usage >&2
                    exit 2
                    ;;
            esac
            shift
            ;;
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

py_version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
# Prints the requirements of the named lists of pyproject.toml, one per line:
# "deps" = [project] dependencies, "extra:X" = optional-dependencies X, "group:X" =
# [dependency-groups] X.
read_reqs() {
    "$python" - "$pkg_dir/pyproject.toml" "$@" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    data = tomllib.load(f)
project = data["project"]
for name in sys.argv[2:]:
    if name == "deps":
        reqs = project["dependencies"]
    elif name.startswith("extra:"):
        reqs = project["optional-dependencies"][name[6:]]
    elif name.startswith("group:"):
        reqs = data["dependency-groups"][name[6:]]
    else:
        raise SystemExit(f"read_reqs: unknown list {name}")
    for req in reqs:
        print(req)
PY
}

# Cache key of the venv: the interpreter version plus the runtime and test
# requirements (the pins), so a changed pin means a new venv.
key="$({
    echo "python $py_version"
    read_reqs deps extra:test | sort
} | sha256sum | cut -c1-12)"
venv="$cache_root/inference-venv-$key"

sdk_reqs="$(read_reqs group:sdk-0_13 group:test-0_13)"
sdk_version="$(sed -n 's/^stepflow-py==//p' <<<"$sdk_reqs")"
if [ -z "$sdk_version" ]; then
    echo "run.sh: no stepflow-py==<version> in [dependency-groups] sdk-0_13 of pyproject.toml" >&2
    exit 1
fi
sdk_dir="$cache_root/inference-sdk-$sdk_version"
# The SDK directory is valid for exactly these requirements and this interpreter.
sdk_stamp="$(printf 'python %s\n%s\n' "$py_version" "$sdk_reqs")"

if [ "$recreate" -eq 1 ]; then
    for d in "$venv" "$sdk_dir"; do
        if [ -d "$d" ]; then
            echo "run.sh: removing $d"
            rm -rf "$d"
        fi
    done
fi

if [ ! -f "$venv/.deps-complete" ]; then
    echo "run.sh: creating $venv (python $py_version)"
    rm -rf "$venv"
    mkdir -p "$cache_root"
    start=$(date +%s)
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip setuptools
    # Install only the dependencies (runtime + test extra) from pyproject.toml.
    read_reqs deps extra:test >"$venv/requirements.txt"
    "$venv/bin/python" -m pip install --quiet --progress-bar off -r "$venv/requirements.txt"
    end=$(date +%s)
    touch "$venv/.deps-complete"
    echo "run.sh: dependencies installed in $((end - start)) s; venv size: $(du -sh "$venv" | cut -f1)"
else
    echo "run.sh: using cached venv $venv"
fi

needs_sdk=0
for g in "${generations[@]}"; do
    if [ "$g" = 0.13 ]; then needs_sdk=1; fi
done
if [ "$venv_only" -eq 1 ]; then needs_sdk=1; fi
if [ "$needs_sdk" -eq 1 ]; then
    if [ ! -f "$sdk_dir/.complete" ] || [ "$(cat "$sdk_dir/.complete")" != "$sdk_stamp" ]; then
        echo "run.sh: installing $(tr '\n' ' ' <<<"$sdk_reqs")into $sdk_dir"
        rm -rf "$sdk_dir"
        mkdir -p "$sdk_dir"
        start=$(date +%s)
        # The venv's interpreter, so compiled wheels (grpcio, protobuf) match it.
        # shellcheck disable=SC2086 # one requirement per word
        "$venv/bin/python" -m pip install --quiet --progress-bar off \
            --target "$sdk_dir" $sdk_reqs
        end=$(date +%s)
        printf '%s' "$sdk_stamp" >"$sdk_dir/.complete"
        echo "run.sh: 0.13 SDK installed in $((end - start)) s; size: $(du -sh "$sdk_dir" | cut -f1)"
    else
        echo "run.sh: using cached 0.13 SDK $sdk_dir"
    fi
fi

# Install the package itself (non-editable) from a copy of its sources, so that the
# build leaves no build/ or *.egg-info behind in the repository. Like the image, the
# package carries the worker loop of containers/python-sdk (stepflow_kit_worker) as a
# second top-level package.
build_dir="$(mktemp -d)"
trap 'rm -rf "$build_dir"' EXIT
cp -r "$pkg_dir/pyproject.toml" "$pkg_dir/README.md" "$pkg_dir/src" "$build_dir/"
cp -r "$repo_root/containers/python-sdk/stepflow_kit_worker" "$build_dir/src/"
find "$build_dir/src" -name __pycache__ -type d -prune -exec rm -rf {} +
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation \
    --force-reinstall "$build_dir"

if [ "$venv_only" -eq 1 ]; then
    echo "$venv"
    echo "$sdk_dir"
    exit 0
fi

# Offline: nothing in the tests may reach a model hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
export STEPFLOW_KIT_CONTRACT="$repo_root/src/contract.json"

overall=0
summary=()
for g in "${generations[@]}"; do
    echo "run.sh: === StepFlow generation $g ==="
    pythonpath=""
    if [ "$g" = 0.13 ]; then pythonpath="$sdk_dir"; fi
    set +e
    (cd "$pkg_dir" && PYTHONPATH="$pythonpath" "$venv/bin/python" -m pytest -p no:cacheprovider \
        -ra --sdk-generation "$g" tests ${pytest_args[@]+"${pytest_args[@]}"})
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then
        echo "run.sh: generation $g: pytest collected no tests; treating as failure" >&2
        rc=1
    fi
    summary+=("generation $g: pytest exit $rc")
    if [ "$rc" -ne 0 ]; then overall=1; fi
done
for line in "${summary[@]}"; do echo "run.sh: $line"; done
exit "$overall"
