#!/usr/bin/env bash
# Builds etcd and kube-apiserver + kubectl (one set per Kubernetes version)
# from their Go modules and caches them under
#   ${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}/{etcd,kube-apiserver}-<version>/
# from the pinned wrapper modules in gomod/<tool>-<version>/ (see README.md).
# A second run finds the cached binaries (stamp = sha256 of go.mod, go.sum,
# ldflags and Go version) and builds nothing. Go modules go to the normal
# GOMODCACHE. Missing tools come from apt-get; a missing/old Go from the Go
# module proxy (golang.org/toolchain).
#
# usage: install.sh [--versions v1.30.0,v1.37.2] [--etcd v3.6.16]
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  echo "usage: $0 [--versions v1.X.Y[,v1.X.Y...]] [--etcd v3.X.Y]" >&2
  echo "  default versions: ${K8S_VERSIONS// /,}; etcd $ETCD_VERSION" >&2
  exit 2
}

versions=$K8S_VERSIONS
while [[ $# -gt 0 ]]; do
  case $1 in
    --versions) [[ $# -ge 2 ]] || usage; versions=$(parse_versions "$2"); shift 2 ;;
    --etcd) [[ $# -ge 2 && $2 =~ ^v3\.[0-9]+\.[0-9]+$ ]] || usage; ETCD_VERSION=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

total=$SECONDS
need_apt=()
command -v jq >/dev/null || need_apt+=(jq)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl ca-certificates)
command -v unzip >/dev/null || need_apt+=(unzip)
command -v flock >/dev/null || need_apt+=(util-linux)
if [[ ${#need_apt[@]} -gt 0 ]]; then
  log "installing with apt-get: ${need_apt[*]}"
  [[ $(id -u) -eq 0 ]] || die "need root (or preinstalled ${need_apt[*]})"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Go: the wrapper modules need go >= the newest `go` line among them. Without
# such a go on PATH, fetch $GO_TOOLCHAIN as the Go module golang.org/toolchain
# from the Go module proxy (what `go` does itself with GOTOOLCHAIN=auto) into
# the cache, once.
go_min=$(awk '$1 == "go" {print $2}' "$CLUSTER_DIR"/gomod/*/go.mod | sort -V | tail -1)
go_ok() {
  command -v go >/dev/null || return 1
  local have
  have=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null) || return 1
  have=${have#go}
  [[ $(printf '%s\n%s\n' "$go_min" "$have" | sort -V | head -n1) == "$go_min" ]]
}
if ! go_ok; then
  goroot="$KIT_CACHE/$GO_TOOLCHAIN"
  if [[ ! -x $goroot/bin/go ]]; then
    arch=$(uname -m); case $arch in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
    url="${GOPROXY_URL:-https://proxy.golang.org}/golang.org/toolchain/@v/v0.0.1-$GO_TOOLCHAIN.linux-$arch.zip"
    log "no go >= $go_min on PATH: fetching $url"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    curl -fsSL --retry 3 -o "$tmp/go.zip" "$url"
    unzip -q "$tmp/go.zip" -d "$tmp/x"
    # module zips carry no file modes; the toolchain's binaries need +x
    chmod -R a+rX "$tmp/x"
    chmod a+x "$tmp/x/golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-$arch"/bin/* \
      "$tmp/x/golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-$arch"/pkg/tool/*/*
    rm -rf "$goroot"
    mkdir -p "$KIT_CACHE"
    mv "$tmp/x/golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-$arch" "$goroot"
    rm -rf "$tmp"
  fi
  export PATH="$goroot/bin:$PATH" GOROOT="$goroot"
fi
export GOTOOLCHAIN=local
export GOFLAGS="-mod=readonly -trimpath"
export CGO_ENABLED=0

# version_ldflags TOOL VERSION: strip symbols and stamp the version the way
# Kubernetes' own build (hack/lib/version.sh) does; without it the server
# reports v0.0.0-master in /version.
version_ldflags() {
  local flags="-s -w"
  if [[ $1 == kube-apiserver ]]; then
    local v=$2 major minor pkg
    major=${v#v}; major=${major%%.*}
    minor=${v#v*.}; minor=${minor%%.*}
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
      flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
  fi
  echo "$flags"
}

# build TOOL VERSION PKG:BIN...  (builds in the committed wrapper module)
build() {
  local tool=$1 version=$2; shift 2
  local mod="$CLUSTER_DIR/gomod/$tool-$version"
  [[ -f $mod/go.mod && -f $mod/go.sum ]] ||
    die "no wrapper module $mod; create it with: $CLUSTER_DIR/gen-wrapper.sh $tool $version"
  local out key stamp ldflags
  out=$(bin_dir "$tool" "$version")
  ldflags=$(version_ldflags "$tool" "$version")
  key=$( { cat "$mod/go.mod" "$mod/go.sum"; echo "$ldflags"; go env GOVERSION; } | sha256sum | cut -d' ' -f1)
  stamp="$out/.stamp"
  local all_there=1 spec
  for spec in "$@"; do [[ -x $out/${spec#*:} ]] || all_there=0; done
  if [[ $all_there -eq 1 && -f $stamp && $(cat "$stamp") == "$key" ]]; then
    log "$tool $version: cached in $out"
    return 0
  fi
  mkdir -p "$out"
  rm -f "$stamp"
  local start=$SECONDS
  for spec in "$@"; do
    local pkg=${spec%%:*} bin=${spec#*:}
    log "$tool $version: go build $pkg (this takes minutes on a small machine)"
    (cd "$mod" && go build -ldflags="$ldflags" -o "$out/$bin.tmp" "$pkg")
    mv -f "$out/$bin.tmp" "$out/$bin"
  done
  echo "$key" >"$stamp"
  log "$tool $version: built in $((SECONDS - start))s -> $out"
}

mkdir -p "$KIT_CACHE"
# One build at a time (2-core machines); a parallel install.sh waits here.
exec 9>"$KIT_CACHE/.install.lock"
flock 9
go version >&2
build etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3:etcd
for v in $versions; do
  build kube-apiserver "$v" k8s.io/kubernetes/cmd/kube-apiserver:kube-apiserver k8s.io/kubernetes/cmd/kubectl:kubectl
done
"$(bin_dir etcd "$ETCD_VERSION")/etcd" --version | sed -n 1p >&2
for v in $versions; do
  "$(bin_dir kube-apiserver "$v")/kube-apiserver" --version >&2
done
log "install done in $((SECONDS - total))s"
