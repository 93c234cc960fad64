#!/usr/bin/env bash
# Local development environment for StepFlow: a Lima VM (scripts/lima/stepflow-dev.yaml)
# running containerd, BuildKit, nerdctl, k3s and a registry at localhost:5000.
# Runs with macOS /bin/bash 3.2 as well as bash 5.
set -euo pipefail

PROG="dev.sh"
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/common.sh"

INSTANCE="${LIMA_INSTANCE:-stepflow-dev}"
LIMA_TEMPLATE="${KIT_ROOT}/scripts/lima/stepflow-dev.yaml"
KUBECONFIG_FILE="${KUBECONFIG_OUT:-${HOME}/.kube/${INSTANCE}.yaml}"
K3S_API_URL="https://127.0.0.1:6443"
K3S_KUBECONFIG_IN_VM="/etc/rancher/k3s/k3s.yaml"
REGISTRY_CONTAINER="stepflow-registry"
# Pinned registry image (distribution). Set STEPFLOW_REGISTRY_IMAGE to pin a digest.
REGISTRY_IMAGE="${STEPFLOW_REGISTRY_IMAGE:-docker.io/library/registry:2.8.3}"
# The synthesized dev manifest (overridable for tests).
DEV_MANIFEST="${STEPFLOW_DEV_MANIFEST:-${KIT_ROOT}/dist/dev.yaml}"
BUILD_CACHE_DIR="${STEPFLOW_KIT_CACHE:-${HOME}/.cache/stepflow-kit}/buildkit"
DEV_LOCK="${STEPFLOW_KIT_CACHE:-${HOME}/.cache/stepflow-kit}/dev-images.lock.json"

usage() {
    cat <<'USAGE'
usage: scripts/dev.sh <command> [arguments]

Commands:
  setup                      create the Lima VM from scripts/lima/stepflow-dev.yaml,
                             start it, start the registry, export the kubeconfig
  start                      start the VM (containerd, BuildKit, k3s) and export the
                             kubeconfig
  stop                       stop the VM
  status                     VM state and architecture, services, registry, k3s node
  build <component|all> [build.sh options]
                             build with the VM's BuildKit and push to the VM's
                             registry (see scripts/build.sh --help); the digests go
                             to ~/.cache/stepflow-kit/dev-images.lock.json unless
                             --lock is given
  run <component> [--tag T] [--dev] [--detach]
                             run an image in the VM with the manifests' security
                             settings (read-only root, non-root UID, no capabilities,
                             no privilege escalation, tmpfs for writable paths);
                             default tag: dev, the one `build` pushes
  deploy                     npm run synth, then scripts/deploy.sh dist/dev.yaml
                             (the Namespace, then kubectl apply --prune)
  test                       wait until the deployed StepFlow workloads are ready
  registry                   start (if needed) and check the registry at localhost:5000
  logs <component> [--follow] [--local]
                             logs of the component's pods (--local: of the container
                             started by `run`)
  clean [--all]              remove run containers, the dev deployment, BuildKit's cache
                             in the VM and the local build cache; --all also deletes the
                             VM and the exported kubeconfig
  -h, --help                 show this help

Environment:
  LIMA_INSTANCE              VM name (default: stepflow-dev)
  LIMA_HOME                  Lima's directory (default: ~/.lima)
  KUBECONFIG_OUT             exported kubeconfig (default: ~/.kube/<instance>.yaml)
  STEPFLOW_KIT_CACHE         cache root (default: ~/.cache/stepflow-kit)
  STEPFLOW_REGISTRY_IMAGE    registry image (default: docker.io/library/registry:2.8.3)
  STEPFLOW_REGISTRY_WAIT     seconds to wait for a starting registry (default: 15)
  STEPFLOW_DEV_MANIFEST      manifest for deploy/logs/clean (default: dist/dev.yaml)

Exit status: 0 ok, 2 usage error, 3 a tool is missing (limactl, kubectl, npm),
4 the VM is not there, not running or of the wrong architecture.
USAGE
}

usage_error() {
    err "$1"
    usage >&2
    exit "${EXIT_USAGE}"
}

# --- Lima helpers --------------------------------------------------------------------
require_tool() {
    local tool="$1"
    shift
    have "${tool}" || die "${EXIT_PREREQ}" "${tool} is not installed" "$@"
}

require_limactl() {
    require_tool limactl "macOS: brew install lima" \
        "Linux: see https://lima-vm.io/docs/installation/"
}

# vm_status : Running, Stopped, ... or empty when the VM does not exist.
vm_status() {
    limactl list --format '{{.Status}}' "${INSTANCE}" 2>/dev/null || true
}

# vm COMMAND... : run COMMAND in the VM (from /, the host directory is not mounted).
vm() {
    limactl shell --workdir / "${INSTANCE}" "$@"
}

require_running() {
    require_limactl
    local status
    status="$(vm_status)"
    if [ -z "${status}" ]; then
        die "${EXIT_UNREACHABLE}" "the Lima VM '${INSTANCE}' does not exist" \
            "create it: scripts/dev.sh setup"
    fi
    if [ "${status}" != "Running" ]; then
        die "${EXIT_UNREACHABLE}" "the Lima VM '${INSTANCE}' is not running (status: ${status})" \
            "start it: scripts/dev.sh start"
    fi
}

# check_arch : the VM must run the host's architecture (no emulated VM).
check_arch() {
    local want got
    want="$(host_arch)"
    got="$(vm uname -m)"
    if [ "${got}" != "${want}" ]; then
        die "${EXIT_UNREACHABLE}" "the Lima VM '${INSTANCE}' runs ${got}, but this host is ${want}" \
            "recreate it for this host (the template picks the image by architecture):" \
            "  scripts/dev.sh clean --all   # = limactl delete --force ${INSTANCE}" \
            "  scripts/dev.sh setup"
    fi
}

buildkit_host() {
    printf 'unix://%s/%s/sock/buildkitd.sock\n' "${LIMA_HOME:-${HOME}/.lima}" "${INSTANCE}"
}

# export_kubeconfig : copy k3s' kubeconfig to the host, server URL -> 127.0.0.1:6443.
export_kubeconfig() {
    local content
    content="$(vm sudo cat "${K3S_KUBECONFIG_IN_VM}")" ||
        die "${EXIT_UNREACHABLE}" "cannot read ${K3S_KUBECONFIG_IN_VM} in the VM (is k3s up?)" \
            "check: limactl shell ${INSTANCE} sudo systemctl status k3s"
    mkdir -p "$(dirname "${KUBECONFIG_FILE}")"
    (
        umask 077
        printf '%s\n' "${content}" |
            sed -E "s#^([[:space:]]*server:[[:space:]]*).*#\\1${K3S_API_URL}#" >"${KUBECONFIG_FILE}"
    )
    info "kubeconfig written to ${KUBECONFIG_FILE} (server ${K3S_API_URL})"
}

require_kubeconfig() {
    [ -f "${KUBECONFIG_FILE}" ] || export_kubeconfig
}

kube() {
    kubectl --kubeconfig "${KUBECONFIG_FILE}" "$@"
}

# registry_port : the port of the contract's default registry (localhost:5000 -> 5000).
registry_port() {
    local reg
    reg="$(contract images.defaultRegistry)"
    printf '%s\n' "${reg##*:}"
}

registry_up() {
    vm curl -fsS -o /dev/null "http://localhost:$(registry_port)/v2/" >/dev/null 2>&1
}

# component_arg NAME : validate a component name given to run/logs.
component_arg() {
    [ -n "${1:-}" ] || usage_error "missing component (${CONTRACT_COMPONENTS[*]})"
    is_component "$1" || usage_error "unknown component: $1 (expected: ${CONTRACT_COMPONENTS[*]})"
}

# dev_namespace : the namespace of dist/dev.yaml (its first "namespace:" field).
dev_namespace() {
    [ -f "${DEV_MANIFEST}" ] || die 1 "${DEV_MANIFEST} does not exist" \
        "generate and deploy it: scripts/dev.sh deploy"
    local ns
    ns="$(sed -n -E 's/^[[:space:]]+namespace:[[:space:]]*"?([a-z0-9-]+)"?[[:space:]]*$/\1/p' "${DEV_MANIFEST}" | head -n 1)"
    [ -n "${ns}" ] || die 1 "no namespace found in ${DEV_MANIFEST}"
    printf '%s\n' "${ns}"
}

# --- commands --------------------------------------------------------------------------
cmd_setup() {
    [ "$#" -eq 0 ] || usage_error "setup takes no arguments"
    require_limactl
    local status
    status="$(vm_status)"
    if [ -z "${status}" ]; then
        info "creating the Lima VM '${INSTANCE}' from ${LIMA_TEMPLATE}"
        limactl create --name="${INSTANCE}" --tty=false "${LIMA_TEMPLATE}"
    else
        info "the Lima VM '${INSTANCE}' exists (status: ${status})"
    fi
    if [ "${status}" != "Running" ]; then
        limactl start --tty=false "${INSTANCE}"
    fi
    check_arch
    ensure_registry
    export_kubeconfig
    next_steps
}

next_steps() {
    cat >&2 <<EOF
${PROG}: the VM '${INSTANCE}' is ready.
  export BUILDKIT_HOST=$(buildkit_host)   # only for calling scripts/build.sh directly
  export KUBECONFIG=${KUBECONFIG_FILE}
  scripts/dev.sh build all && scripts/dev.sh deploy
EOF
}

cmd_start() {
    [ "$#" -eq 0 ] || usage_error "start takes no arguments"
    require_limactl
    local status
    status="$(vm_status)"
    [ -n "${status}" ] || die "${EXIT_UNREACHABLE}" "the Lima VM '${INSTANCE}' does not exist" \
        "create it: scripts/dev.sh setup"
    if [ "${status}" != "Running" ]; then
        limactl start --tty=false "${INSTANCE}"
    fi
    check_arch
    export_kubeconfig
    next_steps
}

cmd_stop() {
    [ "$#" -eq 0 ] || usage_error "stop takes no arguments"
    require_limactl
    local status
    status="$(vm_status)"
    [ -n "${status}" ] || die "${EXIT_UNREACHABLE}" "the Lima VM '${INSTANCE}' does not exist"
    if [ "${status}" = "Running" ]; then
        limactl stop "${INSTANCE}"
    else
        info "the Lima VM '${INSTANCE}' is not running (status: ${status})"
    fi
}

cmd_status() {
    [ "$#" -eq 0 ] || usage_error "status takes no arguments"
    require_running
    check_arch
    printf 'vm          %s: Running (%s)\n' "${INSTANCE}" "$(host_arch)"
    local svc state failed=0
    for svc in containerd buildkit k3s; do
        state="$(vm systemctl is-active "${svc}" 2>/dev/null || true)"
        printf 'service     %s: %s\n' "${svc}" "${state:-unknown}"
        [ "${state}" = "active" ] || failed=1
    done
    if registry_up; then
        printf 'registry    localhost:%s: up\n' "$(registry_port)"
    else
        printf 'registry    localhost:%s: down (scripts/dev.sh registry)\n' "$(registry_port)"
        failed=1
    fi
    printf 'buildkit    %s\n' "$(buildkit_host)"
    printf 'kubeconfig  %s\n' "${KUBECONFIG_FILE}"
    if have kubectl && [ -f "${KUBECONFIG_FILE}" ]; then
        kube get nodes || failed=1
    fi
    [ "${failed}" = 0 ] || exit 1
}

cmd_build() {
    [ "$#" -gt 0 ] || usage_error "build needs a component (${CONTRACT_COMPONENTS[*]} or all)"
    local arg add_push=1 add_tag=1 add_lock=1 dry=0
    for arg in "$@"; do
        case "${arg}" in
            --push) add_push=0 ;;
            --tag | --tag=*) add_tag=0 ;;
            --lock | --lock=*) add_lock=0 ;;
            --dry-run) dry=1 ;;
            -h | --help) exec "${KIT_ROOT}/scripts/build.sh" --help ;;
        esac
    done
    if [ "${dry}" = 0 ]; then
        require_running
        check_arch
        ensure_registry
    fi
    local -a extra=()
    # k3s pulls from the registry, so dev builds are pushed there, with the tag the
    # dev manifests use (contract images.devTag) unless one is given.
    [ "${add_push}" = 0 ] || extra+=(--push)
    [ "${add_tag}" = 0 ] || extra+=(--tag "$(contract images.devTag)")
    # The digests of dev pushes stay out of the repository's images.lock.json (a release's).
    if [ "${add_lock}" = 1 ]; then
        mkdir -p "$(dirname "${DEV_LOCK}")"
        extra+=(--lock "${DEV_LOCK}")
    fi
    BUILDKIT_HOST="${BUILDKIT_HOST:-$(buildkit_host)}" \
        exec "${KIT_ROOT}/scripts/build.sh" "$@" ${extra[@]+"${extra[@]}"}
}

cmd_run() {
    local c="${1:-}"
    component_arg "${c}"
    shift
    local tag="" dev=0 detach=0
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --tag)
                [ -n "${2:-}" ] || usage_error "--tag needs a value"
                tag="$2"
                shift 2
                ;;
            --tag=*) tag="${1#*=}"; shift ;;
            --dev) dev=1; shift ;;
            -d | --detach) detach=1; shift ;;
            *) usage_error "unknown option for run: $1" ;;
        esac
    done
    require_running
    check_arch
    # The tag `dev.sh build` pushes (contract images.devTag), with -dev for --dev.
    tag="${tag:-$(contract images.devTag)}"
    [ "${dev}" = 0 ] || tag="${tag}-$(contract images.devTag)"
    local registry image name port uid gid
    registry="${REGISTRY:-$(contract images.defaultRegistry)}"
    image="$(contract "components.${c}.image")"
    name="$(contract "components.${c}.name")"
    port="$(contract "components.${c}.port")"
    uid="$(contract "components.${c}.uid")"
    gid="$(contract "components.${c}.gid")"

    # The flags mirror the pod/container securityContext of the manifests.
    local -a args=(sudo nerdctl --insecure-registry run --rm --name "${name}"
        --read-only
        --user "${uid}:${gid}"
        --cap-drop ALL
        --security-opt no-new-privileges
        --tmpfs "$(contract paths.tmp)"
        --tmpfs "$(contract paths.cache)"
        -p "${port}:${port}")
    if [ "${c}" = "inference" ]; then
        args+=(-v "stepflow-models:$(contract paths.models)" --shm-size 1g)
    fi
    [ "${detach}" = 0 ] || args+=(--detach)
    args+=("${registry}/${image}:${tag}")
    vm "${args[@]}"
}

cmd_deploy() {
    [ "$#" -eq 0 ] || usage_error "deploy takes no arguments"
    require_running
    require_tool npm "install Node.js and run: npm ci"
    require_tool kubectl "macOS: brew install kubectl"
    (cd "${KIT_ROOT}" && npm run synth)
    require_kubeconfig
    # The Namespace, then the installation with pruning: what the new synth dropped goes.
    "${KIT_ROOT}/scripts/deploy.sh" --kubeconfig "${KUBECONFIG_FILE}" "${DEV_MANIFEST}"
}

cmd_test() {
    [ "$#" -eq 0 ] || usage_error "test takes no arguments"
    require_running
    require_tool kubectl "macOS: brew install kubectl"
    require_kubeconfig
    local selector
    selector="$(contract labels.app)=$(contract app)"
    # Deployments (python-sdk) and StatefulSets (core, inference) alike: every pod Ready.
    kube wait --for=condition=Available deployment --all-namespaces -l "${selector}" --timeout=300s
    kube wait --for=condition=Ready pod --all-namespaces -l "${selector}" --timeout=300s
    kube get pods --all-namespaces -l "${selector}" -o wide
}

ensure_registry() {
    local port
    port="$(registry_port)"
    if registry_up; then
        info "registry at localhost:${port} is up"
        return 0
    fi
    info "starting the registry (${REGISTRY_IMAGE}) at localhost:${port}"
    vm sudo nerdctl rm -f "${REGISTRY_CONTAINER}" >/dev/null 2>&1 || true
    vm sudo nerdctl run --detach --restart=always --name "${REGISTRY_CONTAINER}" \
        --network host -e "REGISTRY_HTTP_ADDR=0.0.0.0:${port}" \
        -v stepflow-registry:/var/lib/registry "${REGISTRY_IMAGE}" >/dev/null
    local i=0 wait="${STEPFLOW_REGISTRY_WAIT:-15}"
    while :; do
        registry_up && return 0
        i=$((i + 1))
        [ "${i}" -lt "${wait}" ] || break
        sleep 1
    done
    die "${EXIT_UNREACHABLE}" "the registry at localhost:${port} does not answer" \
        "look: limactl shell ${INSTANCE} sudo nerdctl logs ${REGISTRY_CONTAINER}"
}

cmd_registry() {
    [ "$#" -eq 0 ] || usage_error "registry takes no arguments"
    require_running
    ensure_registry
    printf 'registry localhost:%s is up\n' "$(registry_port)"
}

cmd_logs() {
    local c="${1:-}"
    component_arg "${c}"
    shift
    local follow=0 local_run=0
    while [ "$#" -gt 0 ]; do
        case "$1" in
            -f | --follow) follow=1 ;;
            --local) local_run=1 ;;
            *) usage_error "unknown option for logs: $1" ;;
        esac
        shift
    done
    require_running
    local -a flags=()
    [ "${follow}" = 0 ] || flags+=(--follow)
    if [ "${local_run}" = 1 ]; then
        vm sudo nerdctl logs ${flags[@]+"${flags[@]}"} "$(contract "components.${c}.name")"
        return
    fi
    require_tool kubectl "macOS: brew install kubectl"
    require_kubeconfig
    local ns selector
    ns="$(dev_namespace)"
    selector="$(contract labels.app)=$(contract app),$(contract labels.component)=${c}"
    kube -n "${ns}" logs -l "${selector}" --all-containers --prefix --tail=200 ${flags[@]+"${flags[@]}"}
}

cmd_clean() {
    local all=0
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --all) all=1 ;;
            *) usage_error "unknown option for clean: $1" ;;
        esac
        shift
    done
    require_limactl
    local status c
    status="$(vm_status)"
    if [ "${status}" = "Running" ]; then
        local -a names=()
        for c in "${CONTRACT_COMPONENTS[@]}"; do
            names+=("$(contract "components.${c}.name")")
        done
        vm sudo nerdctl rm -f "${names[@]}" >/dev/null 2>&1 || true
        if [ "${all}" = 0 ]; then
            if have kubectl && [ -f "${KUBECONFIG_FILE}" ] && [ -f "${DEV_MANIFEST}" ]; then
                kube delete -f "${DEV_MANIFEST}" --ignore-not-found --wait=false || true
            fi
            vm sudo buildctl prune --all >/dev/null || true
        fi
    fi
    info "removing the local build cache ${BUILD_CACHE_DIR}"
    rm -rf "${BUILD_CACHE_DIR}"
    if [ "${all}" = 1 ]; then
        if [ -n "${status}" ]; then
            info "deleting the Lima VM '${INSTANCE}'"
            limactl delete --force "${INSTANCE}"
        fi
        rm -f "${KUBECONFIG_FILE}"
    fi
}

# --- main ------------------------------------------------------------------------------
[ "$#" -gt 0 ] || usage_error "missing command"
command="$1"
shift
case "${command}" in
    -h | --help | help)
        usage
        exit 0
        ;;
    setup | start | stop | status | build | run | deploy | test | registry | logs | clean) ;;
    *) usage_error "unknown command: ${command}" ;;
esac
load_contract
"cmd_${command}" "$@"
