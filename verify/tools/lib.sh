# shellcheck shell=bash
# The one place that knows where a Go-built tool lives (sourced by every tier and by
# install.sh and gen-wrapper.sh).
#
#   tool_dir TOOL [VERSION]      $KIT_CACHE/tools/TOOL-VERSION (VERSION: versions.env's)
#   tool_bin TOOL BIN [VERSION]  the path of one binary in it
#   tool_version TOOL            the pinned version of TOOL
#   tools_install SPEC...        verify/tools/install.sh SPEC... (builds what is missing)
TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$TOOLS_DIR/versions.env"
# shellcheck source=catalog.sh
. "$TOOLS_DIR/catalog.sh"
KIT_CACHE=${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

tool_version() {
  tool_recipe "$1" || die "unknown tool '$1' (known: $TOOLS_ALL)"
  if [[ $T_KIND == local ]]; then echo local; return; fi
  echo "${!T_VERSION_VAR}"
}
tool_dir() {
  local v=${2:-}
  [[ -n $v ]] || v=$(tool_version "$1") || return 1
  printf '%s/tools/%s-%s\n' "$KIT_CACHE" "$1" "$v"
}
tool_bin() { printf '%s/%s\n' "$(tool_dir "$1" "${3:-}")" "$2"; }
tools_install() { "$TOOLS_DIR/install.sh" "$@"; }
