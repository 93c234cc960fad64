#!/usr/bin/env bash
# Helm tier: the chart `npm run synth` writes per environment (dist/helm/<env>/) through
# real Helm v4 (built from its Go module by verify/tools), against a real kube-apiserver
# with kube-controller-manager, kube-scheduler and kwok nodes beside it (127.0.0.1, the
# newest Kubernetes of verify/tools/versions.env). Per environment: helm lint, helm
# template (= dist/<env>.yaml but the Namespace), helm install --wait, helm upgrade to a
# changed release (verify/helm/releases.mjs), helm rollback, helm uninstall that keeps the
# StatefulSets' claims; each asserted from what the server then holds (checks.mjs).
#
# Usage: run.sh [--dist DIR] [--envs dev,prod] [--keep-logs]
#   --dist   the synthesized manifests and their charts (default dist/: DIR/<env>.yaml, DIR/helm/<env>/)
#   --envs   the environments (default dev,prod)
# Env:   STEPFLOW_KIT_CACHE  binary cache (default ~/.cache/stepflow-kit)
#        NODE                node binary (default: node)
# Exit:  0 when every check passed, 1 on a failed check, 2 on a usage error;
#        the last line is "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck disable=SC2034 # read by the harness functions
HARNESS_TIER=helm

DIST="$ROOT/dist"
ENVS="dev,prod"
NODE=${NODE:-node}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
bad_usage() { echo "run.sh: $*" >&2; usage >&2; exit 2; }
need_arg() { [ "$#" -ge 2 ] || bad_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dist) need_arg "$@"; DIST=$2; shift 2 ;;
    --envs) need_arg "$@"; ENVS=$2; shift 2 ;;
    --keep-logs) export KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument '$1'" ;;
  esac
done
require_tools openssl python3 curl "$NODE"
[ -d "$DIST" ] || bad_usage "no directory '$DIST'"
DIST=$(cd "$DIST" && pwd)
for e in ${ENVS//,/ }; do
  if [ ! -f "$DIST/$e.yaml" ] || [ ! -f "$DIST/helm/$e/Chart.yaml" ]; then
    bad_usage "no $DIST/$e.yaml with its chart $DIST/helm/$e/ (npm run synth writes both)"
  fi
done

cluster_install "$KUBERNETES_VERSION" controllers   # builds what the cache lacks
tools_install helm
HELM=$(tool_bin helm helm)
harness_init helm
harness_on_exit stop_servers
log "$("$HELM" version --short 2>&1); manifests: $DIST ($ENVS); Kubernetes $KUBERNETES_VERSION"

# The changed release the charts are upgraded to (the library, compiled by npm run synth).
[ -f "$ROOT/lib/src/index.js" ] || (cd "$ROOT" && npx --no-install tsc -p .)
"$NODE" "$HERE/releases.mjs" "$WORK/next" >&2

make_pki
start_etcd "$ETCD_VERSION"
if ! start_apiserver "$KUBERNETES_VERSION" /stepflow-helm "$WORK/apiserver.log" ||
   ! start_controllers 1 "$KUBERNETES_VERSION" "$HERE/../scheduling/kwok-stages.yaml"; then
  record_fail cluster "cluster starts" "kube-apiserver/$KUBERNETES_VERSION" "$(cat "$WORK/start-msg")" "$KUBERNETES_VERSION"
else
  rc=0
  "$NODE" "$HERE/checks.mjs" --helm "$HELM" --kubectl "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" \
    --server-version "$KUBERNETES_VERSION" --dist "$DIST" --next "$WORK/next" --envs "$ENVS" \
    --deploy "$ROOT/scripts/deploy.sh" --work "$WORK/checks" --results "$RESULTS" || rc=$?
  [ "$rc" -le 1 ] || record_fail checks "checks.mjs runs" "-" "exit code $rc (see above)" "$KUBERNETES_VERSION"
fi

harness_summary "helm tier"
