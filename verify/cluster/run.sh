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
# Usage: run.sh [--versions v1.30.0,v1.37.2] [--dist DIR] [--keep-logs]
#               [--etcd v3.6.16] [--only-dir | --only-files]
# Env:   STEPFLOW_KIT_CACHE  binary cache (default ~/.cache/stepflow-kit)
#        NODE                node binary (default: node)
# Exit:  0 when every check passed; the last line is "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

CACHE=$KIT_CACHE
K8S_VERSIONS=$K8S_VERSIONS_DEFAULT
ETCD_VERSION=$ETCD_VERSION_DEFAULT
DIST="$ROOT/dist"
KEEP_LOGS=0
DO_FILES=1
DO_DIR=1
NODE=${NODE:-node}
READY_TIMEOUT_S=180

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

need_arg() { [ "$#" -ge 2 ] || { echo "run.sh: $1 needs a value (try --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --versions) need_arg "$@"; K8S_VERSIONS=${2//,/ }; shift 2 ;;
    --versions=*) K8S_VERSIONS=${1#*=}; K8S_VERSIONS=${K8S_VERSIONS//,/ }; shift ;;
    --dist) need_arg "$@"; DIST=$2; shift 2 ;;
    --dist=*) DIST=${1#*=}; shift ;;
    --etcd) need_arg "$@"; ETCD_VERSION=$2; shift 2 ;;
    --etcd=*) ETCD_VERSION=${1#*=}; shift ;;
    --keep-logs) KEEP_LOGS=1; shift ;;
    --only-dir) DO_FILES=0; shift ;;
    --only-files) DO_DIR=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { echo "run.sh: $*" >&2; exit 2; }

for tool in openssl python3 "$NODE"; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH (needed by the cluster tier)."
done
[ -d "$DIST" ] || die "manifest directory '$DIST' does not exist (pass --dist DIR)."
DIST=$(cd "$DIST" && pwd)
mapfile -t FILES < <(find "$DIST" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | LC_ALL=C sort)
[ "${#FILES[@]}" -gt 0 ] || die "no *.yaml/*.yml/*.json manifests in '$DIST'."

# --- binaries -------------------------------------------------------------
need_install=0
[ -x "$CACHE/etcd-$ETCD_VERSION/etcd" ] || need_install=1
for v in $K8S_VERSIONS; do
  [ -x "$CACHE/kube-apiserver-$v/kube-apiserver" ] && [ -x "$CACHE/kube-apiserver-$v/kubectl" ] || need_install=1
done
if [ "$need_install" = 1 ]; then
  log "binaries missing from $CACHE: running install.sh (a cold build takes long)"
  "$HERE/install.sh" --versions "${K8S_VERSIONS// /,}" --etcd "$ETCD_VERSION"
fi

# --- workspace, cleanup -----------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stepflow-cluster.XXXXXX")
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"

cleanup() {
  local rc=$?
  stop_servers
  if [ "$KEEP_LOGS" = 1 ]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

record_fail() { # record_fail VERSION SCENARIO CHECK OBJECT MESSAGE
  python3 -c 'import json,sys; print(json.dumps({"version":sys.argv[1],"scenario":sys.argv[2],"check":sys.argv[3],"object":sys.argv[4],"ok":False,"message":sys.argv[5]}))' \
    "$@" >> "$RESULTS"
}

# --- run ---------------------------------------------------------------------
T_START=$(date +%s)
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
    record_fail "$v" "$name" "cluster starts" "kube-apiserver/$v" "$(cat "$WORK/start-msg")"
    stop_apiserver; return 0
  fi
  local rc=0
  KUBECACHEDIR="$WORK/kcache-$scenario_n" \
    "$NODE" "$HERE/checks.mjs" --kubectl "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" \
      --server-version "$v" --scenario "$name" --results "$RESULTS" -- "$@" || rc=$?
  if [ "$rc" -gt 1 ]; then
    record_fail "$v" "$name" "checks.mjs runs" "-" "checks.mjs crashed with exit code $rc (see output above)"
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
python3 - "$RESULTS" "$(( $(date +%s) - T_START ))" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not rows:
    rows.append({"ok": False, "version": "-", "scenario": "-", "check": "some check ran", "object": "-", "message": "no check recorded a result"})
failed = [r for r in rows if not r["ok"]]
passed = len(rows) - len(failed)
print()
print(f"cluster tier: {len(rows)} checks in {sys.argv[2]}s")
if failed:
    print("FAILURES:")
    for r in failed:
        print(f"  [{r['version']} {r['scenario']}] {r['check']}: {r['object']}")
        for line in str(r["message"]).rstrip().splitlines():
            print(f"      {line}")
print(f"{passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
PY
