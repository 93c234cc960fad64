#!/usr/bin/env bash
# The scheduling tier: the manifests on a simulated production cluster with a
# real kube-scheduler and kube-controller-manager (the newest Kubernetes,
# KUBERNETES_VERSION of verify/tools/versions.env) and kwok
# standing in for the kubelets of simulated nodes; etcd and kube-apiserver as
# in the cluster tier. Everything listens on 127.0.0.1 and is stopped on exit.
#
# Scenarios, each on an empty cluster (see checks.mjs and README.md):
#   prod        dist/prod.yaml on 3 CPU nodes (2 zones) + 2 GPU nodes (2 GPUs
#               each): placement, claims, spread, core identity, maintenance
#   prod-0.11   the same for the 0.11 generation's prod (synthesized here)
#   no-gpu      prod without GPU nodes: the GPU pods stay Pending (scheduler)
#   dev         dist/dev.yaml on one untainted node
#   mutation    prod with the GPU toleration removed must fail the prod check
#   scale       50 nodes, N prod installations (own namespaces) applied at once
#
# Usage: run.sh [--dist DIR] [--prod FILE] [--only LIST] [--installations N]
#               [--keep-logs]
#   --dist DIR          manifests (default: dist/), prod.yaml and dev.yaml in it
#   --prod FILE         prod manifest for prod, no-gpu and mutation instead of
#                       DIR/prod.yaml (e.g. a deliberately broken one)
#   --only LIST         comma-separated scenarios (default: all of them)
#   --installations N   installations in the scale scenario (default 20)
#   --keep-logs         keep the work directory (server logs) and say where
# Env:   STEPFLOW_KIT_CACHE  binary cache (default ~/.cache/stepflow-kit)
#        NODE                node binary (default: node)
# Exit:  0 when every check passed, 1 when one failed, 2 on a usage error;
#        the last line is "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck disable=SC2034 # read by verify/lib/harness.sh (log, require_tools)
HARNESS_TIER=scheduling

ALL_SCENARIOS="prod prod-0.11 no-gpu dev mutation scale"
DIST="$ROOT/dist"
PROD=""
ONLY=$ALL_SCENARIOS
INSTALLATIONS=20
NODE=${NODE:-node}
K8S=$KUBERNETES_VERSION

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
bad_usage() { echo "run.sh: $*" >&2; usage >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dist) [ $# -ge 2 ] || bad_usage "--dist needs a directory"; DIST=$2; shift 2 ;;
    --prod) [ $# -ge 2 ] || bad_usage "--prod needs a file"; PROD=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || bad_usage "--only needs a list"; ONLY=${2//,/ }; shift 2 ;;
    --installations)
      if [ $# -lt 2 ] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then bad_usage "--installations needs a positive number"; fi
      INSTALLATIONS=$2; shift 2 ;;
    --keep-logs) export KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument '$1'" ;;
  esac
done
for s in $ONLY; do
  [[ " $ALL_SCENARIOS " == *" $s "* ]] || bad_usage "unknown scenario '$s' (scenarios: $ALL_SCENARIOS)"
done

require_tools openssl python3 curl "$NODE"
[ -d "$DIST" ] || bad_usage "manifest directory '$DIST' does not exist"
DIST=$(cd "$DIST" && pwd)
[ -n "$PROD" ] || PROD="$DIST/prod.yaml"
[ -f "$PROD" ] || bad_usage "no prod manifest '$PROD'"
PROD=$(cd "$(dirname "$PROD")" && pwd)/$(basename "$PROD")
DEV="$DIST/dev.yaml"
[ -f "$DEV" ] || bad_usage "no dev manifest '$DEV'"

# --- binaries (cached by key; only the first run builds) ----------------------------
cluster_install "$K8S" controllers
harness_init scheduling
CHECKS_PID=""
harness_on_exit stop_servers
# shellcheck disable=SC2016 # expanded when the trap runs
harness_on_exit 'stop_pid "$CHECKS_PID"'

# --- manifests the library synthesizes here ----------------------------------------
needs() { [[ " $ONLY " == *" $1 "* ]]; }
if needs prod-0.11 || needs scale; then
  log "compiling the library (tsc -p .)"
  (cd "$ROOT" && npx --no-install tsc -p .)
fi
if needs prod-0.11; then
  (cd "$ROOT" && "$NODE" lib/main.js --generation 0.11 --outdir "$WORK/gen-0.11")
fi
if needs scale; then
  "$NODE" "$HERE/synth-installations.js" --count "$INSTALLATIONS" --outdir "$WORK/scale" >&2
fi

# --- one cluster per scenario ------------------------------------------------------
# kube-controller-manager (the HPA syncs every 5 s, default 15 s), kube-scheduler
# and kwok come from lib.sh (start_controllers, stop_controllers).
# shellcheck disable=SC2034 # read by start_controllers (lib.sh)
HPA_SYNC_PERIOD=5s

scenario_n=0
run_scenario() { # run_scenario NAME MANIFEST...
  local name=$1; shift
  scenario_n=$((scenario_n + 1))
  local t0=$SECONDS margs=() f
  for f in "$@"; do margs+=(--manifest "$f"); done
  log "=== $name"
  if ! start_apiserver "$K8S" "/stepflow-scheduling/$scenario_n" "$WORK/apiserver-$scenario_n.log" ||
     ! start_controllers "$scenario_n" "$K8S" "$HERE/kwok-stages.yaml"; then
    cat "$WORK/start-msg" >&2
    record_fail "$name" "cluster starts" "$K8S" "$(cat "$WORK/start-msg")"
    stop_controllers; stop_apiserver; return 0
  fi
  local rc=0
  # in the background, so that a signal stops the run at once (cleanup stops it too)
  "$NODE" "$HERE/checks.mjs" --scenario "$name" --kubectl "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" \
    --results "$RESULTS" --work "$WORK" --apiserver-pid "$APISERVER_PID" "${margs[@]}" &
  CHECKS_PID=$!
  wait "$CHECKS_PID" || rc=$?
  CHECKS_PID=""
  if [ "$rc" -gt 1 ]; then
    record_fail "$name" "checks.mjs runs" "-" "checks.mjs crashed with exit code $rc (see output above)"
  fi
  stop_controllers
  stop_apiserver
  log "=== $name: $((SECONDS - t0))s"
}

make_pki
start_etcd "$ETCD_VERSION"
[ "$("$(tool_bin kubernetes kubectl "$K8S")" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')" = "$K8S" ] ||
  log "warning: kubectl is not $K8S"
for s in $ONLY; do
  case $s in
    prod) run_scenario "prod:$(basename "$PROD")" "$PROD" ;;
    prod-0.11) run_scenario "prod:0.11" "$WORK/gen-0.11/prod.yaml" ;;
    no-gpu) run_scenario no-gpu "$PROD" ;;
    dev) run_scenario dev "$DEV" ;;
    mutation) run_scenario mutation "$PROD" ;;
    scale) mapfile -t scale_files < <(find "$WORK/scale" -name '*.yaml' | LC_ALL=C sort)
           run_scenario scale "${scale_files[@]}" ;;
  esac
done

# --- summary -------------------------------------------------------------------------
harness_summary "scheduling tier"
