# shellcheck shell=bash
# A real single-node Kubernetes on this machine (sourced; needs root): etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler (cluster.sh), kubelet, containerd + runc, the
# CNI reference plugins (bridge, host-local, loopback), kube-proxy (iptables mode) and
# kube-router's NetworkPolicy controller, every binary from verify/tools.
#
# Everything runs inside network namespaces made here, so nothing touches the host's
# interfaces, routes or iptables:
#   sfk-node      the node: the control plane, kubelet, containerd, kube-proxy, kube-router,
#                 the pods' bridge cni0; address NODE_IP on the link to sfk-node-ext
#   sfk-node-ext  stands in for "outside the cluster": OUTSIDE_IP on its loopback, a route
#                 back to the pods (no masquerade anywhere)
# The node's daemons share one private mount namespace (their mounts never appear on the
# host and vanish with it) and one cgroup subtree, /sfk-node in every hierarchy, where the
# kubelet puts the pods too (cgroupRoot); node_down kills what is left in it by PID. Three
# host-wide kernel settings the kubelet would otherwise rewrite (vm.overcommit_memory,
# kernel.panic, kernel.panic_on_oops) are files with the values it wants inside that mount
# namespace. The registry on 127.0.0.1:5000 of the host is reached from the node's
# 127.0.0.1:5000 through a unix socket (socat); that is the only path between the two.
#
#   node_install                  tools (verify/tools) and Debian packages
#   node_up                       all of the above, node Ready; registers its teardown
#                                 with harness_on_exit; sets KUBECTL, KUBECONFIG_FILE,
#                                 NODE_EXEC (prefix running a command on the node)
#   node_start_policy_controller  kube-router; its PID and arguments also in files, so that
#                                 the checks can stop it (and remove its rules) and start it again
#   in_node CMD...                a command in the node's namespaces
#   in_ext CMD...                 a command in sfk-node-ext
# shellcheck source=cluster.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster.sh"

NODE_NAME=sfk-node
NODE_NETNS=sfk-node
EXT_NETNS=sfk-node-ext
NODE_IP=172.20.0.2
EXT_IP=172.20.0.1
NODE_LINK_CIDR=24
OUTSIDE_IP=203.0.113.10        # TEST-NET-3: outside every private range, on sfk-node-ext's loopback
CLUSTER_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16      # cluster.sh's kube-apiserver --service-cluster-ip-range
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
APISERVER_NODE_PORT=6443
CGROUP_ROOT=/sfk-node
NODE_DIR=""                    # $WORK/node once node_up ran
NODE_MNT_PID=""
NODE_EXEC=()
CONTAINERD_PID=""
KUBELET_PID=""
KUBE_PROXY_PID=""
KUBE_ROUTER_PID=""
REGISTRY_FWD_PIDS=()
NODE_APT=(iptables ipset socat busybox-static conntrack gcc libc6-dev)

# (never `in_node CMD &`: $! would be a subshell's PID, not CMD's; start servers with
# "${NODE_EXEC[@]}" CMD & instead)
in_node() { "${NODE_EXEC[@]}" "$@"; }
in_ext() { ip netns exec "$EXT_NETNS" "$@"; }

node_install() {
  apt_install "${NODE_APT[@]}"
  tools_install etcd \
    "kubernetes@$KUBERNETES_VERSION:kube-apiserver,kubectl,kube-controller-manager,kube-scheduler,kubelet,kube-proxy" \
    containerd runc cni-plugins coredns kube-router local-path-provisioner
}

# --- network namespaces ---------------------------------------------------------------
node_net_up() {
  local ns
  for ns in "$NODE_NETNS" "$EXT_NETNS"; do
    ! ip netns list | grep -qw "$ns" || die "network namespace $ns exists: another verify:node runs, or a killed one left it (ip netns del $ns)"
  done
  ip netns add "$NODE_NETNS"
  harness_on_exit node_net_down
  ip netns add "$EXT_NETNS"
  ip link add sfk-node-up netns "$NODE_NETNS" type veth peer name sfk-node-ex netns "$EXT_NETNS"
  ip -n "$NODE_NETNS" link set lo up
  ip -n "$NODE_NETNS" addr add "$NODE_IP/$NODE_LINK_CIDR" dev sfk-node-up
  ip -n "$NODE_NETNS" link set sfk-node-up up
  ip -n "$NODE_NETNS" route add default via "$EXT_IP"
  ip -n "$EXT_NETNS" link set lo up
  ip -n "$EXT_NETNS" addr add "$OUTSIDE_IP/32" dev lo
  ip -n "$EXT_NETNS" addr add "$EXT_IP/$NODE_LINK_CIDR" dev sfk-node-ex
  ip -n "$EXT_NETNS" link set sfk-node-ex up
  ip -n "$EXT_NETNS" route add "$CLUSTER_CIDR" via "$NODE_IP"
  ip netns exec "$NODE_NETNS" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
}
node_net_down() {
  ip netns del "$EXT_NETNS" 2>/dev/null || true
  ip netns del "$NODE_NETNS" 2>/dev/null || true
}

# --- the node's cgroup subtree ----------------------------------------------------------
node_cgroup_dirs() { # every hierarchy's /sfk-node
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -f $h/cgroup.procs ]] && echo "${h%/}$CGROUP_ROOT"
  done
}
node_cgroups_up() {
  local d
  for d in $(node_cgroup_dirs); do
    [[ ! -d $d ]] || die "cgroup $d exists: another verify:node runs, or a killed one left it"
  done
  harness_on_exit node_cgroups_down
  for d in $(node_cgroup_dirs); do
    mkdir -p "$d/daemons"
    if [[ $d == */cpuset$CGROUP_ROOT ]]; then
      cat "${d%"$CGROUP_ROOT"}/cpuset.cpus" > "$d/cpuset.cpus"
      cat "${d%"$CGROUP_ROOT"}/cpuset.mems" > "$d/cpuset.mems"
      cat "$d/cpuset.cpus" > "$d/daemons/cpuset.cpus"
      cat "$d/cpuset.mems" > "$d/daemons/cpuset.mems"
    fi
  done
}
# Kills every process in the subtree (by PID, frozen first so that nothing forks meanwhile),
# then removes the cgroups, deepest first.
node_cgroups_down() {
  local pids freezer=/sys/fs/cgroup/freezer$CGROUP_ROOT d
  [[ -d /sys/fs/cgroup/pids$CGROUP_ROOT ]] || return 0
  for _ in $(seq 1 50); do
    pids=$(find "/sys/fs/cgroup/pids$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [[ -n $pids ]] || break
    [[ ! -d $freezer ]] || echo FROZEN > "$freezer/freezer.state" 2>/dev/null || true
    # shellcheck disable=SC2086 # a list of PIDs
    kill -KILL $pids 2>/dev/null || true
    [[ ! -d $freezer ]] || echo THAWED > "$freezer/freezer.state" 2>/dev/null || true
    sleep 0.2
  done
  for d in $(node_cgroup_dirs); do
    [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  for d in $(node_cgroup_dirs); do
    [[ ! -d $d ]] || log "WARNING: cgroup $d could not be removed"
  done
  return 0
}

# --- the node's mount namespace ---------------------------------------------------------
# A holder process keeps a private mount namespace; NODE_EXEC enters it, the node's network
# namespace and the daemons' cgroup. Mounts made inside (overlays, tmpfs volumes, netns
# bind mounts) vanish with it.
NODE_MADE_DIRS=()
node_mounts_up() {
  local d=$NODE_DIR/sysctl-view m
  # the mount points of the tmpfs below; made here, they are removed again by node_down
  for m in /run/containerd /var/lib/cni; do
    [[ -d $m ]] || { mkdir -p "$m"; NODE_MADE_DIRS+=("$m"); }
  done
  "$NODE_DIR/bin/in-cgroup" unshare --mount --propagation private sleep infinity &
  NODE_MNT_PID=$!
  for _ in $(seq 1 50); do
    [[ $(readlink "/proc/$NODE_MNT_PID/ns/mnt") != "$(readlink /proc/self/ns/mnt)" ]] && break
    sleep 0.1
  done
  NODE_EXEC=(nsenter --mount="/proc/$NODE_MNT_PID/ns/mnt" --net="/run/netns/$NODE_NETNS" "$NODE_DIR/bin/in-cgroup")
  # the values the kubelet insists on (container_manager_linux.go setupKernelTunables),
  # visible to the node's processes only: the host keeps its own
  mkdir -p "$d"
  echo 1 > "$d/overcommit_memory"; echo 10 > "$d/panic"; echo 1 > "$d/panic_on_oops"
  in_node sh -ec "
    mount --bind '$d/overcommit_memory' /proc/sys/vm/overcommit_memory
    mount --bind '$d/panic' /proc/sys/kernel/panic
    mount --bind '$d/panic_on_oops' /proc/sys/kernel/panic_on_oops
    mount -t tmpfs -o mode=0755 sfk-node-run /run/containerd
    mount -t tmpfs -o mode=0755 sfk-node-cni /var/lib/cni"
}

# --- PKI and kubeconfigs ----------------------------------------------------------------
node_pki() {
  # shellcheck disable=SC2034 # read by make_pki (cluster.sh)
  PKI_SANS="IP:$NODE_IP,IP:$API_SERVICE_IP,DNS:kubernetes.default,DNS:kubernetes.default.svc.cluster.local"
  make_pki
  make_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
  make_cert kubelet-serving "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME
extendedKeyUsage=serverAuth"
  make_cert kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
  make_cert kube-router "/O=system:masters/CN=kube-router" "extendedKeyUsage=clientAuth"
  local url="https://$NODE_IP:$APISERVER_NODE_PORT" pki=$WORK/pki
  write_kubeconfig "$NODE_DIR/kubelet.kubeconfig" "$url" "$pki/kubelet-client.crt" "$pki/kubelet-client.key"
  write_kubeconfig "$NODE_DIR/kube-proxy.kubeconfig" "$url" "$pki/kube-proxy.crt" "$pki/kube-proxy.key"
  write_kubeconfig "$NODE_DIR/kube-router.kubeconfig" "$url" "$pki/kube-router.crt" "$pki/kube-router.key"
}

# --- daemons ------------------------------------------------------------------------------
# wait_for NAME PID LOG SECONDS CMD...: CMD succeeds before SECONDS pass, PID alive
wait_for() {
  local name=$1 pid=$2 logf=$3 secs=$4
  shift 4
  for _ in $(seq 1 $((secs * 4))); do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$logf" >&2; die "$name exited during startup (log: $logf)"; }
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  tail -20 "$logf" >&2
  die "$name not ready after $secs s (log: $logf)"
}

node_registry_forward() {
  local sock=$NODE_DIR/registry.sock
  socat "UNIX-LISTEN:$sock,fork,mode=600" TCP:127.0.0.1:5000 >"$NODE_DIR/socat-host.log" 2>&1 &
  REGISTRY_FWD_PIDS+=($!)
  "${NODE_EXEC[@]}" socat TCP-LISTEN:5000,bind=127.0.0.1,fork,reuseaddr "UNIX-CONNECT:$sock" >"$NODE_DIR/socat-node.log" 2>&1 &
  REGISTRY_FWD_PIDS+=($!)
  # shellcheck disable=SC2016 # expanded when the trap runs
  harness_on_exit 'for p in "${REGISTRY_FWD_PIDS[@]}"; do stop_pid "$p"; done'
}

node_write_configs() {
  local cd=$NODE_DIR/containerd runc
  runc=$(tool_bin runc runc)
  mkdir -p "$cd/certs.d/localhost:5000" "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam" "$NODE_DIR/kubelet" \
    "$NODE_DIR/pod-logs" "$NODE_DIR/local-path"
  cat > "$cd/certs.d/localhost:5000/hosts.toml" <<EOF
server = "http://localhost:5000"
[host."http://localhost:5000"]
  capabilities = ["pull", "resolve"]
EOF
  cat > "$cd/config.toml" <<EOF
version = 3
root = "$cd/root"
state = "$cd/state"
imports = []
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri"]
[grpc]
  address = "$cd/containerd.sock"
[ttrpc]
  address = "$cd/containerd.sock.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$cd/opt"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  # the compressed layers go once unpacked (the inference image alone is 3.3 GB of them)
  discard_unpacked_layers = true
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "$cd/certs.d"
[plugins."io.containerd.cri.v1.runtime"]
  # the bounding set here lacks CAP_SYS_RESOURCE: a sandbox may not lower its oom_score_adj
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  enable_cdi = false
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$(tool_dir cni-plugins)"]
    conf_dir = "$NODE_DIR/cni/net.d"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
  # one bridge for the pods, the node its gateway; no masquerade (pod addresses stay
  # visible to NetworkPolicies and to sfk-node-ext, which routes back to them)
  cat > "$NODE_DIR/cni/net.d/10-sfk-node.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "sfk-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$NODE_POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$NODE_DIR/cni/ipam"
      }
    }
  ]
}
EOF
  # the pods' upstream resolver: none (CoreDNS answers cluster names only, nothing is
  # forwarded off this machine)
  : > "$NODE_DIR/resolv.conf"
  cat > "$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
containerRuntimeEndpoint: unix://$cd/containerd.sock
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $WORK/pki/kubelet-serving.crt
tlsPrivateKeyFile: $WORK/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $WORK/pki/ca.crt}
authorization:
  mode: AlwaysAllow
clusterDomain: cluster.local
clusterDNS: [$DNS_SERVICE_IP]
resolvConf: $NODE_DIR/resolv.conf
podLogsDir: $NODE_DIR/pod-logs
rotateCertificates: false
serverTLSBootstrap: false
protectKernelDefaults: true
serializeImagePulls: false
maxPods: 40
# This disk reports 252 GB with about 65 GB available (74 % "used") and other jobs
# share it: the default percentages (nodefs.available<10 %, image GC from 85 % used) would
# evict pods or delete images as soon as the others write some more. Absolute floors
# instead; image garbage collection only near a full disk.
evictionHard:
  memory.available: 500Mi
  nodefs.available: 2Gi
  imagefs.available: 2Gi
  nodefs.inodesFree: 2%
  imagefs.inodesFree: 2%
imageGCHighThresholdPercent: 98
imageGCLowThresholdPercent: 97
EOF
  cat > "$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $NODE_DIR/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
iptables:
  masqueradeAll: false
  localhostNodePorts: false
# leave every conntrack sysctl as it is (nf_conntrack_max is host-wide)
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

node_start_containerd() {
  local dir logf=$NODE_DIR/containerd.log
  dir=$(tool_dir containerd)
  PATH="$dir:$(tool_dir runc):$PATH" "${NODE_EXEC[@]}" "$dir/containerd" --config "$NODE_DIR/containerd/config.toml" >"$logf" 2>&1 &
  CONTAINERD_PID=$!
  wait_for containerd "$CONTAINERD_PID" "$logf" 60 \
    in_node "$dir/ctr" --address "$NODE_DIR/containerd/containerd.sock" version
  log "containerd $("$dir/containerd" --version | awk '{print $3}') ready"
}

node_start_kubelet() {
  local logf=$NODE_DIR/kubelet.log
  "${NODE_EXEC[@]}" "$(tool_bin kubernetes kubelet "$KUBERNETES_VERSION")" \
    --config="$NODE_DIR/kubelet.yaml" --kubeconfig="$NODE_DIR/kubelet.kubeconfig" \
    --root-dir="$NODE_DIR/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
    >"$logf" 2>&1 &
  KUBELET_PID=$!
  wait_for kubelet "$KUBELET_PID" "$logf" 120 \
    "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" get node "$NODE_NAME"
}

node_start_kube_proxy() {
  local logf=$NODE_DIR/kube-proxy.log
  "${NODE_EXEC[@]}" "$(tool_bin kubernetes kube-proxy "$KUBERNETES_VERSION")" --config="$NODE_DIR/kube-proxy.yaml" >"$logf" 2>&1 &
  KUBE_PROXY_PID=$!
  wait_for kube-proxy "$KUBE_PROXY_PID" "$logf" 60 in_node curl -fs http://127.0.0.1:10256/healthz
}

# kube-router's PID and arguments are also kept in files ($NODE_DIR/kube-router.pid,
# .args): verify/node/checks.py stops and starts it for the policy controls.
KUBE_ROUTER_ARGS=()
node_start_policy_controller() {
  local logf=$NODE_DIR/kube-router.log
  KUBE_ROUTER_ARGS=(--kubeconfig="$NODE_DIR/kube-router.kubeconfig" --hostname-override="$NODE_NAME"
    --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false
    --service-cluster-ip-range="$SERVICE_CIDR" --health-port=20244 --metrics-port=0)
  printf '%s\n' "${KUBE_ROUTER_ARGS[@]}" > "$NODE_DIR/kube-router.args"
  "${NODE_EXEC[@]}" "$(tool_bin kube-router kube-router)" "${KUBE_ROUTER_ARGS[@]}" >>"$logf" 2>&1 &
  KUBE_ROUTER_PID=$!
  echo "$KUBE_ROUTER_PID" > "$NODE_DIR/kube-router.pid"
  wait_for kube-router "$KUBE_ROUTER_PID" "$logf" 60 in_node curl -fs http://127.0.0.1:20244/healthz
  # its chains hooked into INPUT/FORWARD/OUTPUT: it enforces from here on
  wait_for kube-router "$KUBE_ROUTER_PID" "$logf" 60 in_node iptables -n -L KUBE-ROUTER-FORWARD
}
node_down() {
  [[ ! -f $NODE_DIR/kube-router.pid ]] || stop_pid "$(cat "$NODE_DIR/kube-router.pid")"
  stop_pid "$KUBE_PROXY_PID"; KUBE_PROXY_PID=""
  stop_pid "$KUBELET_PID"; KUBELET_PID=""
  stop_pid "$CONTAINERD_PID"; CONTAINERD_PID=""
  stop_servers
  stop_pid "$NODE_MNT_PID"; NODE_MNT_PID=""
  local m
  for m in "${NODE_MADE_DIRS[@]}"; do rmdir "$m" 2>/dev/null || true; done
}

# node_up: the whole node, Ready. PAUSE_IMAGE must name the sandbox image in the registry.
node_up() {
  [[ $(id -u) -eq 0 ]] || die "a real node needs root"
  [[ -n ${PAUSE_IMAGE:-} ]] || die "node_up: PAUSE_IMAGE is not set"
  NODE_DIR=$WORK/node
  mkdir -p "$NODE_DIR/bin"
  # the daemons' cgroup, every hierarchy (pods go to $CGROUP_ROOT/kubepods/...)
  cat > "$NODE_DIR/bin/in-cgroup" <<EOF
#!/bin/sh
for d in $(node_cgroup_dirs | sed 's|$|/daemons|' | tr '\n' ' '); do echo \$\$ > "\$d/cgroup.procs"; done
exec "\$@"
EOF
  chmod +x "$NODE_DIR/bin/in-cgroup"
  node_net_up
  node_cgroups_up
  harness_on_exit node_down
  node_mounts_up
  node_pki
  node_write_configs
  node_registry_forward
  # the control plane, inside the node's namespaces (read by cluster.sh)
  # shellcheck disable=SC2034
  CLUSTER_EXEC=("${NODE_EXEC[@]}")
  # shellcheck disable=SC2034
  APISERVER_ADDRESS=$NODE_IP
  # shellcheck disable=SC2034
  APISERVER_PORT=$APISERVER_NODE_PORT
  # shellcheck disable=SC2034
  APISERVER_AUTHORIZATION=Node,RBAC
  # shellcheck disable=SC2034
  APISERVER_EXTRA_ARGS=(--endpoint-reconciler-type=lease --enable-admission-plugins=NodeRestriction
    --allow-privileged=true --kubelet-preferred-address-types=InternalIP
    --kubelet-client-certificate="$WORK/pki/admin.crt" --kubelet-client-key="$WORK/pki/admin.key"
    --kubelet-certificate-authority="$WORK/pki/ca.crt")
  start_etcd "$ETCD_VERSION"
  start_apiserver "$KUBERNETES_VERSION" /sfk-node "$NODE_DIR/apiserver.log" || { cat "$WORK/start-msg" >&2; die "kube-apiserver did not start"; }
  start_controllers node "$KUBERNETES_VERSION" || { cat "$WORK/start-msg" >&2; die "controllers did not start"; }
  node_start_containerd
  node_start_kubelet
  node_start_kube_proxy
  node_start_policy_controller
  "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >/dev/null ||
    die "node $NODE_NAME not Ready (log: $NODE_DIR/kubelet.log)"
  log "node $NODE_NAME Ready ($NODE_IP; pods $NODE_POD_CIDR, services $SERVICE_CIDR)"
}
