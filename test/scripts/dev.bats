#!/usr/bin/env bats
# Tests of scripts/dev.sh with recording stubs for limactl, buildctl, nerdctl (inside
# `limactl shell`), kubectl and npm (test/scripts/stubs/).

# bats' `run --separate-stderr` sets $stderr, which shellcheck cannot see.
# shellcheck disable=SC2154

load test_helper

setup() {
    common_setup
    use_stubs limactl buildctl kubectl npm
    TEMPLATE="${ROOT}/scripts/lima/stepflow-dev.yaml"
    KUBECONFIG_FILE="${HOME}/.kube/stepflow-dev.yaml"
    SOCK="unix://${HOME}/.lima/stepflow-dev/sock/buildkitd.sock"
    HOST_ARCH="$(uname -m)"
    [ "${HOST_ARCH}" != arm64 ] || HOST_ARCH=aarch64
    LIST="limactl list --format {{.Status}} stepflow-dev"
    SHELL_VM="limactl shell --workdir / stepflow-dev"
    REGISTRY_CHECK="${SHELL_VM} curl -fsS -o /dev/null http://localhost:5000/v2/"
}

# A manifest like dist/dev.yaml, for the commands that read its namespace.
fake_manifest() {
    export STEPFLOW_DEV_MANIFEST="${BATS_TEST_TMPDIR}/dev.yaml"
    cat >"${STEPFLOW_DEV_MANIFEST}" <<'YAML'
apiVersion: v1
kind: Namespace
metadata:
  name: stepflow-dev
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dev-stepflow-core
  namespace: stepflow-dev
YAML
}

@test "setup creates the VM from the committed template, starts it, starts the registry, exports the kubeconfig" {
    STUB_LIMA_STATUS="" run --separate-stderr script "${ROOT}/scripts/dev.sh" setup
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
${LIST}
limactl create --name=stepflow-dev --tty=false ${TEMPLATE}
limactl start --tty=false stepflow-dev
${SHELL_VM} uname -m
${REGISTRY_CHECK}
${SHELL_VM} sudo cat /etc/rancher/k3s/k3s.yaml
CALLS
    # server URL rewritten for the host, the rest kept, private permissions
    grep -qx '    server: https://127.0.0.1:6443' "${KUBECONFIG_FILE}"
    grep -qx '    client-key-data: c3R1Yg==' "${KUBECONFIG_FILE}"
    if grep -q '10.0.2.15' "${KUBECONFIG_FILE}"; then return 1; fi
    [ "$(stat -c %a "${KUBECONFIG_FILE}")" = 600 ]
    assert_contains "${stderr}" "export BUILDKIT_HOST=${SOCK}"
}

@test "setup of an existing, running VM neither creates nor starts it" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" setup
    [ "${status}" -eq 0 ]
    refute_called "limactl create"
    refute_called "limactl start"
}

@test "setup starts the registry when it does not answer" {
    echo 1 >"${STUB_STATE_DIR}/registry-down"
    STUB_REGISTRY_DOWN=registry-down run --separate-stderr script "${ROOT}/scripts/dev.sh" setup
    [ "${status}" -eq 0 ]
    assert_called "${SHELL_VM} sudo nerdctl rm -f stepflow-registry"
    assert_called "${SHELL_VM} sudo nerdctl run --detach --restart=always --name stepflow-registry --network host -e REGISTRY_HTTP_ADDR=0.0.0.0:5000 -v stepflow-registry:/var/lib/registry docker.io/library/registry:2.8.3"
}

@test "KUBECONFIG_OUT and LIMA_INSTANCE are honoured" {
    LIMA_INSTANCE=sf KUBECONFIG_OUT="${BATS_TEST_TMPDIR}/kc.yaml" STUB_LIMA_STATUS=Stopped \
        run --separate-stderr script "${ROOT}/scripts/dev.sh" start
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
limactl list --format {{.Status}} sf
limactl start --tty=false sf
limactl shell --workdir / sf uname -m
limactl shell --workdir / sf sudo cat /etc/rancher/k3s/k3s.yaml
CALLS
    grep -qx '    server: https://127.0.0.1:6443' "${BATS_TEST_TMPDIR}/kc.yaml"
}

@test "Lima missing: exit 3 and 'brew install lima'" {
    rm "${STUBBIN}/limactl"
    run --separate-stderr script "${ROOT}/scripts/dev.sh" setup
    [ "${status}" -eq 3 ]
    assert_contains "${stderr}" "limactl is not installed"
    assert_contains "${stderr}" "brew install lima"
}

@test "VM of another architecture: exit 4 and how to recreate it" {
    STUB_LIMA_ARCH=riscv64 run --separate-stderr script "${ROOT}/scripts/dev.sh" start
    [ "${status}" -eq 4 ]
    assert_contains "${stderr}" "runs riscv64, but this host is ${HOST_ARCH}"
    assert_contains "${stderr}" "limactl delete --force stepflow-dev"
    assert_contains "${stderr}" "scripts/dev.sh setup"
    refute_called "k3s.yaml"
}

@test "start without a VM: exit 4 and 'dev.sh setup'" {
    STUB_LIMA_STATUS="" run --separate-stderr script "${ROOT}/scripts/dev.sh" start
    [ "${status}" -eq 4 ]
    assert_contains "${stderr}" "does not exist"
    assert_contains "${stderr}" "scripts/dev.sh setup"
}

@test "build with the VM stopped: exit 4 and 'dev.sh start'" {
    STUB_LIMA_STATUS=Stopped run --separate-stderr script "${ROOT}/scripts/dev.sh" build core
    [ "${status}" -eq 4 ]
    assert_contains "${stderr}" "is not running"
    assert_contains "${stderr}" "scripts/dev.sh start"
    refute_called "buildctl"
}

@test "build goes through the VM's BuildKit socket and pushes to its registry" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" build core --tag t1
    [ "${status}" -eq 0 ]
    assert_called "buildctl --addr ${SOCK} debug workers"
    line="$(grep '^buildctl --addr .* build ' "${STUB_LOG}")"
    assert_contains "${line}" "--output type=image,name=localhost:5000/stepflow-core:t1,push=true"
    assert_contains "${line}" "--local dockerfile=${ROOT}/containers/core"
}

@test "build records the pushed digests in the cache's dev lock, not the repository's; --lock wins" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" build core --tag t1
    [ "${status}" -eq 0 ]
    local lock="${HOME}/.cache/stepflow-kit/dev-images.lock.json"
    [ "$(node -e 'console.log(Object.keys(require(process.argv[1]).images).join(" "))' "${lock}")" = "localhost:5000/stepflow-core:t1" ]
    assert_contains "${stderr}" "(recorded in ${lock})"
    run --separate-stderr script "${ROOT}/scripts/dev.sh" build python-sdk --lock "${BATS_TEST_TMPDIR}/mine.json"
    [ "${status}" -eq 0 ]
    [ "$(node -e 'console.log(Object.keys(require(process.argv[1]).images).join(" "))' "${BATS_TEST_TMPDIR}/mine.json")" = "localhost:5000/stepflow-python-sdk:dev" ]
    [ "$(node -e 'console.log(Object.keys(require(process.argv[1]).images).join(" "))' "${lock}")" = "localhost:5000/stepflow-core:t1" ]
}

@test "build tags images as the dev manifests expect unless told otherwise" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" build inference
    [ "${status}" -eq 0 ]
    line="$(grep '^buildctl --addr .* build ' "${STUB_LOG}")"
    assert_contains "${line}" "--output type=image,name=localhost:5000/stepflow-inference:dev,push=true"
    grep -q 'image: localhost:5000/stepflow-inference:dev$' "${ROOT}/dist/dev.yaml"
}

@test "build --generation 0.11: that generation's versions and process, still the dev tag" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" build python-sdk --generation 0.11
    [ "${status}" -eq 0 ]
    line="$(grep '^buildctl --addr .* build ' "${STUB_LOG}")"
    assert_contains "${line}" "--opt build-arg:STEPFLOW_GENERATION=0.11 --opt build-arg:STEPFLOW_PY_VERSION=0.11.0 --opt build-arg:STEPFLOW_PY_EXTRAS=http "
    assert_contains "${line}" "--output type=image,name=localhost:5000/stepflow-python-sdk:dev,push=true"
    run --separate-stderr script "${ROOT}/scripts/dev.sh" build python-sdk
    [ "${status}" -eq 0 ]
    line="$(grep '^buildctl --addr .* build ' "${STUB_LOG}" | tail -n 1)"
    assert_contains "${line}" "--opt build-arg:STEPFLOW_GENERATION=0.13 --opt build-arg:STEPFLOW_PY_VERSION=0.13.0 --opt build-arg:STEPFLOW_PY_EXTRAS= "
}

@test "build keeps an explicit BUILDKIT_HOST" {
    BUILDKIT_HOST=tcp://10.1.2.3:1234 run --separate-stderr script "${ROOT}/scripts/dev.sh" build python-sdk --push
    [ "${status}" -eq 0 ]
    assert_called "buildctl --addr tcp://10.1.2.3:1234 debug workers"
    [ "$(grep -c -- '--push' "${STUB_LOG}" || true)" = 0 ]
}

@test "build of an unknown component: exit 2 from build.sh" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" build frontend
    [ "${status}" -eq 2 ]
    assert_contains "${stderr}" "unknown component: frontend"
}

@test "run core: nerdctl in the VM with the manifests' security flags, the tag build pushes" {
    use_stubs nerdctl
    run --separate-stderr script "${ROOT}/scripts/dev.sh" run core
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
${LIST}
${SHELL_VM} uname -m
${SHELL_VM} sudo nerdctl --insecure-registry run --rm --name stepflow-core --read-only --user 1001:1001 --cap-drop ALL --security-opt no-new-privileges --tmpfs /tmp --tmpfs /var/cache/stepflow -p 8080:8080 localhost:5000/stepflow-core:dev
CALLS
}

@test "run inference --dev --detach: model volume, shared memory, dev tag" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" run inference --dev --detach --tag v3
    [ "${status}" -eq 0 ]
    assert_called "${SHELL_VM} sudo nerdctl --insecure-registry run --rm --name stepflow-inference --read-only --user 65532:65532 --cap-drop ALL --security-opt no-new-privileges --tmpfs /tmp --tmpfs /var/cache/stepflow -p 8082:8082 -v stepflow-models:/models --shm-size 1g --detach localhost:5000/stepflow-inference:v3-dev"
}

@test "run: unknown component, missing component, unknown option exit 2" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" run frontend
    [ "${status}" -eq 2 ]
    run --separate-stderr script "${ROOT}/scripts/dev.sh" run
    [ "${status}" -eq 2 ]
    run --separate-stderr script "${ROOT}/scripts/dev.sh" run core --privileged
    [ "${status}" -eq 2 ]
    assert_contains "${stderr}" "usage: scripts/dev.sh"
    [ ! -s "${STUB_LOG}" ]
}

@test "deploy: npm run synth in the repository, then scripts/deploy.sh dist/dev.yaml with the exported kubeconfig" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" deploy
    [ "${status}" -eq 0 ]
    [ "$(head -n 3 "${STUB_LOG}")" = "$(printf '%s\n' "${LIST}" "npm run synth (in ${ROOT})" "${SHELL_VM} sudo cat /etc/rancher/k3s/k3s.yaml")" ]
    # scripts/deploy.sh's calls (test/scripts/deploy.bats), each with the kubeconfig
    [ "$(grep -c '^kubectl ' "${STUB_LOG}")" -eq 6 ]
    [ "$(grep -c "^kubectl --kubeconfig ${KUBECONFIG_FILE} " "${STUB_LOG}")" -eq 6 ]
    assert_called "kubectl --kubeconfig ${KUBECONFIG_FILE} apply -f ${ROOT}/dist/dev.yaml --prune -l app.kubernetes.io/managed-by=stepflow-kit,app.kubernetes.io/instance=dev-stepflow --prune-allowlist=core/v1/ConfigMap --prune-allowlist=core/v1/Service --prune-allowlist=core/v1/ServiceAccount --prune-allowlist=apps/v1/Deployment --prune-allowlist=apps/v1/StatefulSet --prune-allowlist=autoscaling/v2/HorizontalPodAutoscaler --prune-allowlist=policy/v1/PodDisruptionBudget --prune-allowlist=networking.k8s.io/v1/Ingress --prune-allowlist=networking.k8s.io/v1/NetworkPolicy"
}

@test "deploy reuses an exported kubeconfig" {
    mkdir -p "${HOME}/.kube"
    echo "apiVersion: v1" >"${KUBECONFIG_FILE}"
    run --separate-stderr script "${ROOT}/scripts/dev.sh" deploy
    [ "${status}" -eq 0 ]
    refute_called "k3s.yaml"
    assert_called "kubectl --kubeconfig ${KUBECONFIG_FILE} apply -f ${ROOT}/dist/dev.yaml -l app.kubernetes.io/managed-by=stepflow-kit,!app.kubernetes.io/instance"
}

@test "deploy stops when synth fails" {
    STUB_NPM_EXIT=1 run --separate-stderr script "${ROOT}/scripts/dev.sh" deploy
    [ "${status}" -ne 0 ]
    refute_called "kubectl"
}

@test "deploy with the VM stopped: exit 4, nothing synthesized" {
    STUB_LIMA_STATUS=Stopped run --separate-stderr script "${ROOT}/scripts/dev.sh" deploy
    [ "${status}" -eq 4 ]
    refute_called "npm"
}

@test "test waits for the StepFlow deployments" {
    mkdir -p "${HOME}/.kube"
    echo "apiVersion: v1" >"${KUBECONFIG_FILE}"
    run --separate-stderr script "${ROOT}/scripts/dev.sh" test
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
${LIST}
kubectl --kubeconfig ${KUBECONFIG_FILE} wait --for=condition=Available deployment --all-namespaces -l app=stepflow --timeout=300s
kubectl --kubeconfig ${KUBECONFIG_FILE} wait --for=condition=Ready pod --all-namespaces -l app=stepflow --timeout=300s
kubectl --kubeconfig ${KUBECONFIG_FILE} get pods --all-namespaces -l app=stepflow -o wide
CALLS
}

@test "logs: pods of the component in the namespace of dist/dev.yaml" {
    fake_manifest
    mkdir -p "${HOME}/.kube"
    echo "apiVersion: v1" >"${KUBECONFIG_FILE}"
    run --separate-stderr script "${ROOT}/scripts/dev.sh" logs python-sdk --follow
    [ "${status}" -eq 0 ]
    assert_called "kubectl --kubeconfig ${KUBECONFIG_FILE} -n stepflow-dev logs -l app=stepflow,component=python-sdk --all-containers --prefix --tail=200 --follow"
}

@test "logs --local: the container started by run" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" logs core --local
    [ "${status}" -eq 0 ]
    assert_called "${SHELL_VM} sudo nerdctl logs stepflow-core"
}

@test "registry: checks it and reports it up" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" registry
    [ "${status}" -eq 0 ]
    [ "${output}" = "registry localhost:5000 is up" ]
    assert_calls <<CALLS
${LIST}
${REGISTRY_CHECK}
CALLS
}

@test "registry that never answers: exit 4 with where to look" {
    STUB_REGISTRY_DEAD=1 STEPFLOW_REGISTRY_WAIT=2 run --separate-stderr script "${ROOT}/scripts/dev.sh" registry
    [ "${status}" -eq 4 ]
    assert_contains "${stderr}" "does not answer"
    assert_contains "${stderr}" "nerdctl logs stepflow-registry"
}

@test "status: services, registry and node" {
    mkdir -p "${HOME}/.kube"
    echo "apiVersion: v1" >"${KUBECONFIG_FILE}"
    run --separate-stderr script "${ROOT}/scripts/dev.sh" status
    [ "${status}" -eq 0 ]
    assert_contains "${output}" "service     k3s: active"
    assert_contains "${output}" "registry    localhost:5000: up"
    assert_called "kubectl --kubeconfig ${KUBECONFIG_FILE} get nodes"
}

@test "clean: run containers, dev deployment, BuildKit cache in the VM, local cache" {
    fake_manifest
    mkdir -p "${HOME}/.kube" "${HOME}/.cache/stepflow-kit/buildkit/stepflow-core"
    echo "apiVersion: v1" >"${KUBECONFIG_FILE}"
    run --separate-stderr script "${ROOT}/scripts/dev.sh" clean
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
${LIST}
${SHELL_VM} sudo nerdctl rm -f stepflow-core stepflow-python-sdk stepflow-inference
kubectl --kubeconfig ${KUBECONFIG_FILE} delete -f ${STEPFLOW_DEV_MANIFEST} --ignore-not-found --wait=false
${SHELL_VM} sudo buildctl prune --all
CALLS
    [ ! -e "${HOME}/.cache/stepflow-kit/buildkit" ]
    [ -f "${KUBECONFIG_FILE}" ]
}

@test "clean --all also deletes the VM and the exported kubeconfig" {
    mkdir -p "${HOME}/.kube" "${HOME}/.cache/stepflow-kit/buildkit/stepflow-core"
    echo "apiVersion: v1" >"${KUBECONFIG_FILE}"
    run --separate-stderr script "${ROOT}/scripts/dev.sh" clean --all
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
${LIST}
${SHELL_VM} sudo nerdctl rm -f stepflow-core stepflow-python-sdk stepflow-inference
limactl delete --force stepflow-dev
CALLS
    [ ! -e "${KUBECONFIG_FILE}" ]
    [ ! -e "${HOME}/.cache/stepflow-kit/buildkit" ]
}

@test "clean --all of a stopped VM deletes it without shelling in" {
    STUB_LIMA_STATUS=Stopped run --separate-stderr script "${ROOT}/scripts/dev.sh" clean --all
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
${LIST}
limactl delete --force stepflow-dev
CALLS
}

@test "stop: limactl stop" {
    run --separate-stderr script "${ROOT}/scripts/dev.sh" stop
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
${LIST}
limactl stop stepflow-dev
CALLS
}

@test "unknown command or option: exit 2 and usage" {
    local c
    for c in "frobnicate" "clean --everything" "setup now" "logs" "logs core --since=1h"; do
        # shellcheck disable=SC2086 # word splitting of the case is intended
        run --separate-stderr script "${ROOT}/scripts/dev.sh" ${c}
        if [ "${status}" -ne 2 ]; then
            echo "case '${c}': status ${status}, expected 2" >&2
            return 1
        fi
        assert_contains "${stderr}" "usage: scripts/dev.sh"
    done
    [ ! -s "${STUB_LOG}" ]
}

@test "the Lima template lists an image and a containerd archive with a digest for each architecture, and forwards the ports" {
    local arch
    for arch in x86_64 aarch64; do
        grep -q "arch: \"${arch}\"" "${TEMPLATE}"
    done
    [ "$(grep -c 'digest: "sha256:[0-9a-f]\{64\}"' "${TEMPLATE}")" -eq 4 ]
    grep -q 'guestSocket: "/run/buildkit/buildkitd.sock"' "${TEMPLATE}"
    grep -q 'guestPort: 5000' "${TEMPLATE}"
    grep -q 'guestPort: 6443' "${TEMPLATE}"
    grep -q 'guestPortRange: \[8080, 8082\]' "${TEMPLATE}"
}
