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
# shellcheck source=versions.env
source "$HERE/versions.env"

CACHE=${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}
K8S_VERSIONS=$K8S_VERSIONS_DEFAULT
ETCD_VERSION=$ETCD_VERSION_DEFAULT
DIST="$ROOT/dist"
KEEP_LOGS=0
DO_FILES=1
DO_DIR=1
NODE=${NODE:-node}
READY_TIMEOUT_S=180

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --versions) K8S_VERSIONS=${2//,/ }; shift 2 ;;
    --versions=*) K8S_VERSIONS=${1#*=}; K8S_VERSIONS=${K8S_VERSIONS//,/ }; shift ;;
    --dist) DIST=$2; shift 2 ;;
    --dist=*) DIST=${1#*=}; shift ;;
    --etcd) ETCD_VERSION=$2; shift 2 ;;
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
ETCD_BIN="$CACHE/etcd-$ETCD_VERSION/etcd"

# --- workspace, cleanup -----------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stepflow-cluster.XXXXXX")
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
ETCD_PID=""
APISERVER_PID=""

stop_pid() { # stop_pid PID — TERM, wait up to 10 s, then KILL
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop_pid "$APISERVER_PID"; APISERVER_PID=""
  stop_pid "$ETCD_PID"; ETCD_PID=""
  if [ "$KEEP_LOGS" = 1 ]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

record_fail() { # record_fail VERSION SCENARIO CHECK OBJECT MESSAGE
  python3 -c 'import json,sys; print(json.dumps({"version":sys.argv[1],"scenario":sys.argv[2],"check":sys.argv[3],"object":sys.argv[4],"ok":False,"message":sys.argv[5]}))' \
    "$@" >> "$RESULTS"
}

# --- PKI (self-made, one per run) -------------------------------------------
PKI="$WORK/pki"
mkdir -p "$PKI"
make_pki() {
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
      -subj "/CN=stepflow-verify-ca" 2>/dev/null
    # Serving certificate for kube-apiserver on 127.0.0.1.
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -days 2 -extfile apiserver.ext 2>/dev/null
    # Admin client certificate: O=system:masters is cluster-admin under RBAC.
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=stepflow-verify-admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out admin.crt -days 2 -extfile admin.ext 2>/dev/null
    # Service-account token signing key pair.
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}
make_pki

# --- etcd (one per run; every scenario uses its own key prefix) --------------
start_etcd() {
  local cport pport
  cport=$(free_port); pport=$(free_port)
  ETCD_URL="http://127.0.0.1:$cport"
  "$ETCD_BIN" --name verify --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "verify=http://127.0.0.1:$pport" \
    --log-level warn --unsafe-no-fsync --quota-backend-bytes 2147483648 \
    > "$WORK/etcd.log" 2>&1 &
  ETCD_PID=$!
  for _ in $(seq 1 150); do
    if ! kill -0 "$ETCD_PID" 2>/dev/null; then tail -20 "$WORK/etcd.log" >&2; die "etcd exited during startup (log: $WORK/etcd.log)"; fi
    if python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1]+"/health",timeout=1)' "$ETCD_URL" 2>/dev/null; then
      log "etcd $("$ETCD_BIN" --version | sed -n 's/^etcd Version: //p') ready on $ETCD_URL"; return 0
    fi
    sleep 0.2
  done
  die "etcd did not become healthy in 30 s (log: $WORK/etcd.log)"
}

# start_apiserver VERSION PREFIX LOGFILE — sets APISERVER_PID, KUBECONFIG_FILE
start_apiserver() {
  local v=$1 prefix=$2 logf=$3 port
  port=$(free_port)
  "$CACHE/kube-apiserver-$v/kube-apiserver" \
    --etcd-servers="$ETCD_URL" --etcd-prefix="$prefix" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port" \
    --cert-dir="$WORK/apiserver-certs" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode=RBAC \
    --service-cluster-ip-range=10.96.0.0/16 \
    --endpoint-reconciler-type=none \
    > "$logf" 2>&1 &
  APISERVER_PID=$!
  KUBECONFIG_FILE="$WORK/kubeconfig-$port"
  cat > "$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: verify
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: verify
  context: {cluster: verify, user: admin}
current-context: verify
EOF
  local t0
  t0=$(date +%s)
  for _ in $(seq 1 $((READY_TIMEOUT_S * 2))); do
    if ! kill -0 "$APISERVER_PID" 2>/dev/null; then
      APISERVER_PID=""
      { echo "kube-apiserver $v exited during startup; last log lines:"; tail -15 "$logf"; } > "$WORK/start-msg"
      return 1
    fi
    if "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" get --raw /readyz >/dev/null 2>&1; then
      log "kube-apiserver $v ready on 127.0.0.1:$port after $(( $(date +%s) - t0 ))s (etcd prefix $prefix)"
      return 0
    fi
    sleep 0.5
  done
  { echo "kube-apiserver $v not ready after ${READY_TIMEOUT_S}s; last log lines:"; tail -15 "$logf"; } > "$WORK/start-msg"
  return 1
}

stop_apiserver() { stop_pid "$APISERVER_PID"; APISERVER_PID=""; }

# --- run ---------------------------------------------------------------------
T_START=$(date +%s)
start_etcd
log "manifests: $DIST (${#FILES[@]} files); versions: $K8S_VERSIONS"

scenario_n=0
run_scenario() { # run_scenario VERSION NAME TARGET...
  local v=$1 name=$2; shift 2
  scenario_n=$((scenario_n + 1))
  local prefix="/stepflow-verify/$scenario_n" logf="$WORK/apiserver-$v-$scenario_n.log"
  KUBECTL="$CACHE/kube-apiserver-$v/kubectl"
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
