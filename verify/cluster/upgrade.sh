#!/usr/bin/env bash
# Upgrade proof: the previous release's manifests (previous/<release>/, applied
# the way the README told users: `kubectl apply -f FILE`) upgraded to the new
# ones (dist/), on a real kube-apiserver + etcd (127.0.0.1). The documented
# upgrade is the one-time steps of previous/<release>/upgrade.json, then the
# documented pruning apply. Each scenario starts from an EMPTY cluster state
# (fresh etcd key prefix):
#   readme-apply             plain `kubectl apply -f NEW`: what it leaves behind or
#                            breaks (a Service beside or without its workload), and
#                            that the one-time steps delete every object it rejects
#   documented               the documented upgrade (README "Upgrading", docs/upgrading.md) with stand-ins
#                            for what the controllers made: exactly the new output
#                            remains, claims and pods are never deleted, every new
#                            selector selects the kept pods of its own workload and
#                            nothing else, a re-run changes nothing
#   next-release             the documented command installs, and a release that only
#                            bumps app.kubernetes.io/version upgrades without extra steps
#   prune-without-allowlist  control: pruning by label with kubectl's default
#                            allowlist deletes the other environment's Namespace
#   adoption                 only on the scheduling tier's version (v1.37.2), with the
#                            real kube-controller-manager, kube-scheduler and kwok
#                            nodes: the new workloads adopt and roll the running pods,
#                            the core keeps its claim, ready pods throughout
# The checks are in upgrade-checks.mjs and upgrade-adoption.mjs.
#
# Usage: upgrade.sh [--versions v1.30.0,v1.37.2] [--previous DIR] [--dist DIR]
#                   [--steps FILE] [--only SCENARIO,...] [--etcd v3.6.16] [--keep-logs]
#   --previous  the previous release's manifests (default previous/0.2.0)
#   --dist      the new manifests (default dist/)
#   --steps     the documented one-time steps (default PREVIOUS/upgrade.json)
#   --only      a subset of the scenarios above
#   e.g. the hop before: upgrade.sh --previous previous/0.1.0 --dist previous/0.2.0
# Env:   STEPFLOW_KIT_CACHE  binary cache (default ~/.cache/stepflow-kit)
#        NODE                node binary (default: node)
# Exit:  0 when every check passed, 1 on a failed check, 2 on a usage error;
#        the last line is "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

# The documented upgrade command's selector and allowlist (README "Upgrading"):
# every kind the kit emits EXCEPT Namespace (pruning one would delete another
# environment's namespace and all in it) and PersistentVolumeClaim (state).
MANAGED_BY=stepflow-kit
PRUNE_ALLOWLIST="core/v1/ConfigMap,core/v1/Service,core/v1/ServiceAccount,apps/v1/Deployment,apps/v1/StatefulSet,autoscaling/v2/HorizontalPodAutoscaler,policy/v1/PodDisruptionBudget,networking.k8s.io/v1/Ingress,networking.k8s.io/v1/NetworkPolicy"
# shellcheck source=../scheduling/versions.env
. "$HERE/../scheduling/versions.env"   # SCHED_K8S_VERSION, KWOK_VERSION: the adoption scenario's controllers

PREVIOUS="$HERE/previous/0.2.0"
STEPS=""
DIST="$ROOT/dist"
KEEP_LOGS=0
NODE=${NODE:-node}
ALL_SCENARIOS="readme-apply documented next-release prune-without-allowlist adoption"
SCENARIOS=$ALL_SCENARIOS

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
bad_usage() { echo "upgrade.sh: $*" >&2; usage >&2; exit 2; }
need_arg() { [ "$#" -ge 2 ] || bad_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --versions) need_arg "$@"; K8S_VERSIONS=${2//,/ }; shift 2 ;;
    --previous) need_arg "$@"; PREVIOUS=$2; shift 2 ;;
    --dist) need_arg "$@"; DIST=$2; shift 2 ;;
    --steps) need_arg "$@"; STEPS=$2; shift 2 ;;
    --only) need_arg "$@"; SCENARIOS=${2//,/ }; shift 2 ;;
    --etcd) need_arg "$@"; ETCD_VERSION=$2; shift 2 ;;
    --keep-logs) KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument '$1'" ;;
  esac
done

log() { printf '[upgrade %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { echo "upgrade.sh: $*" >&2; exit 2; }

for tool in openssl python3 "$NODE"; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH."
done
for d in "$PREVIOUS" "$DIST"; do
  [ -d "$d" ] || die "manifest directory '$d' does not exist."
done
PREVIOUS=$(cd "$PREVIOUS" && pwd)
DIST=$(cd "$DIST" && pwd)
[ -n "$STEPS" ] || STEPS="$PREVIOUS/upgrade.json"
[ -f "$STEPS" ] || die "no one-time steps '$STEPS' (previous/<release>/upgrade.json; {\"once\": {}} when there are none)."
for s in $SCENARIOS; do
  [[ " $ALL_SCENARIOS " == *" $s "* ]] || bad_usage "unknown scenario '$s' (scenarios: $ALL_SCENARIOS)"
done
for v in $K8S_VERSIONS; do [[ $v =~ ^v1\.[0-9]+\.[0-9]+$ ]] || die "bad Kubernetes version '$v'"; done

need_install=0
[ -x "$(bin_dir etcd "$ETCD_VERSION")/etcd" ] || need_install=1
for v in $K8S_VERSIONS; do
  [ -x "$(bin_dir kube-apiserver "$v")/kube-apiserver" ] && [ -x "$(bin_dir kube-apiserver "$v")/kubectl" ] || need_install=1
done
if [ "$need_install" = 1 ]; then
  log "binaries missing from $KIT_CACHE: running install.sh (a cold build takes long)"
  "$HERE/install.sh" --versions "${K8S_VERSIONS// /,}" --etcd "$ETCD_VERSION"
fi
# The adoption scenario runs where the controllers are of the server's own version.
ADOPTION_ON=""
if [[ " $SCENARIOS " == *" adoption "* && " $K8S_VERSIONS " == *" $SCHED_K8S_VERSION "* ]]; then
  ADOPTION_ON=$SCHED_K8S_VERSION
  if ! [ -x "$(bin_dir kube-controllers "$SCHED_K8S_VERSION")/kube-controller-manager" ] || ! [ -x "$(bin_dir kwok "$KWOK_VERSION")/kwok" ]; then
    log "controllers missing from $KIT_CACHE: running verify/scheduling/install.sh (a cold build takes about 5 min)"
  fi
  "$HERE/../scheduling/install.sh" --k8s "$SCHED_K8S_VERSION" --kwok "$KWOK_VERSION" >&2
elif [[ " $SCENARIOS " == *" adoption "* ]]; then
  log "adoption: not run (its controllers are $SCHED_K8S_VERSION, not among --versions $K8S_VERSIONS)"
fi
KWOK_BIN="$(bin_dir kwok "$KWOK_VERSION")/kwok"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stepflow-upgrade.XXXXXX")
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
cleanup() {
  local rc=$?
  stop_servers
  if [ "$KEEP_LOGS" = 1 ]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

record_fail() { # record_fail VERSION SCENARIO CHECK OBJECT MESSAGE
  python3 -c 'import json,sys; print(json.dumps({"version":sys.argv[1],"scenario":sys.argv[2],"check":sys.argv[3],"object":sys.argv[4],"ok":False,"message":sys.argv[5]}))' \
    "$@" >> "$RESULTS"
  echo "FAIL: [$1 $2] $3: $4"
}

T_START=$(date +%s)
make_pki
start_etcd "$ETCD_VERSION"
log "previous: $PREVIOUS; new: $DIST; versions: $K8S_VERSIONS"
n=0
for v in $K8S_VERSIONS; do
  for s in $SCENARIOS; do
    controllers=no
    if [ "$s" = adoption ]; then
      [ "$v" = "$ADOPTION_ON" ] || continue
      controllers=yes
    fi
    n=$((n + 1))
    log "=== $v $s"
    t0=$SECONDS
    if ! start_apiserver "$v" "/stepflow-upgrade/$n" "$WORK/apiserver-$v-$n.log" ||
       { [ "$controllers" = yes ] && ! start_controllers "$n" "$v" "$KWOK_BIN" "$HERE/../scheduling/kwok-stages.yaml"; }; then
      record_fail "$v" "$s" "cluster starts" "kube-apiserver/$v" "$(cat "$WORK/start-msg")"
      stop_controllers; stop_apiserver; continue
    fi
    rc=0
    KUBECACHEDIR="$WORK/kcache-$n" "$NODE" "$HERE/upgrade-checks.mjs" \
      --kubectl "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" --server-version "$v" --scenario "$s" \
      --previous "$PREVIOUS" --dist "$DIST" --steps "$STEPS" --prune-allowlist "$PRUNE_ALLOWLIST" --managed-by "$MANAGED_BY" \
      --controllers "$controllers" --work "$WORK/scenario-$n" --results "$RESULTS" || rc=$?
    [ "$rc" -le 1 ] || record_fail "$v" "$s" "upgrade-checks.mjs runs" "-" "exit code $rc (see above)"
    stop_controllers
    stop_apiserver
    log "=== $v $s: $((SECONDS - t0))s"
  done
done

python3 - "$RESULTS" "$(( $(date +%s) - T_START ))" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
notes = [r for r in rows if "note" in r]
rows = [r for r in rows if "note" not in r]
if not rows:
    rows.append({"ok": False, "version": "-", "scenario": "-", "check": "some check ran", "object": "-", "message": "no check recorded a result"})
failed = [r for r in rows if not r["ok"]]
print()
print(f"upgrade proof: {len(rows)} checks in {sys.argv[2]}s")
for r in notes:
    print(f"note: [{r['version']} {r['scenario']}] {r['note']}")
for r in failed:
    print(f"FAIL: [{r['version']} {r['scenario']}] {r['check']}: {r['object']}")
print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
PY
