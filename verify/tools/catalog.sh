# shellcheck shell=bash
# shellcheck disable=SC2034 # T_* and TOOLS_ALL are read by the scripts that source this file
# The catalogue of Go-built tools: what each one is built from and how (sourced by lib.sh).
#
# tool_recipe TOOL sets, for that tool:
#   T_MODULE   the Go module the wrapper requires (or, for a local tool, the module's
#              directory in this repository, relative to its root)
#   T_KIND     wrapper: the committed wrapper module gomod/TOOL-VERSION requires T_MODULE;
#              local: a Go module of this repository, built in its own directory
#   T_BINS     BIN=PACKAGE pairs, space separated; PACKAGE relative to T_MODULE ("." = its root)
#   T_CGO      1 where the tool needs cgo (runc: libseccomp), else 0
#   T_TAGS     go build -tags
#   T_APT      Debian packages the build needs beyond Go
#   T_VERSION_VAR  the variable of versions.env that holds its default version
# and tool_ldflags TOOL VERSION prints the tool's -ldflags (version stamps as its own
# release build sets them, symbols stripped).
tool_recipe() {
  T_CGO=0 T_TAGS="" T_APT="" T_KIND=wrapper
  case $1 in
    kubernetes)
      T_MODULE=k8s.io/kubernetes T_VERSION_VAR=KUBERNETES_VERSION
      T_BINS="kube-apiserver=cmd/kube-apiserver kubectl=cmd/kubectl kube-scheduler=cmd/kube-scheduler kube-controller-manager=cmd/kube-controller-manager kubelet=cmd/kubelet kube-proxy=cmd/kube-proxy" ;;
    etcd)
      T_MODULE=go.etcd.io/etcd/server/v3 T_VERSION_VAR=ETCD_VERSION T_BINS="etcd=." ;;
    kwok)
      T_MODULE=sigs.k8s.io/kwok T_VERSION_VAR=KWOK_VERSION T_BINS="kwok=cmd/kwok" ;;
    buildkit)
      T_MODULE=github.com/moby/buildkit T_VERSION_VAR=BUILDKIT_VERSION
      T_BINS="buildkitd=cmd/buildkitd buildctl=cmd/buildctl" ;;
    containerd)
      T_MODULE=github.com/containerd/containerd/v2 T_VERSION_VAR=CONTAINERD_VERSION
      T_BINS="containerd=cmd/containerd containerd-shim-runc-v2=cmd/containerd-shim-runc-v2 ctr=cmd/ctr" ;;
    runc)
      T_MODULE=github.com/opencontainers/runc T_VERSION_VAR=RUNC_VERSION T_BINS="runc=."
      T_CGO=1 T_TAGS=seccomp T_APT="gcc libc6-dev libseccomp-dev pkg-config" ;;
    cni-plugins)
      T_MODULE=github.com/containernetworking/plugins T_VERSION_VAR=CNI_PLUGINS_VERSION
      T_BINS="bridge=plugins/main/bridge host-local=plugins/ipam/host-local loopback=plugins/main/loopback portmap=plugins/meta/portmap" ;;
    coredns)
      T_MODULE=github.com/coredns/coredns T_VERSION_VAR=COREDNS_VERSION T_BINS="coredns=." ;;
    kube-router)
      T_MODULE=github.com/cloudnativelabs/kube-router/v2 T_VERSION_VAR=KUBE_ROUTER_VERSION
      T_BINS="kube-router=cmd/kube-router" ;;
    local-path-provisioner)
      T_MODULE=github.com/rancher/local-path-provisioner T_VERSION_VAR=LOCAL_PATH_PROVISIONER_VERSION
      T_BINS="local-path-provisioner=." ;;
    helm)
      T_MODULE=helm.sh/helm/v4 T_VERSION_VAR=HELM_VERSION T_BINS="helm=cmd/helm" ;;
    containerfile-check)
      # this repository's own checker: every Containerfile through BuildKit's frontend
      T_MODULE=test/scripts/containerfiles T_KIND=local T_VERSION_VAR="" T_BINS="containerfile-check=." ;;
    *) return 1 ;;
  esac
}

# Every tool of the catalogue, in the order `install.sh all` builds them.
TOOLS_ALL="etcd kubernetes kwok buildkit containerd runc cni-plugins coredns kube-router local-path-provisioner helm containerfile-check"

# k8s_version_ldflags VERSION: the version stamp of Kubernetes' own build (hack/lib/version.sh);
# without it a server reports v0.0.0-master.
k8s_version_ldflags() {
  local v=$1 major minor pkg flags=""
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

tool_ldflags() {
  local v=$2 x=""
  case $1 in
    kubernetes) x=$(k8s_version_ldflags "$v") ;;
    buildkit) x="-X github.com/moby/buildkit/version.Version=$v -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit" ;;
    containerd) x="-X github.com/containerd/containerd/v2/version.Version=$v -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2" ;;
    runc) x="-X main.version=${v#v}" ;;
    cni-plugins) x="-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$v" ;;
    kube-router) x="-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$v" ;;
    local-path-provisioner) x="-X main.VERSION=$v" ;;
    helm) x="-X helm.sh/helm/v4/internal/version.version=$v" ;;
  esac
  x=${x# }
  echo "-s -w${x:+ $x}"
}
