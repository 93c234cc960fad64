# shellcheck shell=bash
# The one place that knows where a Go-built tool lives (sourced by every tier and by
# install.sh and gen-wrapper.sh).
#
#   tool_dir TOOL [VERSION]      $KIT_CACHE/tools/TOOL-VERSION (VERSION: versions.env's)
#   tool_bin TOOL BIN [VERSION]  the path of one binary in it
#   tool_version TOOL            the pinned version of TOOL
#   tools_install SPEC...        verify/tools/install.sh SPEC... (builds what is missing)
#   apt_install PACKAGE...       the Debian packages not installed yet, as root, with apt-get
#                                under one machine-wide lock ($KIT_CACHE/.apt.lock): tiers run
#                                side by side, and apt-get fails at once on a lock it cannot get
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
apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "needs the Debian packages ${missing[*]}: run as root or install them"
  log "apt-get install ${missing[*]}"
  mkdir -p "$KIT_CACHE"
  DEBIAN_FRONTEND=noninteractive flock "$KIT_CACHE/.apt.lock" sh -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null' apt_install "${missing[@]}"
}
