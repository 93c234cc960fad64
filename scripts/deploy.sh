#!/usr/bin/env bash
# Install or upgrade one StepFlow installation from its synthesized file (dist/dev.yaml,
# dist/prod.yaml, or a file of your own app): the Namespace, then the installation with
# kubectl's pruning apply. Needs bash and kubectl only.
# Runs with macOS /bin/bash 3.2 as well as bash 5.
set -euo pipefail

PROG="deploy.sh"
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/common.sh"

readonly EXIT_CHANGES=1    # --dry-run: the server would change something
readonly EXIT_REFUSED=5    # objects of the file belong to a Helm release
readonly EXIT_KUBECTL=6    # kubectl (apply, diff) failed; what it said is above

# The kit's labels (src/contract.json managedBy; test/contract.test.ts keeps them equal).
readonly MANAGED_BY_LABEL="app.kubernetes.io/managed-by"
readonly MANAGED_BY="stepflow-kit"
readonly INSTANCE_LABEL="app.kubernetes.io/instance"
# What pruning may delete: every namespaced kind the kit emits but PersistentVolumeClaim
# (state). Never Namespace: kubectl's default allowlist has it, and pruning one deletes
# everything in it. (test/contract.test.ts checks it against the kinds the library emits.)
readonly PRUNE_ALLOWLIST="core/v1/ConfigMap core/v1/Service core/v1/ServiceAccount apps/v1/Deployment apps/v1/StatefulSet autoscaling/v2/HorizontalPodAutoscaler policy/v1/PodDisruptionBudget networking.k8s.io/v1/Ingress networking.k8s.io/v1/NetworkPolicy"

usage() {
    cat <<'USAGE'
usage: scripts/deploy.sh [options] <file>

Installs or upgrades the StepFlow installation of one synthesized file (dist/dev.yaml,
dist/prod.yaml, or one file of your own app) with kubectl, in one command:

  1. the Namespace (and any object without the installation's labels), never pruned;
  2. a server-side dry run of every object: nothing more changes unless the API server
     accepts them all (an immutable field, a missing namespace);
  3. kubectl apply --prune of the installation: what the file no longer holds of it is
     deleted. Pruned are only objects that carry app.kubernetes.io/managed-by=stepflow-kit
     and the file's app.kubernetes.io/instance, were applied by kubectl (its last-applied
     annotation), and are of these kinds: ConfigMap, Service, ServiceAccount, Deployment,
     StatefulSet, HorizontalPodAutoscaler, PodDisruptionBudget, Ingress, NetworkPolicy.
     Never a Namespace, never a PersistentVolumeClaim (the core's state, model caches),
     never another installation's objects, even in the same namespace.

Objects that belong to a Helm release are never touched: upgrade those with helm.

Options:
  --dry-run             print what would change, as the API server computes it
                        (kubectl diff, server-side), the objects pruning would delete
                        included; change nothing
  --context NAME        kubectl context (default: the current context)
  --kubeconfig FILE     kubeconfig (default: $KUBECONFIG, else ~/.kube/config)
  -h, --help            show this help

Environment:
  KUBECTL               the kubectl to run (default: kubectl on PATH)

Exit status: 0 applied (--dry-run: nothing would change), 1 --dry-run: something would
change (the diff above), 2 usage error or a file that is not one installation of the kit,
3 kubectl missing, 4 the API server not reachable, 5 objects of the file belong to a Helm
release, 6 kubectl failed (what it said is above; with nothing applied when the dry run
failed).
USAGE
}

usage_error() {
    err "$1"
    usage >&2
    exit "${EXIT_USAGE}"
}

# --- options -----------------------------------------------------------------------
file=""
dry_run=0
kube_args=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        -h | --help)
            usage
            exit 0
            ;;
        --dry-run) dry_run=1 ;;
        --context | --kubeconfig)
            if [ "$#" -lt 2 ] || [ -z "$2" ] || [ "${2#--}" != "$2" ]; then
                usage_error "option $1 needs a value"
            fi
            kube_args+=("$1" "$2")
            shift
            ;;
        --context=* | --kubeconfig=*)
            [ -n "${1#*=}" ] || usage_error "option ${1%%=*} needs a value"
            kube_args+=("${1%%=*}" "${1#*=}")
            ;;
        -*) usage_error "unknown option: $1" ;;
        *)
            [ -z "${file}" ] || usage_error "unexpected argument: $1 (one file per call: one installation)"
            file="$1"
            ;;
    esac
    shift
done
[ -n "${file}" ] || usage_error "missing the file to deploy (e.g. dist/dev.yaml)"
if [ ! -f "${file}" ] || [ ! -r "${file}" ]; then
    usage_error "no such file: ${file}"
fi

KUBECTL="${KUBECTL:-kubectl}"
have "${KUBECTL}" || die "${EXIT_PREREQ}" "kubectl is not installed (${KUBECTL} not found)" \
    "macOS: brew install kubectl" \
    "Linux: https://kubernetes.io/docs/tasks/tools/ (a version within one minor of your cluster's)"

kube() {
    "${KUBECTL}" ${kube_args[@]+"${kube_args[@]}"} "$@"
}

if ! reason="$(kube get --raw /version 2>&1 >/dev/null)"; then
    die "${EXIT_UNREACHABLE}" "cannot reach the Kubernetes API server" "$(printf '%s\n' "${reason}" | head -n 3)" \
        "check the context: kubectl config current-context (or --context, --kubeconfig)"
fi

# --- what the file holds -------------------------------------------------------------
# One line per object, as kubectl reads the file (nothing is sent but discovery):
# apiVersion|kind|namespace|name|managed-by label|instance label ('|' is in none of them).
SEP="|"
objects="$(kube create --dry-run=client --validate=false -f "${file}" -o \
    'jsonpath={.apiVersion}|{.kind}|{.metadata.namespace}|{.metadata.name}|{.metadata.labels.app\.kubernetes\.io/managed-by}|{.metadata.labels.app\.kubernetes\.io/instance}{"\n"}')" ||
    die "${EXIT_USAGE}" "kubectl cannot read ${file} (above): not a file of Kubernetes objects"
[ -n "${objects}" ] || die "${EXIT_USAGE}" "${file} holds no objects"

instance=""
n_installation=0
shared=()     # objects without the installation's labels: applied first, never pruned
namespaces=() # the namespaces the objects live in
in_file_ns=() # the Namespaces the file itself holds
unpruned=()   # installation objects of kinds pruning never deletes
while IFS="${SEP}" read -r api kind ns name managed inst; do
    [ -n "${kind}" ] || continue
    ref="${kind}/${name}"
    [ -z "${ns}" ] || ref="${kind}/${ns}/${name}"
    if [ "${api}" = v1 ] && [ "${kind}" = Namespace ]; then
        in_file_ns+=("${name}")
    elif [ -n "${ns}" ]; then
        case " ${namespaces[*]-} " in *" ${ns} "*) ;; *) namespaces+=("${ns}") ;; esac
    fi
    if [ "${managed}" = "${MANAGED_BY}" ] && [ -n "${inst}" ]; then
        if [ -n "${instance}" ] && [ "${inst}" != "${instance}" ]; then
            die "${EXIT_USAGE}" "${file} holds two installations (${INSTANCE_LABEL} ${instance} and ${inst}, e.g. ${ref})" \
                "deploy one installation per call: the kit writes one file per chart"
        fi
        instance="${inst}"
        n_installation=$((n_installation + 1))
        group="${api%/*}"
        [ "${group}" != "${api}" ] || group=core
        case " ${PRUNE_ALLOWLIST} " in
            *" ${group}/${api#*/}/${kind} "*) ;;
            *) [ "${kind}" = PersistentVolumeClaim ] || unpruned+=("${ref}") ;;
        esac
    else
        shared+=("${ref}")
    fi
done <<<"${objects}"

[ -n "${instance}" ] || die "${EXIT_USAGE}" "${file} holds no installation of the kit" \
    "no object carries ${MANAGED_BY_LABEL}=${MANAGED_BY} and ${INSTANCE_LABEL}: synthesize it with the kit (npm run synth)"
selector="${MANAGED_BY_LABEL}=${MANAGED_BY},${INSTANCE_LABEL}=${instance}"
info "${file}: installation ${instance} (${n_installation} objects) in namespace ${namespaces[*]-(none)}${shared[0]+; applied first, never pruned: ${shared[*]}}"
if [ "${#unpruned[@]}" -gt 0 ]; then
    info "applied, but never pruned (kinds outside the prune allowlist): ${unpruned[*]}"
fi

# --- objects another tool owns ----------------------------------------------------------
# Helm marks what a release owns; applying over it would fight Helm, pruning would delete it.
owned="$(kube get -f "${file}" --ignore-not-found --no-headers -o \
    'custom-columns=KIND:.kind,NAME:.metadata.name,NS:.metadata.annotations.meta\.helm\.sh/release-namespace,RELEASE:.metadata.annotations.meta\.helm\.sh/release-name' 2>&1)" ||
    die "${EXIT_KUBECTL}" "kubectl cannot read the file's objects from the server" "${owned}"
helm_owned=""
while read -r kind name release_ns release; do
    if [ -z "${kind}" ] || [ "${release:-<none>}" = "<none>" ]; then continue; fi
    helm_owned="${helm_owned}${helm_owned:+, }${kind}/${name} (release ${release} in namespace ${release_ns})"
done <<<"${owned}"
if [ -n "${helm_owned}" ]; then
    die "${EXIT_REFUSED}" "objects of ${file} belong to a Helm release: ${helm_owned}" \
        "upgrade it with helm upgrade (dist/helm/), or helm uninstall it before deploying with this script"
fi

# The namespaces the objects live in must exist, or be created by the file itself.
missing_ns=()
for ns in ${namespaces[@]+"${namespaces[@]}"}; do
    case " ${in_file_ns[*]-} " in *" ${ns} "*) continue ;; esac
    kube get namespace "${ns}" -o name >/dev/null 2>&1 || missing_ns+=("${ns}")
done
if [ "${#missing_ns[@]}" -gt 0 ]; then
    die "${EXIT_KUBECTL}" "namespace ${missing_ns[*]} does not exist and ${file} does not create it" \
        "deploy the installation that creates it first (the one without createNamespace: false)"
fi

prune_args=(--prune -l "${selector}")
for kind in ${PRUNE_ALLOWLIST}; do
    prune_args+=("--prune-allowlist=${kind}")
done
# The objects outside the installation: without the kit's managed-by label, or with it
# and without an instance (the Namespace, which installations may share; applied first,
# as the others may live in it).
others_selectors=("${MANAGED_BY_LABEL}!=${MANAGED_BY}" "${MANAGED_BY_LABEL}=${MANAGED_BY},!${INSTANCE_LABEL}")
n_others() { # n_others SELECTOR_INDEX : how many objects of the file it selects
    local n=0 managed inst
    while IFS="${SEP}" read -r _ _ _ _ managed inst; do
        case "$1" in
            0) [ "${managed}" = "${MANAGED_BY}" ] || n=$((n + 1)) ;;
            1) [ "${managed}" != "${MANAGED_BY}" ] || [ -n "${inst}" ] || n=$((n + 1)) ;;
        esac
    done <<<"${objects}"
    echo "${n}"
}

# --- dry run: the server's diff ------------------------------------------------------------
if [ "${dry_run}" = 1 ]; then
    new_ns=()
    for ns in ${in_file_ns[@]+"${in_file_ns[@]}"}; do
        kube get namespace "${ns}" -o name >/dev/null 2>&1 || new_ns+=("${ns}")
    done
    worst=0
    run_diff() {
        local status=0
        kube diff -f "${file}" "$@" || status=$?
        if [ "${status}" -gt 1 ]; then
            err "kubectl diff failed (exit ${status})"
            exit "${EXIT_KUBECTL}"
        fi
        [ "${status}" = 0 ] || worst=1
    }
    if [ "${#new_ns[@]}" -gt 0 ]; then
        # The server computes no diff for objects in a namespace that does not exist yet.
        info "namespace ${new_ns[*]} does not exist yet: every object of ${file} would be created"
        while IFS="${SEP}" read -r _ kind ns name _ _; do
            printf 'would create %s/%s\n' "${kind}" "${ns:+${ns}/}${name}"
        done <<<"${objects}"
        exit "${EXIT_CHANGES}"
    fi
    for i in 1 0; do
        [ "$(n_others "${i}")" = 0 ] || run_diff -l "${others_selectors[i]}"
    done
    run_diff "${prune_args[@]}"
    if [ "${worst}" = 0 ]; then
        info "no changes: the server holds ${instance} as ${file} has it"
        exit 0
    fi
    exit "${EXIT_CHANGES}"
fi

# --- apply -------------------------------------------------------------------------------
kube_apply() { # kube_apply ARGS... : kubectl apply -f FILE ARGS, or exit 6
    kube apply -f "${file}" "$@" || {
        status=$?
        err "kubectl apply failed (exit ${status}); what it said is above"
        exit "${EXIT_KUBECTL}"
    }
}
for i in 1 0; do
    [ "$(n_others "${i}")" = 0 ] || kube_apply -l "${others_selectors[i]}"
done
if ! dry_out="$(kube apply -f "${file}" --dry-run=server -l "${selector}" 2>&1 >/dev/null)"; then
    printf '%s\n' "${dry_out}" >&2
    die "${EXIT_KUBECTL}" "the API server rejects objects of ${file} (above): nothing of ${instance} was changed" \
        "a field the server does not let change (a selector, a claim template) needs the one-time steps of the upgrade notes (docs/upgrading.md)"
fi
kube_apply "${prune_args[@]}"
