# shellcheck shell=bash
# Shared helpers for install.sh and run.sh (sourced, not executed).

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$CLUSTER_DIR/versions.env"
KIT_CACHE=${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}
# shellcheck disable=SC2034 # used by the scripts that source this file
K8S_VERSIONS=$K8S_VERSIONS_DEFAULT
# shellcheck disable=SC2034
ETCD_VERSION=$ETCD_VERSION_DEFAULT

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# bin_dir TOOL VERSION -> cache directory holding the built binaries
bin_dir() { printf '%s/%s-%s\n' "$KIT_CACHE" "$1" "$2"; }

# parse_versions "v1.30.0,v1.37.2" -> space separated list, validated
parse_versions() {
  local v out=()
  IFS=, read -r -a _vs <<<"$1"
  for v in "${_vs[@]}"; do
    [[ $v =~ ^v1\.[0-9]+\.[0-9]+$ ]] || die "bad Kubernetes version '$v' (want e.g. v1.30.0)"
    out+=("$v")
  done
  [[ ${#out[@]} -gt 0 ]] || die "empty version list"
  echo "${out[*]}"
}
