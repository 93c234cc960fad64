#!/usr/bin/env bash
# Builds Go-built tools of the catalogue (catalog.sh) at their pinned versions
# (versions.env) and caches them in $KIT_CACHE/tools/TOOL-VERSION/BIN
# (KIT_CACHE: ${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}).
#
#   install.sh SPEC...      SPEC: TOOL[@VERSION][:BIN[,BIN...]]; without @VERSION the
#                           pinned one, without :BIN every binary of the tool
#   install.sh all          what the tiers use: every tool of the catalogue at its pinned
#                           version (of the older Kubernetes versions, kube-apiserver and kubectl)
#
# e.g. install.sh etcd kubernetes@v1.35.4:kube-apiserver,kubectl kubernetes:kubelet,kube-proxy
#
# One rule for every binary: it is built from the committed wrapper module
# gomod/TOOL-VERSION/ (or, for this repository's own tools, from their module directory)
# with -trimpath and the module's go.sum, and a stamp beside it (BIN.stamp = sha256 of
# go.mod, go.sum, the package, the build flags and the Go version; for a local tool, of its
# files) says whether it is current: a second run builds nothing. A build holds the lock
# of its binary, so two installs never build the same binary twice. Go modules go to the usual
# GOMODCACHE, compiled packages to GOCACHE. Missing Debian packages come from apt-get
# (as root); a missing or too old Go from the Go module proxy (GO_TOOLCHAIN).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(cd "$TOOLS_DIR/../.." && pwd)

usage() {
  echo "usage: $0 TOOL[@VERSION][:BIN[,BIN...]]... | all" >&2
  echo "  tools: $TOOLS_ALL" >&2
  exit 2
}
[[ $# -gt 0 ]] || usage

# --- the requests: "tool version bins..." lines ------------------------------------
requests=()
add_request() { # TOOL VERSION [BIN...]
  local tool=$1 version=$2; shift 2
  tool_recipe "$tool" || { echo "unknown tool: $tool" >&2; usage; }
  local all_bins=() pair b
  for pair in $T_BINS; do all_bins+=("${pair%%=*}"); done
  [[ $# -gt 0 ]] || set -- "${all_bins[@]}"
  for b in "$@"; do
    [[ " ${all_bins[*]} " == *" $b "* ]] || { echo "$tool has no binary '$b' (it has: ${all_bins[*]})" >&2; usage; }
  done
  requests+=("$tool $version $*")
}
for spec in "$@"; do
  case $spec in
    -h|--help) usage ;;
    all)
      for t in $TOOLS_ALL; do
        if [[ $t == kubernetes ]]; then
          # the tiers run every component of the newest version; of the others, the API
          # server and its kubectl
          for v in $KUBERNETES_VERSIONS; do
            if [[ $v == "$KUBERNETES_VERSION" ]]; then add_request kubernetes "$v"; else add_request kubernetes "$v" kube-apiserver kubectl; fi
          done
        else
          add_request "$t" "$(tool_version "$t")"
        fi
      done ;;
    -*) echo "unknown option: $spec" >&2; usage ;;
    *)
      [[ $spec =~ ^([a-z0-9-]+)(@(v[0-9]+\.[0-9]+\.[0-9]+))?(:([a-z0-9,-]+))?$ ]] ||
        { echo "bad tool spec: $spec" >&2; usage; }
      tool=${BASH_REMATCH[1]} version=${BASH_REMATCH[3]} bins=${BASH_REMATCH[5]}
      tool_recipe "$tool" || { echo "unknown tool: $tool" >&2; usage; }
      [[ -n $version ]] || version=$(tool_version "$tool")
      [[ $T_KIND != local || $version == local ]] || { echo "$tool is this repository's own: no @VERSION" >&2; usage; }
      IFS=, read -r -a binlist <<<"$bins"
      add_request "$tool" "$version" ${binlist[@]+"${binlist[@]}"} ;;
  esac
done

# --- prerequisites -------------------------------------------------------------------
need_apt=()
command -v flock >/dev/null || need_apt+=(util-linux)
command -v curl >/dev/null || need_apt+=(curl ca-certificates)
command -v unzip >/dev/null || need_apt+=(unzip)
for r in "${requests[@]}"; do
  tool_recipe "${r%% *}"
  for p in $T_APT; do dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p"); done
done
if [[ ${#need_apt[@]} -gt 0 ]]; then
  mapfile -t need_apt < <(printf '%s\n' "${need_apt[@]}" | sort -u)
  apt_install "${need_apt[@]}"
fi

# Go: at least the newest `go` line among the wrapper and local modules; else GO_TOOLCHAIN.
modfiles=("$TOOLS_DIR"/gomod/*/go.mod)
for r in "${requests[@]}"; do
  tool_recipe "${r%% *}"
  [[ $T_KIND != local ]] || modfiles+=("$ROOT/$T_MODULE/go.mod")
done
go_min=$(awk '$1 == "go" {print $2}' "${modfiles[@]}" | sort -V | tail -1)
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
    name="golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-$arch"
    url="${GOPROXY_URL:-https://proxy.golang.org}/golang.org/toolchain/@v/v0.0.1-$GO_TOOLCHAIN.linux-$arch.zip"
    log "no go >= $go_min on PATH: fetching $url"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    curl -fsSL --retry 3 -o "$tmp/go.zip" "$url"
    unzip -q "$tmp/go.zip" -d "$tmp/x"
    # module zips carry no file modes; the toolchain's programs need +x
    chmod -R a+rX "$tmp/x"
    chmod a+x "$tmp/x/$name"/bin/* "$tmp/x/$name"/pkg/tool/*/*
    mkdir -p "$KIT_CACHE"
    rm -rf "$goroot"
    mv "$tmp/x/$name" "$goroot"
  fi
  export PATH="$goroot/bin:$PATH" GOROOT="$goroot"
  go_ok || die "$goroot/bin/go is older than $go_min"
fi
export GOTOOLCHAIN=local

# --- building -------------------------------------------------------------------------
# build_bin TOOL VERSION BIN [check]: builds one binary unless its stamp is current; with
# "check", only returns 0 when it is current and 1 when it would be built.
build_bin() {
  local tool=$1 version=$2 bin=$3 check=${4:-} pair pkg="" mod out key="" ldflags start=$SECONDS
  tool_recipe "$tool"
  for pair in $T_BINS; do [[ ${pair%%=*} == "$bin" ]] && pkg=${pair#*=}; done
  out=$(tool_dir "$tool" "$version")
  if [[ $T_KIND == local ]]; then
    mod="$ROOT/$T_MODULE"
    key=$( { (cd "$mod" && find . -type f -print0 | sort -z | xargs -0 sha256sum); go env GOVERSION; } | sha256sum | cut -d' ' -f1)
    pkg=.
  else
    mod="$TOOLS_DIR/gomod/$tool-$version"
    [[ -f $mod/go.mod && -f $mod/go.sum ]] ||
      die "no wrapper module gomod/$tool-$version: add it with verify/tools/gen-wrapper.sh $tool $version"
    case $pkg in
      @wrapper) pkg=. ;;
      .) pkg=$T_MODULE ;;
      *) pkg=$T_MODULE/$pkg ;;
    esac
  fi
  ldflags=$(tool_ldflags "$tool" "$version")
  key=$( { echo "$key"; cat "$mod/go.mod" "$mod/go.sum" "$mod/main.go" 2>/dev/null; echo "$pkg|$ldflags|$T_CGO|$T_TAGS"; go env GOVERSION; } | sha256sum | cut -d' ' -f1)
  if [[ -x $out/$bin && -f $out/$bin.stamp && $(cat "$out/$bin.stamp") == "$key" ]]; then
    return 0
  fi
  [[ -z $check ]] || return 1
  mkdir -p "$out"
  rm -f "$out/$bin.stamp"
  log "$tool $version: go build $pkg -> $bin (minutes on a small machine when the Go cache is cold)"
  (cd "$mod" && CGO_ENABLED=$T_CGO GOFLAGS="-mod=readonly -trimpath" \
    go build ${T_TAGS:+-tags "$T_TAGS"} -ldflags="$ldflags" -o "$out/$bin.tmp" "$pkg")
  mv -f "$out/$bin.tmp" "$out/$bin"
  echo "$key" >"$out/$bin.stamp"
  log "$tool $version: $bin built in $((SECONDS - start)) s -> $out/$bin"
}

# One lock per binary ($KIT_CACHE/tools/.locks/TOOL-VERSION-BIN.lock): a second install
# of the same binary waits and then finds it built; installs of different binaries go
# on side by side, so a tier that needs one binary never waits behind another tier's
# whole list (CI builds the catalogue in the background while the first tiers run).
mkdir -p "$KIT_CACHE/tools/.locks"
for r in "${requests[@]}"; do
  read -r -a f <<<"$r"
  for bin in "${f[@]:2}"; do
    build_bin "${f[0]}" "${f[1]}" "$bin" check && continue
    (
      exec 9>"$KIT_CACHE/tools/.locks/${f[0]}-${f[1]}-$bin.lock"
      flock 9
      build_bin "${f[0]}" "${f[1]}" "$bin"
    )
  done
done
