#!/usr/bin/env bash
# The real-API-server tier: prove the manifests in dist/ against a real
# kube-apiserver + etcd (no mocks, no kubelet, no controllers).
#
# For each server version, and for each "scenario" on an EMPTY cluster state:
#   file:<name>  every manifest file alone           (one scenario per file)
#   dir          `kubectl apply -f DIR` of the whole directory
# the checks in checks.mjs run (apply in one pass with no warning, idempotent
# re-apply, pods admitted under PodSecurity restricted, RuntimeClass gating,
# HPA/PDB/Ingress/NetworkPolicy/Service/StatefulSet wiring read back from the
# server).
#
# A fresh, empty cluster state per scenario = a fresh etcd key prefix
# (--etcd-prefix) and a restarted kube-apiserver on the same etcd; nothing
# needs to be deleted (namespace deletion would need a controller-manager).
#
# Usage: run.sh [--versions v1.35.4,v1.37.2] [--dist DIR] [--keep-logs]
#               [--only-dir | --only-files]
#   --versions  the kube-apiserver versions (default: KUBERNETES_VERSIONS of
#               verify/tools/versions.env, the oldest supported minor and the newest)
# Env:   STEPFLOW_KIT_CACHE  binary cache (default ~/.cache/stepflow-kit)
#        NODE                node binary (default: node)
# Exit:  0 when every check passed; the last line is "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"

K8S_VERSIONS=$KUBERNETES_VERSIONS
DIST="$ROOT/dist"
DO_FILES=1
DO_DIR=1
NODE=${NODE:-node}
READY_TIMEOUT_S=180

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

need_arg() { [ "$#" -ge 2 ] || { echo "run.sh: $1 needs a value (try --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --versions) need_arg "$@"; K8S_VERSIONS=$(parse_versions "$2"); shift 2 ;;
    --versions=*) K8S_VERSIONS=$(parse_versions "${1#*=}"); shift ;;
    --dist) need_arg "$@"; DIST=$2; shift 2 ;;
    --dist=*) DIST=${1#*=}; shift ;;
    --keep-logs) export KEEP_LOGS=1; shift ;;
    --only-dir) DO_FILES=0; shift ;;
    --only-files) DO_DIR=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

# shellcheck disable=SC2034 # read by verify/lib/harness.sh (log, require_tools)
HARNESS_TIER=cluster
usage_error() { echo "run.sh: $*" >&2; exit 2; }
require_tools openssl python3 "$NODE"
[ -d "$DIST" ] || usage_error "manifest directory '$DIST' does not exist (pass --dist DIR)."
DIST=$(cd "$DIST" && pwd)
mapfile -t FILES < <(find "$DIST" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | LC_ALL=C sort)
[ "${#FILES[@]}" -gt 0 ] || usage_error "no *.yaml/*.yml/*.json manifests in '$DIST'."

cluster_install "$K8S_VERSIONS"   # builds what the cache lacks (a cold build takes long)
harness_init cluster
harness_on_exit stop_servers

make_pki
start_etcd "$ETCD_VERSION"
log "manifests: $DIST (${#FILES[@]} files); versions: $K8S_VERSIONS"

scenario_n=0
run_scenario() { # run_scenario VERSION NAME TARGET...
  local v=$1 name=$2; shift 2
  scenario_n=$((scenario_n + 1))
  local prefix="/stepflow-verify/$scenario_n" logf="$WORK/apiserver-$v-$scenario_n.log"
  log "=== $v $name"
  if ! start_apiserver "$v" "$prefix" "$logf"; then
    cat "$WORK/start-msg" >&2
    record_fail "$name" "cluster starts" "kube-apiserver/$v" "$(cat "$WORK/start-msg")" "$v"
    stop_apiserver; return 0
  fi
  local rc=0
  KUBECACHEDIR="$WORK/kcache-$scenario_n" \
    "$NODE" "$HERE/checks.mjs" --kubectl "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" \
      --server-version "$v" --scenario "$name" --results "$RESULTS" -- "$@" || rc=$?
  if [ "$rc" -gt 1 ]; then
    record_fail "$name" "checks.mjs runs" "-" "checks.mjs crashed with exit code $rc (see output above)" "$v"
  fi
  stop_apiserver
}

for v in $K8S_VERSIONS; do
  if [ "$DO_FILES" = 1 ]; then
    for f in "${FILES[@]}"; do run_scenario "$v" "file:$(basename "$f")" "$f"; done
  fi
  if [ "$DO_DIR" = 1 ]; then run_scenario "$v" "dir:$(basename "$DIST")/" "$DIST"; fi
done

# --- summary -----------------------------------------------------------------
harness_summary "cluster tier"
