#!/usr/bin/env bash
# Builds what the scheduling tier runs beside the cluster tier's etcd and
# kube-apiserver, and caches it under ${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}/:
#   kube-controllers-<k8s version>/{kube-scheduler,kube-controller-manager}
#       from gomod/kube-controllers-<version>/ (the cluster tier's pinned
#       k8s.io/kubernetes wrapper plus what only these two import; every module
#       it shares with verify/cluster/gomod/kube-apiserver-<version> is checked
#       to be at the same version, so the Go build cache is shared)
#   kwok-<kwok version>/kwok   from gomod/kwok-<version>/ (sigs.k8s.io/kwok)
# First runs verify/cluster/install.sh for etcd, kube-apiserver, kubectl and
# Go. Builds take the same lock ($STEPFLOW_KIT_CACHE/.install.lock) and the
# same stamp rule (.stamp = sha256 of go.mod, go.sum, ldflags, Go version) as
# the cluster tier: a second run builds nothing.
#
# usage: install.sh [--k8s v1.37.2] [--kwok v0.8.0]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cluster/lib.sh
. "$HERE/../cluster/lib.sh"
# shellcheck source=versions.env
. "$HERE/versions.env"

usage() {
  echo "usage: $0 [--k8s v1.X.Y] [--kwok v0.X.Y]" >&2
  echo "  defaults: --k8s $SCHED_K8S_VERSION --kwok $KWOK_VERSION" >&2
  exit 2
}
k8s=$SCHED_K8S_VERSION
kwok=$KWOK_VERSION
while [[ $# -gt 0 ]]; do
  case $1 in
    --k8s) [[ $# -ge 2 && $2 =~ ^v1\.[0-9]+\.[0-9]+$ ]] || usage; k8s=$2; shift 2 ;;
    --kwok) [[ $# -ge 2 && $2 =~ ^v0\.[0-9]+\.[0-9]+$ ]] || usage; kwok=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

total=$SECONDS
"$HERE/../cluster/install.sh" --versions "$k8s"

# The Go that verify/cluster/install.sh used: the one on PATH when new enough,
# else the toolchain it fetched into the cache.
go_min=$(awk '$1 == "go" {print $2}' "$HERE"/gomod/*/go.mod | sort -V | tail -1)
go_have() {
  local have
  have=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null) || return 1
  have=${have#go}
  [[ $(printf '%s\n%s\n' "$go_min" "$have" | sort -V | head -n1) == "$go_min" ]]
}
if ! command -v go >/dev/null || ! go_have; then
  # shellcheck disable=SC2153 # GO_TOOLCHAIN comes from verify/cluster/versions.env
  goroot="$KIT_CACHE/$GO_TOOLCHAIN"
  [[ -x $goroot/bin/go ]] || die "no go >= $go_min on PATH and none in $goroot"
  export PATH="$goroot/bin:$PATH" GOROOT="$goroot"
  go_have || die "$goroot/bin/go is older than $go_min"
fi
export GOTOOLCHAIN=local
export GOFLAGS="-mod=readonly -trimpath"
export CGO_ENABLED=0

# same_pins MODULE_DIR CLUSTER_GOMOD: every module both go.mod files require
# (or replace) is at the same version in both.
same_pins() {
  awk '
    FNR == 1 { f++ }
    /^\t/ || /^require / {
      line = $0; sub(/^require /, "", line); sub(/\/\/.*/, "", line)
      n = split(line, w, " ")
      if (n >= 4 && w[2] == "=>") { key = w[1] " =>"; val = w[3] " " w[4] }
      else if (n >= 2 && w[2] != "=>") { key = w[1]; val = w[2] }
      else next
      if (f == 1) pin[key] = val
      else if ((key in pin) && pin[key] != val) { print key ": " pin[key] " here, " val " in the cluster wrapper"; bad = 1 }
    }
    END { exit bad }
  ' "$1/go.mod" "$2"
}

# k8s_ldflags VERSION: the version stamp Kubernetes' own build sets
# (the same flags verify/cluster/install.sh gives kube-apiserver).
k8s_ldflags() {
  local v=$1 major minor pkg flags="-s -w"
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

# build NAME VERSION LDFLAGS PKG:BIN...  (in gomod/NAME-VERSION)
build() {
  local name=$1 version=$2 ldflags=$3; shift 3
  local mod="$HERE/gomod/$name-$version" out key stamp spec all_there=1 start=$SECONDS
  [[ -f $mod/go.mod && -f $mod/go.sum ]] ||
    die "no wrapper module $mod; create it with: $HERE/gen-wrapper.sh $name $version"
  out=$(bin_dir "$name" "$version")
  key=$( { cat "$mod/go.mod" "$mod/go.sum"; echo "$ldflags"; go env GOVERSION; } | sha256sum | cut -d' ' -f1)
  stamp="$out/.stamp"
  for spec in "$@"; do [[ -x $out/${spec#*:} ]] || all_there=0; done
  if [[ $all_there -eq 1 && -f $stamp && $(cat "$stamp") == "$key" ]]; then
    log "$name $version: cached in $out"
    return 0
  fi
  mkdir -p "$out"
  rm -f "$stamp"
  for spec in "$@"; do
    local pkg=${spec%%:*} bin=${spec#*:}
    log "$name $version: go build $pkg (this takes minutes on a small machine)"
    (cd "$mod" && go build -ldflags="$ldflags" -o "$out/$bin.tmp" "$pkg")
    mv -f "$out/$bin.tmp" "$out/$bin"
  done
  echo "$key" >"$stamp"
  log "$name $version: built in $((SECONDS - start))s -> $out"
}

cluster_mod="$CLUSTER_DIR/gomod/kube-apiserver-$k8s/go.mod"
[[ -f $cluster_mod ]] || die "no cluster wrapper $cluster_mod"
same_pins "$HERE/gomod/kube-controllers-$k8s" "$cluster_mod" ||
  die "gomod/kube-controllers-$k8s pins other versions than $cluster_mod; regenerate it with: $HERE/gen-wrapper.sh kube-controllers $k8s"

mkdir -p "$KIT_CACHE"
# One build at a time (2-core machines), shared with verify/cluster/install.sh.
exec 9>"$KIT_CACHE/.install.lock"
flock 9
build kube-controllers "$k8s" "$(k8s_ldflags "$k8s")" \
  k8s.io/kubernetes/cmd/kube-scheduler:kube-scheduler \
  k8s.io/kubernetes/cmd/kube-controller-manager:kube-controller-manager
build kwok "$kwok" "-s -w" sigs.k8s.io/kwok/cmd/kwok:kwok
"$(bin_dir kube-controllers "$k8s")/kube-scheduler" --version >&2
"$(bin_dir kube-controllers "$k8s")/kube-controller-manager" --version >&2
"$(bin_dir kwok "$kwok")/kwok" --version >&2 || true
log "scheduling install done in $((SECONDS - total))s"
