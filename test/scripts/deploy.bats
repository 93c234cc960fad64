#!/usr/bin/env bats
# Tests of scripts/deploy.sh: the exact kubectl command lines, in order, and every error
# path, with a recording kubectl stub (test/scripts/stubs/kubectl). What the real API
# server does with these commands is proven by the upgrade tier (verify/cluster/upgrade.sh).

# bats' `run --separate-stderr` sets $stderr, which shellcheck cannot see.
# shellcheck disable=SC2154

load test_helper

setup() {
    common_setup
    use_stubs kubectl
    DEV="${ROOT}/dist/dev.yaml"
    SEL="app.kubernetes.io/managed-by=stepflow-kit,app.kubernetes.io/instance=dev-stepflow"
    ALLOW="--prune-allowlist=core/v1/ConfigMap --prune-allowlist=core/v1/Service --prune-allowlist=core/v1/ServiceAccount --prune-allowlist=apps/v1/Deployment --prune-allowlist=apps/v1/StatefulSet --prune-allowlist=autoscaling/v2/HorizontalPodAutoscaler --prune-allowlist=policy/v1/PodDisruptionBudget --prune-allowlist=networking.k8s.io/v1/Ingress --prune-allowlist=networking.k8s.io/v1/NetworkPolicy"
    PARSE="kubectl create --dry-run=client --validate=false -f ${DEV} -o jsonpath={.apiVersion}|{.kind}|{.metadata.namespace}|{.metadata.name}|{.metadata.labels.app\\.kubernetes\\.io/managed-by}|{.metadata.labels.app\\.kubernetes\\.io/instance}{\"\\n\"}"
    OWNED="kubectl get -f ${DEV} --ignore-not-found --no-headers -o custom-columns=KIND:.kind,NAME:.metadata.name,NS:.metadata.annotations.meta\\.helm\\.sh/release-namespace,RELEASE:.metadata.annotations.meta\\.helm\\.sh/release-name"
}

# A file with what a test needs (the kit's YAML layout).
manifest() { # manifest FILE OBJECT-YAML...
    local f="$1"
    shift
    : >"${f}"
    local doc
    for doc in "$@"; do
        printf -- '---\n%s\n' "${doc}" >>"${f}"
    done
}
obj() { # obj KIND NAME [NAMESPACE] [MANAGED_BY] [INSTANCE] [APIVERSION]
    printf 'apiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n' "${6:-v1}" "$1" "$2"
    [ -z "${3:-}" ] || printf '  namespace: %s\n' "$3"
    if [ -n "${4:-}${5:-}" ]; then
        printf '  labels:\n'
        [ -z "${4:-}" ] || printf '    app.kubernetes.io/managed-by: %s\n' "$4"
        [ -z "${5:-}" ] || printf '    app.kubernetes.io/instance: %s\n' "$5"
    fi
}

@test "dist/dev.yaml: the Namespace, a server dry run, then the pruning apply of the installation" {
    run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${DEV}"
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
kubectl get --raw /version
${PARSE}
${OWNED}
kubectl apply -f ${DEV} -l app.kubernetes.io/managed-by=stepflow-kit,!app.kubernetes.io/instance
kubectl apply -f ${DEV} --dry-run=server -l ${SEL}
kubectl apply -f ${DEV} --prune -l ${SEL} ${ALLOW}
CALLS
    assert_contains "${stderr}" "installation dev-stepflow (15 objects) in namespace stepflow-dev; applied first, never pruned: Namespace/stepflow-dev"
}

@test "the prune allowlist holds no Namespace and no PersistentVolumeClaim, one kind per flag" {
    run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${DEV}"
    [ "${status}" -eq 0 ]
    line="$(grep -- '--prune ' "${STUB_LOG}")"
    refute_called "Namespace"
    refute_called "PersistentVolumeClaim"
    [ "$(grep -o -- '--prune-allowlist=' <<<"${line}" | grep -c .)" -eq 9 ]
}

@test "--context and --kubeconfig go to every kubectl call" {
    run --separate-stderr script "${ROOT}/scripts/deploy.sh" --context prod-eu --kubeconfig=/k/config "${DEV}"
    [ "${status}" -eq 0 ]
    [ "$(grep -c . "${STUB_LOG}")" -eq 6 ]
    [ "$(grep -c '^kubectl --context prod-eu --kubeconfig /k/config ' "${STUB_LOG}")" -eq 6 ]
}

@test "KUBECTL chooses the binary" {
    mkdir -p "${BATS_TEST_TMPDIR}/other"
    ln -s "${STUB_SRC}/kubectl" "${BATS_TEST_TMPDIR}/other/kubectl-1.37"
    ln -s "${STUB_SRC}/_record.sh" "${BATS_TEST_TMPDIR}/other/_record.sh"
    rm "${STUBBIN}/kubectl"
    KUBECTL="${BATS_TEST_TMPDIR}/other/kubectl-1.37" run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${DEV}"
    [ "${status}" -eq 0 ]
    assert_called "kubectl get --raw /version"
}

@test "pruned objects are reported as kubectl reports them" {
    STUB_KUBECTL_PRUNED="networkpolicy.networking.k8s.io/dev-stepflow-inference pruned" \
        run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${DEV}"
    [ "${status}" -eq 0 ]
    assert_contains "${output}" "networkpolicy.networking.k8s.io/dev-stepflow-inference pruned"
}

@test "--dry-run on an existing installation: the server's diff of the Namespace and of the installation with what pruning deletes; nothing applied" {
    STUB_KUBECTL_NAMESPACES="stepflow-dev" run --separate-stderr script "${ROOT}/scripts/deploy.sh" --dry-run "${DEV}"
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
kubectl get --raw /version
${PARSE}
${OWNED}
kubectl get namespace stepflow-dev -o name
kubectl diff -f ${DEV} -l app.kubernetes.io/managed-by=stepflow-kit,!app.kubernetes.io/instance
kubectl diff -f ${DEV} --prune -l ${SEL} ${ALLOW}
CALLS
    assert_contains "${stderr}" "no changes: the server holds dev-stepflow as ${DEV} has it"
}

@test "--dry-run with differences: exit 1; a failing diff: exit 6" {
    STUB_KUBECTL_NAMESPACES="stepflow-dev" STUB_KUBECTL_DIFF_EXIT=1 run --separate-stderr script "${ROOT}/scripts/deploy.sh" --dry-run "${DEV}"
    [ "${status}" -eq 1 ]
    refute_called "kubectl apply"
    STUB_KUBECTL_NAMESPACES="stepflow-dev" STUB_KUBECTL_DIFF_EXIT=2 run --separate-stderr script "${ROOT}/scripts/deploy.sh" --dry-run "${DEV}"
    [ "${status}" -eq 6 ]
    assert_contains "${stderr}" "kubectl diff failed (exit 2)"
}

@test "--dry-run of a new installation: every object would be created, exit 1" {
    run --separate-stderr script "${ROOT}/scripts/deploy.sh" --dry-run "${DEV}"
    [ "${status}" -eq 1 ]
    refute_called "kubectl diff"
    refute_called "kubectl apply"
    [ "$(grep -c '^would create ' <<<"${output}")" -eq 16 ]
    assert_contains "${output}" "would create Namespace/stepflow-dev"
    assert_contains "${output}" "would create StatefulSet/stepflow-dev/dev-stepflow-core"
    assert_contains "${stderr}" "namespace stepflow-dev does not exist yet"
}

@test "objects a Helm release owns: exit 5, nothing applied" {
    printf 'Namespace stepflow-dev <none> <none>\nDeployment dev-stepflow-python-sdk stepflow-dev dev-stepflow\n' >"${BATS_TEST_TMPDIR}/owned"
    STUB_KUBECTL_OWNED="${BATS_TEST_TMPDIR}/owned" run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${DEV}"
    [ "${status}" -eq 5 ]
    assert_contains "${stderr}" "objects of ${DEV} belong to a Helm release: Deployment/dev-stepflow-python-sdk (release dev-stepflow in namespace stepflow-dev)"
    assert_contains "${stderr}" "helm upgrade"
    refute_called "kubectl apply"
}

@test "the server rejects an object in the dry run: exit 6, only the Namespace applied" {
    STUB_KUBECTL_REJECT='The StatefulSet "dev-stepflow-core" is invalid: spec: Forbidden: updates to statefulset spec for fields other than ...' \
        run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${DEV}"
    [ "${status}" -eq 6 ]
    assert_contains "${stderr}" 'The StatefulSet "dev-stepflow-core" is invalid'
    assert_contains "${stderr}" "nothing of dev-stepflow was changed"
    assert_contains "${stderr}" "docs/upgrading.md"
    refute_called "--prune"
}

@test "a failing apply: exit 6" {
    STUB_KUBECTL_EXIT=1 run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${DEV}"
    [ "${status}" -eq 6 ]
    assert_contains "${stderr}" "kubectl apply failed (exit 1)"
    refute_called "--prune"
}

@test "two installations in one namespace: the second (no Namespace) selects only its own; a missing namespace is an error" {
    local f="${BATS_TEST_TMPDIR}/b.yaml"
    manifest "${f}" \
        "$(obj ServiceAccount b-stepflow-core shared stepflow-kit b-stepflow)" \
        "$(obj ConfigMap b-stepflow-config shared stepflow-kit b-stepflow)"
    STUB_KUBECTL_NAMESPACES="shared" run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${f}"
    [ "${status}" -eq 0 ]
    refute_called "!app.kubernetes.io/instance"
    assert_called "kubectl apply -f ${f} --prune -l app.kubernetes.io/managed-by=stepflow-kit,app.kubernetes.io/instance=b-stepflow ${ALLOW}"
    run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${f}"
    [ "${status}" -eq 6 ]
    assert_contains "${stderr}" "namespace shared does not exist and ${f} does not create it"
}

@test "a team's own objects beside the kit's: applied, never pruned, and said so" {
    local f="${BATS_TEST_TMPDIR}/team.yaml"
    manifest "${f}" \
        "$(obj Namespace ml "" stepflow-kit)" \
        "$(obj ConfigMap ml-stepflow-config ml stepflow-kit ml-stepflow)" \
        "$(obj NetworkPolicy team-metrics ml "" "" networking.k8s.io/v1)" \
        "$(obj Role team-reader ml stepflow-kit ml-stepflow rbac.authorization.k8s.io/v1)" \
        "$(obj PersistentVolumeClaim ml-stepflow-models ml stepflow-kit ml-stepflow)"
    run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${f}"
    [ "${status}" -eq 0 ]
    assert_called "kubectl apply -f ${f} -l app.kubernetes.io/managed-by!=stepflow-kit"
    assert_called "kubectl apply -f ${f} -l app.kubernetes.io/managed-by=stepflow-kit,!app.kubernetes.io/instance"
    # the Namespace first: the team's objects may live in it
    [ "$(grep -n -- '-l app.kubernetes.io/managed-by=stepflow-kit,!app.kubernetes.io/instance' "${STUB_LOG}" | cut -d: -f1)" -lt \
        "$(grep -n -- '-l app.kubernetes.io/managed-by!=stepflow-kit' "${STUB_LOG}" | cut -d: -f1)" ]
    assert_contains "${stderr}" "applied first, never pruned: Namespace/ml NetworkPolicy/ml/team-metrics"
    assert_contains "${stderr}" "applied, but never pruned (kinds outside the prune allowlist): Role/ml/team-reader"
    case "${stderr}" in *PersistentVolumeClaim*) return 1 ;; esac
}

@test "not one installation of the kit: exit 2" {
    local f="${BATS_TEST_TMPDIR}/x.yaml"
    manifest "${f}" "$(obj ConfigMap plain default)"
    run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${f}"
    [ "${status}" -eq 2 ]
    assert_contains "${stderr}" "${f} holds no installation of the kit"
    manifest "${f}" "$(obj ConfigMap a-cm ns stepflow-kit a-stepflow)" "$(obj ConfigMap b-cm ns stepflow-kit b-stepflow)"
    run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${f}"
    [ "${status}" -eq 2 ]
    assert_contains "${stderr}" "holds two installations (app.kubernetes.io/instance a-stepflow and b-stepflow, e.g. ConfigMap/ns/b-cm)"
    refute_called "kubectl apply"
}

@test "the API server unreachable: exit 4 with what kubectl said" {
    STUB_KUBECTL_UNREACHABLE=1 run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${DEV}"
    [ "${status}" -eq 4 ]
    assert_contains "${stderr}" "cannot reach the Kubernetes API server"
    assert_contains "${stderr}" "was refused"
    assert_calls <<CALLS
kubectl get --raw /version
CALLS
}

@test "kubectl missing: exit 3" {
    rm "${STUBBIN}/kubectl"
    run --separate-stderr script "${ROOT}/scripts/deploy.sh" "${DEV}"
    [ "${status}" -eq 3 ]
    assert_contains "${stderr}" "kubectl is not installed"
}

@test "usage errors exit 2: no file, two files, a missing file, unknown option, option without value" {
    local -a cases=(
        ""
        "${DEV} ${ROOT}/dist/prod.yaml"
        "/nonexistent.yaml"
        "--prune ${DEV}"
        "--context"
        "--context --dry-run ${DEV}"
        "--kubeconfig= ${DEV}"
    )
    local c
    for c in "${cases[@]}"; do
        # shellcheck disable=SC2086 # word splitting of the case is intended
        run --separate-stderr script "${ROOT}/scripts/deploy.sh" ${c}
        if [ "${status}" -ne 2 ]; then
            echo "case '${c}': status ${status}, expected 2" >&2
            return 1
        fi
        assert_contains "${stderr}" "usage: scripts/deploy.sh"
    done
    [ ! -s "${STUB_LOG}" ]
}

@test "--help prints usage and exits 0" {
    run --separate-stderr script "${ROOT}/scripts/deploy.sh" --help
    [ "${status}" -eq 0 ]
    assert_contains "${output}" "usage: scripts/deploy.sh [options] <file>"
    assert_contains "${output}" "Never a Namespace, never a PersistentVolumeClaim"
}
