# shellcheck shell=bash
# Throw-away Kubernetes control planes on 127.0.0.1 for the tiers (sourced): etcd,
# kube-apiserver, and beside it kube-controller-manager, kube-scheduler and kwok nodes;
# the binaries come from verify/tools (cluster_install builds what is missing).
#
# A tier that runs the control plane inside a network namespace it made (verify/lib/node.sh)
# sets, after sourcing this file:
#   CLUSTER_EXEC=(nsenter --net=...)   the prefix every server and every check runs under;
#                                      KUBECTL then is a wrapper that runs kubectl under it
#   APISERVER_ADDRESS, APISERVER_PORT  what kube-apiserver binds and advertises (default
#                                      127.0.0.1 and a free port)
#   APISERVER_AUTHORIZATION            --authorization-mode (default RBAC)
#   APISERVER_EXTRA_ARGS=(...)         flags added last (a later flag wins)
#   PKI_SANS                           more subjectAltNames of its serving certificate
#                                      (make_pki), e.g. IP:10.96.0.1
#
#   cluster_install VERSIONS [controllers]   etcd, kube-apiserver and kubectl of each
#                                            version; with "controllers" also
#                                            kube-scheduler, kube-controller-manager, kwok
#   parse_versions "v1.35.4,v1.37.2"         space separated list, validated
# shellcheck source=harness.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/harness.sh"

cluster_install() {
  local specs=(etcd) v
  for v in $1; do
    specs+=("kubernetes@$v:kube-apiserver,kubectl")
    [[ ${2:-} != controllers ]] || specs+=("kubernetes@$v:kube-scheduler,kube-controller-manager")
  done
  [[ ${2:-} != controllers ]] || specs+=(kwok)
  tools_install "${specs[@]}"
}

parse_versions() {
  local v out=() vs
  IFS=, read -r -a vs <<<"$1"
  for v in "${vs[@]}"; do
    [[ $v =~ ^v1\.[0-9]+\.[0-9]+$ ]] || { echo "bad Kubernetes version '$v' (want e.g. $KUBERNETES_VERSION)" >&2; exit 2; }
    out+=("$v")
  done
  [[ ${#out[@]} -gt 0 ]] || { echo "empty version list" >&2; exit 2; }
  echo "${out[*]}"
}

# --- throw-away etcd + kube-apiserver on 127.0.0.1 (run.sh, upgrade.sh) -------
# The caller sets WORK (a scratch directory it removes) and stops both servers
# with stop_servers from its EXIT trap. start_apiserver sets APISERVER_PID,
# KUBECTL (the kubectl of the server's own version) and KUBECONFIG_FILE.
WORK=${WORK:-}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-180}
ETCD_PID=""
ETCD_URL=""
APISERVER_PID=""
KUBECTL=""
KUBECONFIG_FILE=""
CLUSTER_EXEC=()
APISERVER_ADDRESS=${APISERVER_ADDRESS:-127.0.0.1}
APISERVER_PORT=${APISERVER_PORT:-}
APISERVER_AUTHORIZATION=${APISERVER_AUTHORIZATION:-RBAC}
APISERVER_EXTRA_ARGS=()
PKI_SANS=${PKI_SANS:-}

stop_apiserver() { stop_pid "$APISERVER_PID"; APISERVER_PID=""; }


# make_pki — a CA, the apiserver's serving certificate for 127.0.0.1, an admin
# client certificate (O=system:masters is cluster-admin under RBAC) and the
# service-account signing key pair, in $WORK/pki.
make_pki() {
  mkdir -p "$WORK/pki"
  (
    cd "$WORK/pki" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
      -subj "/CN=stepflow-verify-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc%s\nextendedKeyUsage=serverAuth\n' \
      "${PKI_SANS:+,$PKI_SANS}" > apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -days 2 -extfile apiserver.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=stepflow-verify-admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out admin.crt -days 2 -extfile admin.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

# make_cert NAME SUBJECT EXT — a key and a certificate signed by make_pki's CA, in
# $WORK/pki/NAME.{key,crt}; EXT is the openssl extension text (usage, subjectAltName).
make_cert() {
  (
    cd "$WORK/pki" || exit 1
    printf '%s\n' "$3" > "$1.ext"
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null &&
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out "$1.crt" -days 2 -extfile "$1.ext" 2>/dev/null
  ) || die "make_cert $1 failed"
}

# write_kubeconfig FILE SERVER_URL CERT KEY — a kubeconfig trusting make_pki's CA.
write_kubeconfig() {
  cat > "$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: verify
  cluster:
    server: $2
    certificate-authority: $WORK/pki/ca.crt
users:
- name: user
  user:
    client-certificate: $3
    client-key: $4
contexts:
- name: verify
  context: {cluster: verify, user: user}
current-context: verify
KUBECONFIG
}

# start_etcd VERSION — one etcd per run; every cluster state uses its own key prefix.
start_etcd() {
  local bin cport pport
  bin=$(tool_bin etcd etcd "$1")
  cport=$(free_port); pport=$(free_port)
  ETCD_URL="http://127.0.0.1:$cport"
  "${CLUSTER_EXEC[@]}" "$bin" --name verify --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "verify=http://127.0.0.1:$pport" \
    --log-level warn --unsafe-no-fsync --quota-backend-bytes 2147483648 \
    > "$WORK/etcd.log" 2>&1 &
  ETCD_PID=$!
  for _ in $(seq 1 150); do
    if ! kill -0 "$ETCD_PID" 2>/dev/null; then tail -20 "$WORK/etcd.log" >&2; die "etcd exited during startup (log: $WORK/etcd.log)"; fi
    if "${CLUSTER_EXEC[@]}" python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1]+"/health",timeout=1)' "$ETCD_URL" 2>/dev/null; then
      log "etcd $("$bin" --version | sed -n 's/^etcd Version: //p') ready on $ETCD_URL"; return 0
    fi
    sleep 0.2
  done
  die "etcd did not become healthy in 30 s (log: $WORK/etcd.log)"
}

# start_apiserver VERSION PREFIX LOGFILE — a kube-apiserver on a free port of
# 127.0.0.1 whose cluster state is the etcd key prefix PREFIX (a fresh prefix =
# an empty cluster). Returns 1 (message in $WORK/start-msg) if it does not start.
start_apiserver() {
  local v=$1 prefix=$2 logf=$3 port dir t0 pki="$WORK/pki" addr=$APISERVER_ADDRESS
  dir=$(tool_dir kubernetes "$v")
  KUBECTL="$dir/kubectl"
  if [[ ${#CLUSTER_EXEC[@]} -gt 0 ]]; then
    mkdir -p "$WORK/bin"
    KUBECTL="$WORK/bin/kubectl-$v"
    printf '#!/bin/sh\nexec %s %q "$@"\n' "$(printf '%q ' "${CLUSTER_EXEC[@]}")" "$dir/kubectl" > "$KUBECTL"
    chmod +x "$KUBECTL"
  fi
  port=${APISERVER_PORT:-$(free_port)}
  "${CLUSTER_EXEC[@]}" "$dir/kube-apiserver" \
    --etcd-servers="$ETCD_URL" --etcd-prefix="$prefix" \
    --bind-address="$addr" --advertise-address="$addr" --secure-port="$port" \
    --cert-dir="$WORK/apiserver-certs" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --authorization-mode="$APISERVER_AUTHORIZATION" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --endpoint-reconciler-type=none \
    "${APISERVER_EXTRA_ARGS[@]}" \
    > "$logf" 2>&1 &
  APISERVER_PID=$!
  KUBECONFIG_FILE="$WORK/kubeconfig-$port"
  write_kubeconfig "$KUBECONFIG_FILE" "https://$addr:$port" "$pki/admin.crt" "$pki/admin.key"
  t0=$(date +%s)
  for _ in $(seq 1 $((READY_TIMEOUT_S * 2))); do
    if ! kill -0 "$APISERVER_PID" 2>/dev/null; then
      APISERVER_PID=""
      { echo "kube-apiserver $v exited during startup; last log lines:"; tail -15 "$logf"; } > "$WORK/start-msg"
      return 1
    fi
    if "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" get --raw /readyz >/dev/null 2>&1; then
      log "kube-apiserver $v ready on $addr:$port after $(( $(date +%s) - t0 ))s (etcd prefix $prefix)"
      return 0
    fi
    sleep 0.5
  done
  { echo "kube-apiserver $v not ready after ${READY_TIMEOUT_S}s; last log lines:"; tail -15 "$logf"; } > "$WORK/start-msg"
  return 1
}

# --- controllers beside the kube-apiserver (verify/scheduling, upgrade.sh) ------
# kube-controller-manager, kube-scheduler (cluster_install VERSION controllers)
# and kwok (simulated nodes) against the running
# kube-apiserver ($KUBECONFIG_FILE), on 127.0.0.1; logs in $WORK/*-N.log.
# The caller stops them with stop_controllers (stop_servers does too).
KCM_PID=""
SCHED_PID=""
KWOK_PID=""
# shellcheck disable=SC2034
HPA_SYNC_PERIOD=${HPA_SYNC_PERIOD:-15s}
stop_controllers() {
  stop_pid "$KWOK_PID"; KWOK_PID=""
  stop_pid "$SCHED_PID"; SCHED_PID=""
  stop_pid "$KCM_PID"; KCM_PID=""
}
stop_servers() { stop_controllers; stop_apiserver; stop_pid "$ETCD_PID"; ETCD_PID=""; }

# wait_healthz NAME PORT PID LOG: the component's /healthz on 127.0.0.1 answers ok
wait_healthz() {
  local name=$1 port=$2 pid=$3 logf=$4
  for _ in $(seq 1 240); do
    if ! kill -0 "$pid" 2>/dev/null; then
      { echo "$name exited during startup; last log lines:"; tail -15 "$logf"; } > "$WORK/start-msg"
      return 1
    fi
    [ "$("${CLUSTER_EXEC[@]}" curl -ks --max-time 2 "https://127.0.0.1:$port/healthz" 2>/dev/null)" = ok ] && return 0
    sleep 0.5
  done
  { echo "$name not healthy after 120s; last log lines:"; tail -15 "$logf"; } > "$WORK/start-msg"
  return 1
}

# start_controllers N K8S_VERSION [KWOK_STAGES] — returns 1 (message in
# $WORK/start-msg) if one does not start. The HPA syncs every $HPA_SYNC_PERIOD.
# Without KWOK_STAGES no kwok runs (a tier with real nodes).
start_controllers() {
  local n=$1 ctrl kc=$KUBECONFIG_FILE port
  ctrl=$(tool_dir kubernetes "$2")
  port=$(free_port)
  "${CLUSTER_EXEC[@]}" "$ctrl/kube-controller-manager" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port="$port" --cert-dir="$WORK/kcm-certs-$n" \
    --leader-elect=false --controllers='*' --cluster-name=verify \
    --root-ca-file="$WORK/pki/ca.crt" --service-account-private-key-file="$WORK/pki/sa.key" \
    --horizontal-pod-autoscaler-sync-period="$HPA_SYNC_PERIOD" \
    > "$WORK/kcm-$n.log" 2>&1 &
  KCM_PID=$!
  wait_healthz kube-controller-manager "$port" "$KCM_PID" "$WORK/kcm-$n.log" || return 1
  port=$(free_port)
  "${CLUSTER_EXEC[@]}" "$ctrl/kube-scheduler" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port="$port" --cert-dir="$WORK/sched-certs-$n" \
    --leader-elect=false \
    > "$WORK/scheduler-$n.log" 2>&1 &
  SCHED_PID=$!
  wait_healthz kube-scheduler "$port" "$SCHED_PID" "$WORK/scheduler-$n.log" || return 1
  [[ -n ${3:-} ]] || return 0
  # kwok serves nothing (no --server-address / --node-port): it only talks to the API server
  "$(tool_bin kwok kwok)" --kubeconfig="$kc" --config="$3" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=10.200.0.1 --node-lease-duration-seconds=40 \
    > "$WORK/kwok-$n.log" 2>&1 &
  KWOK_PID=$!
  sleep 1
  kill -0 "$KWOK_PID" 2>/dev/null || { { echo "kwok exited during startup:"; tail -15 "$WORK/kwok-$n.log"; } > "$WORK/start-msg"; return 1; }
}
