#!/usr/bin/env bash
# Upgrade proof: the previous release's manifests (previous/<release>/, applied
# the way the README told users: `kubectl apply -f FILE`) upgraded to the new
# ones (dist/), on a real kube-apiserver + etcd (127.0.0.1). The documented
# upgrade is the one-time steps of previous/<release>/upgrade.json, then the
# documented command, scripts/deploy.sh <file> (the Namespace, a server dry run,
# the pruning apply). Each scenario starts from an EMPTY cluster state
# (fresh etcd key prefix):
#   readme-apply             plain `kubectl apply -f NEW`: what it leaves behind or
#                            breaks (a Service beside or without its workload), and
#                            that the one-time steps delete every object it rejects;
#                            deploy.sh without them changes nothing (its dry run)
#   documented               the documented upgrade (README "Upgrading", docs/upgrading.md) with stand-ins
#                            for what the controllers made: exactly the new output
#                            remains, claims and pods are never deleted, every new
#                            selector selects the kept pods of its own workload and
#                            nothing else, a re-run changes nothing
#   next-release             the documented command installs, and a release that only
#                            bumps app.kubernetes.io/version upgrades without extra steps;
#                            a release that drops a component: --dry-run shows exactly what
#                            goes and changes nothing, the command prunes exactly that (no
#                            claim, no Namespace), and the same command again changes nothing
#   shared-namespace         two installations in one namespace (mutation-shared.mjs
#                            --separate), each deployed with the command: a release of one
#                            prunes only its own objects, the other's, the Namespace and
#                            every claim stay untouched; a control without the instance label
#   prune-without-allowlist  control: pruning by label with kubectl's default
#                            allowlist deletes the other environment's Namespace
#   adoption                 only on the newest version (KUBERNETES_VERSION), with the
#                            real kube-controller-manager, kube-scheduler and kwok
#                            nodes: the new workloads adopt and roll the running pods,
#                            the core keeps its claim, ready pods throughout (only from a
#                            release whose one-time steps delete workloads)
# The checks are in upgrade-checks.mjs and upgrade-adoption.mjs. next-release and
# shared-namespace exercise the command on the newest server only (what they prove is the
# script's and kubectl's, the same on every server; --every-version runs them on each):
# the upgrade from the previous release runs on every version.
#
# Usage: upgrade.sh [--versions v1.35.4,v1.37.2] [--previous DIR] [--dist DIR]
#                   [--steps FILE] [--only SCENARIO,...] [--every-version] [--keep-logs]
#   --previous  the previous release's manifests (default previous/0.3.0)
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
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck disable=SC2034 # read by verify/lib/harness.sh (log, require_tools)
HARNESS_TIER=upgrade

# The documented upgrade command's selector and allowlist (README "Upgrading"):
# every kind the kit emits EXCEPT Namespace (pruning one would delete another
# environment's namespace and all in it) and PersistentVolumeClaim (state).
# (read from scripts/deploy.sh, the documented command; the checks hold the allowlist to
# the kinds of both releases)
DEPLOY="$ROOT/scripts/deploy.sh"
MANAGED_BY=$(sed -n 's/^readonly MANAGED_BY="\(.*\)"$/\1/p' "$DEPLOY")
PRUNE_ALLOWLIST=$(sed -n 's/^readonly PRUNE_ALLOWLIST="\(.*\)"$/\1/p' "$DEPLOY" | tr ' ' ',')

PREVIOUS="$HERE/previous/0.3.0"
STEPS=""
DIST="$ROOT/dist"
NODE=${NODE:-node}
K8S_VERSIONS=$KUBERNETES_VERSIONS
ALL_SCENARIOS="readme-apply documented next-release shared-namespace prune-without-allowlist adoption"
NEWEST_ONLY="next-release shared-namespace"
SCENARIOS=$ALL_SCENARIOS

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
bad_usage() { echo "upgrade.sh: $*" >&2; usage >&2; exit 2; }
need_arg() { [ "$#" -ge 2 ] || bad_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --versions) need_arg "$@"; K8S_VERSIONS=$(parse_versions "$2"); shift 2 ;;
    --previous) need_arg "$@"; PREVIOUS=$2; shift 2 ;;
    --dist) need_arg "$@"; DIST=$2; shift 2 ;;
    --steps) need_arg "$@"; STEPS=$2; shift 2 ;;
    --only) need_arg "$@"; SCENARIOS=${2//,/ }; shift 2 ;;
    --every-version) NEWEST_ONLY=""; shift ;;
    --keep-logs) export KEEP_LOGS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument '$1'" ;;
  esac
done

die() { echo "upgrade.sh: $*" >&2; exit 2; }
require_tools openssl python3 "$NODE"
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

if [ -z "$MANAGED_BY" ] || [ -z "$PRUNE_ALLOWLIST" ]; then die "cannot read MANAGED_BY and PRUNE_ALLOWLIST from $DEPLOY"; fi
# Adoption needs workloads the one-time steps delete (a release without any keeps them).
if [[ " $SCENARIOS " == *" adoption "* ]] && ! python3 -c 'import json,sys; sys.exit(0 if any(json.load(open(sys.argv[1])).get("once", {}).values()) else 1)' "$STEPS"; then
  log "adoption: not run ($STEPS has no one-time steps: the workloads are kept, nothing to adopt)"
  SCENARIOS=${SCENARIOS//adoption/}
fi
# The adoption scenario runs where the controllers are of the server's own version, the newest.
ADOPTION_ON=""
if [[ " $SCENARIOS " == *" adoption "* && " $K8S_VERSIONS " == *" $KUBERNETES_VERSION "* ]]; then
  ADOPTION_ON=$KUBERNETES_VERSION
  cluster_install "$KUBERNETES_VERSION" controllers
elif [[ " $SCENARIOS " == *" adoption "* ]]; then
  log "adoption: not run (its controllers are $KUBERNETES_VERSION, not among --versions $K8S_VERSIONS)"
fi
cluster_install "$K8S_VERSIONS"   # builds what the cache lacks (a cold build takes long)
harness_init upgrade
# Two installations in one namespace, one file each (the library, compiled by npm run synth).
SHARED="$WORK/shared"
if [[ " $SCENARIOS " == *" shared-namespace "* ]]; then
  [ -f "$ROOT/lib/src/index.js" ] || (cd "$ROOT" && npx --no-install tsc -p .)
  mkdir -p "$SHARED"
  "$NODE" "$HERE/mutation-shared.mjs" "$SHARED" --separate >&2
fi
harness_on_exit stop_servers

make_pki
start_etcd "$ETCD_VERSION"
log "previous: $PREVIOUS; new: $DIST; versions: $K8S_VERSIONS"
n=0
for v in $K8S_VERSIONS; do
  for s in $SCENARIOS; do
    controllers=no
    # the last of --versions (newest last)
    if [[ " $NEWEST_ONLY " == *" $s "* && $v != "${K8S_VERSIONS##* }" ]]; then continue; fi
    if [ "$s" = adoption ]; then
      [ "$v" = "$ADOPTION_ON" ] || continue
      controllers=yes
    fi
    n=$((n + 1))
    log "=== $v $s"
    t0=$SECONDS
    if ! start_apiserver "$v" "/stepflow-upgrade/$n" "$WORK/apiserver-$v-$n.log" ||
       { [ "$controllers" = yes ] && ! start_controllers "$n" "$v" "$HERE/../scheduling/kwok-stages.yaml"; }; then
      record_fail "$s" "cluster starts" "kube-apiserver/$v" "$(cat "$WORK/start-msg")" "$v"
      stop_controllers; stop_apiserver; continue
    fi
    rc=0
    KUBECACHEDIR="$WORK/kcache-$n" "$NODE" "$HERE/upgrade-checks.mjs" \
      --kubectl "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" --server-version "$v" --scenario "$s" \
      --previous "$PREVIOUS" --dist "$DIST" --steps "$STEPS" --prune-allowlist "$PRUNE_ALLOWLIST" --managed-by "$MANAGED_BY" \
      --controllers "$controllers" --work "$WORK/scenario-$n" --results "$RESULTS" --deploy "$DEPLOY" --shared "$SHARED" || rc=$?
    [ "$rc" -le 1 ] || record_fail "$s" "upgrade-checks.mjs runs" "-" "exit code $rc (see above)" "$v"
    stop_controllers
    stop_apiserver
    log "=== $v $s: $((SECONDS - t0))s"
  done
done

harness_summary "upgrade proof"
