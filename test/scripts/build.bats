#!/usr/bin/env bats
# Tests of scripts/build.sh: exact buildctl command lines and error paths, with a
# recording buildctl stub (test/scripts/stubs/buildctl).

# bats' `run --separate-stderr` sets $stderr, which shellcheck cannot see.
# shellcheck disable=SC2154

load test_helper

setup() {
    common_setup
    use_stubs buildctl
    CACHE="${HOME}/.cache/stepflow-kit/buildkit"
    METADATA="${HOME}/.cache/stepflow-kit/build-metadata"
    # Tests that push name a lock of their own: the default one is the repository's.
    LOCK="${BATS_TEST_TMPDIR}/images.lock.json"
    ARGS_COMMON="--opt build-arg:IMAGE_REVISION=${VCS_REF} --opt build-arg:IMAGE_CREATED=${BUILD_DATE}"
    # The command lines of `build.sh <component>` with every default: the contract's
    # default generation (0.13) and its imageTag (0.13.0).
    CORE="buildctl build --frontend dockerfile.v0 --local context=${ROOT}/containers/core --local dockerfile=${ROOT}/containers/core --opt filename=Containerfile --opt target=runtime --opt platform=linux/amd64 --opt build-arg:IMAGE_TITLE=stepflow-core --opt build-arg:IMAGE_VERSION=0.13.0 ${ARGS_COMMON} --opt build-arg:STEPFLOW_PORT=8080 --opt build-arg:STEPFLOW_UID=1001 --opt build-arg:STEPFLOW_GID=1001 --opt build-arg:STEPFLOW_ORCHESTRATOR_VERSION=0.13.0 --opt build-arg:STEPFLOW_SERVER_SOURCE=release --opt build-arg:STEPFLOW_STATE_DIR=/var/lib/stepflow --output type=image,name=localhost:5000/stepflow-core:0.13.0,push=false --export-cache type=local,dest=${CACHE}/stepflow-core,mode=max"
    SDK="buildctl build --frontend dockerfile.v0 --local context=${ROOT}/containers/python-sdk --local dockerfile=${ROOT}/containers/python-sdk --opt filename=Containerfile --opt target=runtime --opt platform=linux/amd64 --opt build-arg:IMAGE_TITLE=stepflow-python-sdk --opt build-arg:IMAGE_VERSION=0.13.0 ${ARGS_COMMON} --opt build-arg:STEPFLOW_PORT=8081 --opt build-arg:STEPFLOW_UID=65532 --opt build-arg:STEPFLOW_GID=65532 --opt build-arg:STEPFLOW_GENERATION=0.13 --opt build-arg:STEPFLOW_PY_VERSION=0.13.0 --opt build-arg:STEPFLOW_PY_EXTRAS= --opt build-arg:STEPFLOW_KIT_HEARTBEAT_FILE=/tmp/stepflow-worker.heartbeat --output type=image,name=localhost:5000/stepflow-python-sdk:0.13.0,push=false --export-cache type=local,dest=${CACHE}/stepflow-python-sdk,mode=max"
    # The inference context is containers/: the image ships python-sdk/stepflow_kit_worker.
    INFERENCE="buildctl build --frontend dockerfile.v0 --local context=${ROOT}/containers --local dockerfile=${ROOT}/containers/inference --opt filename=Containerfile --opt target=runtime --opt platform=linux/amd64 --opt build-arg:IMAGE_TITLE=stepflow-inference --opt build-arg:IMAGE_VERSION=0.13.0 ${ARGS_COMMON} --opt build-arg:STEPFLOW_PORT=8082 --opt build-arg:STEPFLOW_UID=65532 --opt build-arg:STEPFLOW_GID=65532 --opt build-arg:STEPFLOW_GENERATION=0.13 --opt build-arg:STEPFLOW_PY_VERSION=0.13.0 --opt build-arg:STEPFLOW_PY_EXTRAS= --opt build-arg:STEPFLOW_KIT_HEARTBEAT_FILE=/tmp/stepflow-worker.heartbeat --opt build-arg:MODEL_CACHE_DIR=/models --opt build-arg:STEPFLOW_CACHE_DIR=/var/cache/stepflow --output type=image,name=localhost:5000/stepflow-inference:0.13.0,push=false --export-cache type=local,dest=${CACHE}/stepflow-inference,mode=max"
}

@test "core with defaults: checks the daemon, then one exact buildctl build" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" core
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
buildctl debug workers
${CORE}
CALLS
}

@test "an existing local cache is imported" {
    mkdir -p "${CACHE}/stepflow-core"
    touch "${CACHE}/stepflow-core/index.json"
    run --separate-stderr script "${ROOT}/scripts/build.sh" core
    [ "${status}" -eq 0 ]
    assert_called "${CORE} --import-cache type=local,src=${CACHE}/stepflow-core"
}

@test "--tag v1.0.0 --push --registry r.io: tag, registry and push in the output, BuildKit's metadata kept" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --tag v1.0.0 --push --registry r.io --lock "${LOCK}"
    [ "${status}" -eq 0 ]
    expected="${CORE/IMAGE_VERSION=0.13.0/IMAGE_VERSION=v1.0.0}"
    expected="${expected/name=localhost:5000\/stepflow-core:0.13.0,push=false/name=r.io/stepflow-core:v1.0.0,push=true --metadata-file ${METADATA}/stepflow-core.json}"
    assert_calls <<CALLS
buildctl debug workers
${expected}
CALLS
}

# The digest the stub reports for an image name: sha256 of the name (tests only).
stub_digest() {
    printf 'sha256:%s' "$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)"
}

@test "--push records the pushed digest in images.lock.json of the repository" {
    # a copy of what build.sh reads, so that the repository's own lock is never written
    local repo="${BATS_TEST_TMPDIR}/repo"
    mkdir -p "${repo}/scripts/lib" "${repo}/src"
    cp "${ROOT}/scripts/build.sh" "${repo}/scripts/"
    cp "${ROOT}/scripts/lib/common.sh" "${repo}/scripts/lib/"
    cp "${ROOT}/src/contract.json" "${repo}/src/"
    run --separate-stderr script "${repo}/scripts/build.sh" core --push --registry r.io
    [ "${status}" -eq 0 ]
    [ "$(cat "${repo}/images.lock.json")" = "$(
        cat <<JSON
{
  "lockVersion": 1,
  "images": {
    "r.io/stepflow-core:0.13.0": {
      "digest": "$(stub_digest r.io/stepflow-core:0.13.0)",
      "platforms": [
        "linux/amd64"
      ]
    }
  }
}
JSON
    )" ]
    assert_contains "${stderr}" "pushed r.io/stepflow-core:0.13.0: $(stub_digest r.io/stepflow-core:0.13.0) (recorded in ${repo}/images.lock.json)"
}

@test "--push --lock FILE: every image, sorted; a later push replaces its own entry and keeps the others" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" all --push --registry r.io/team --platform linux/amd64,linux/arm64 --lock "${LOCK}"
    [ "${status}" -eq 0 ]
    # shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
    [ "$(node -e 'const l = require(process.argv[1]); console.log(Object.entries(l.images).map(([k, v]) => `${k} ${v.digest} ${v.platforms}`).join("\n"))' "${LOCK}")" = "$(
        printf '%s\n' \
            "r.io/team/stepflow-core:0.13.0 $(stub_digest r.io/team/stepflow-core:0.13.0) linux/amd64,linux/arm64" \
            "r.io/team/stepflow-inference:0.13.0 $(stub_digest r.io/team/stepflow-inference:0.13.0) linux/amd64,linux/arm64" \
            "r.io/team/stepflow-python-sdk:0.13.0 $(stub_digest r.io/team/stepflow-python-sdk:0.13.0) linux/amd64,linux/arm64"
    )" ]
    STUB_BUILDCTL_DIGEST="sha256:$(printf '%064d' 7)" run --separate-stderr script "${ROOT}/scripts/build.sh" python-sdk --push --registry r.io/team --lock "${LOCK}"
    [ "${status}" -eq 0 ]
    # shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
    [ "$(node -e 'const l = require(process.argv[1]); console.log(Object.entries(l.images).map(([k, v]) => `${k} ${v.digest}`).join("\n"))' "${LOCK}")" = "$(
        printf '%s\n' \
            "r.io/team/stepflow-core:0.13.0 $(stub_digest r.io/team/stepflow-core:0.13.0)" \
            "r.io/team/stepflow-inference:0.13.0 $(stub_digest r.io/team/stepflow-inference:0.13.0)" \
            "r.io/team/stepflow-python-sdk:0.13.0 sha256:$(printf '%064d' 7)"
    )" ]
}

@test "a push BuildKit reports no digest for: exit 5, the lock as it was" {
    printf '{"lockVersion": 1, "images": {}}\n' >"${LOCK}"
    STUB_BUILDCTL_DIGEST=none run --separate-stderr script "${ROOT}/scripts/build.sh" core --push --lock "${LOCK}"
    [ "${status}" -eq 5 ]
    assert_contains "${stderr}" "no BuildKit metadata for localhost:5000/stepflow-core:0.13.0 in ${METADATA}/stepflow-core.json"
    assert_contains "${stderr}" "localhost:5000/stepflow-core:0.13.0 was pushed, but its digest is not in ${LOCK}"
    [ "$(cat "${LOCK}")" = '{"lockVersion": 1, "images": {}}' ]
    STUB_BUILDCTL_DIGEST=sha256:abc run --separate-stderr script "${ROOT}/scripts/build.sh" core --push --lock "${LOCK}"
    [ "${status}" -eq 5 ]
    assert_contains "${stderr}" 'BuildKit reported no image digest for localhost:5000/stepflow-core:0.13.0 (containerimage.digest is "sha256:abc"'
}

@test "a lock file of another kind is left alone: exit 5" {
    printf 'not json\n' >"${LOCK}"
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --push --lock "${LOCK}"
    [ "${status}" -eq 5 ]
    assert_contains "${stderr}" "${LOCK} is not a lock file"
    [ "$(cat "${LOCK}")" = "not json" ]
}

@test "a failing push records nothing; without --push no metadata, no lock" {
    STUB_BUILDCTL_EXIT=7 run --separate-stderr script "${ROOT}/scripts/build.sh" core --push --lock "${LOCK}"
    [ "${status}" -eq 7 ]
    [ ! -e "${LOCK}" ]
    : >"${STUB_LOG}"
    run --separate-stderr script "${ROOT}/scripts/build.sh" core
    [ "${status}" -eq 0 ]
    refute_called "--metadata-file"
    [ ! -e "${LOCK}" ]
}

@test "--dry-run --push prints the --metadata-file and writes nothing" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --dry-run --push --lock "${LOCK}"
    [ "${status}" -eq 0 ]
    [ "${output}" = "${CORE/push=false/push=true --metadata-file ${METADATA}/stepflow-core.json}" ]
    [ ! -e "${LOCK}" ]
    [ ! -e "${METADATA}" ]
}

@test "--platform linux/amd64,linux/arm64 builds one multi-platform image" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --platform linux/amd64,linux/arm64
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
buildctl debug workers
${CORE/platform=linux\/amd64/platform=linux/amd64,linux/arm64}
CALLS
}

@test "--dev builds the dev target and appends -dev to the tag" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" python-sdk --dev --tag v2
    [ "${status}" -eq 0 ]
    expected="${SDK/target=runtime/target=dev}"
    expected="${expected/IMAGE_VERSION=0.13.0/IMAGE_VERSION=v2-dev}"
    expected="${expected/stepflow-python-sdk:0.13.0/stepflow-python-sdk:v2-dev}"
    assert_calls <<CALLS
buildctl debug workers
${expected}
CALLS
}

@test "--no-cache passes --no-cache and imports no cache even when one exists" {
    mkdir -p "${CACHE}/stepflow-core"
    touch "${CACHE}/stepflow-core/index.json"
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --no-cache
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
buildctl debug workers
${CORE} --no-cache
CALLS
}

@test "all builds the three images in contract order" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" all
    [ "${status}" -eq 0 ]
    assert_calls <<CALLS
buildctl debug workers
${CORE}
${SDK}
${INFERENCE}
CALLS
}

@test "--dry-run prints one command per image and calls nothing" {
    rm "${STUBBIN}/buildctl" # not even needed on PATH
    run --separate-stderr script "${ROOT}/scripts/build.sh" all --dry-run
    [ "${status}" -eq 0 ]
    [ "${output}" = "$(printf '%s\n%s\n%s' "${CORE}" "${SDK}" "${INFERENCE}")" ]
    [ ! -s "${STUB_LOG}" ]
}

@test "--dry-run output is shell-quoted: running it makes the same call" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --dry-run --build-arg "IMAGE_SOURCE=https://example.org/a b"
    [ "${status}" -eq 0 ]
    assert_contains "${output}" "'build-arg:IMAGE_SOURCE=https://example.org/a b'"
    script bash -c "${output}"
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --build-arg "IMAGE_SOURCE=https://example.org/a b"
    [ "${status}" -eq 0 ]
    [ "$(sed -n 1p "${STUB_LOG}")" = "$(sed -n 3p "${STUB_LOG}")" ]
}

@test "REGISTRY and BUILDKIT_HOST from the environment" {
    REGISTRY=reg.example:5443/team BUILDKIT_HOST=tcp://127.0.0.1:1234 \
        run --separate-stderr script "${ROOT}/scripts/build.sh" core
    [ "${status}" -eq 0 ]
    expected="${CORE/buildctl build/buildctl --addr tcp://127.0.0.1:1234 build}"
    expected="${expected/localhost:5000/reg.example:5443/team}"
    assert_calls <<CALLS
buildctl --addr tcp://127.0.0.1:1234 debug workers
${expected}
CALLS
}

@test "--registry wins over REGISTRY" {
    REGISTRY=env.example run --separate-stderr script "${ROOT}/scripts/build.sh" core --registry=opt.example
    [ "${status}" -eq 0 ]
    assert_called "${CORE/localhost:5000/opt.example}"
}

@test "--cache-registry keeps the cache in the registry" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" inference --cache-registry --push --lock "${LOCK}"
    [ "${status}" -eq 0 ]
    expected="${INFERENCE/push=false/push=true --metadata-file ${METADATA}\/stepflow-inference.json}"
    expected="${expected/--export-cache type=local,dest=${CACHE}\/stepflow-inference,mode=max/--export-cache type=registry,ref=localhost:5000/stepflow-inference:buildcache,mode=max --import-cache type=registry,ref=localhost:5000/stepflow-inference:buildcache}"
    assert_called "${expected}"
}

@test "--cache-dir sets the local cache directory" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --cache-dir /tmp/bk
    [ "${status}" -eq 0 ]
    assert_called "${CORE/dest=${CACHE}\/stepflow-core/dest=/tmp/bk/stepflow-core}"
}

@test "core --context CHECKOUT compiles from source" {
    mkdir -p "${BATS_TEST_TMPDIR}/stepflow/stepflow-rs"
    touch "${BATS_TEST_TMPDIR}/stepflow/stepflow-rs/Cargo.toml"
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --context "${BATS_TEST_TMPDIR}/stepflow"
    [ "${status}" -eq 0 ]
    expected="${CORE/context=${ROOT}\/containers\/core/context=${BATS_TEST_TMPDIR}/stepflow}"
    expected="${expected/STEPFLOW_SERVER_SOURCE=release/STEPFLOW_SERVER_SOURCE=source}"
    assert_called "${expected}"
}

@test "core --context without stepflow-rs/Cargo.toml is a usage error" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --context "${BATS_TEST_TMPDIR}"
    [ "${status}" -eq 2 ]
    assert_contains "${stderr}" "StepFlow source checkout"
    [ ! -s "${STUB_LOG}" ]
}

@test "--dev without --tag: the generation's imageTag with -dev" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" inference --dev
    [ "${status}" -eq 0 ]
    expected="${INFERENCE/target=runtime/target=dev}"
    expected="${expected/IMAGE_VERSION=0.13.0/IMAGE_VERSION=0.13.0-dev}"
    assert_called "${expected/stepflow-inference:0.13.0/stepflow-inference:0.13.0-dev}"
}

@test "--generation 0.11 takes the 0.11 versions, process and tag from the contract" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" all --generation 0.11
    [ "${status}" -eq 0 ]
    local core sdk inference
    core="${CORE//0.13.0/0.11.1}"
    sdk="${SDK//:0.13.0/:0.11.1}"
    sdk="${sdk/IMAGE_VERSION=0.13.0/IMAGE_VERSION=0.11.1}"
    sdk="${sdk/STEPFLOW_GENERATION=0.13/STEPFLOW_GENERATION=0.11}"
    sdk="${sdk/STEPFLOW_PY_VERSION=0.13.0/STEPFLOW_PY_VERSION=0.11.0}"
    inference="${INFERENCE//:0.13.0/:0.11.1}"
    inference="${inference/IMAGE_VERSION=0.13.0/IMAGE_VERSION=0.11.1}"
    inference="${inference/STEPFLOW_GENERATION=0.13/STEPFLOW_GENERATION=0.11}"
    inference="${inference/STEPFLOW_PY_VERSION=0.13.0/STEPFLOW_PY_VERSION=0.11.0}"
    assert_calls <<CALLS
buildctl debug workers
${core}
${sdk/STEPFLOW_PY_EXTRAS= /STEPFLOW_PY_EXTRAS=http }
${inference/STEPFLOW_PY_EXTRAS= /STEPFLOW_PY_EXTRAS=http }
CALLS
}

@test "inference --context DIR replaces the containers/ context" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" inference --context "${BATS_TEST_TMPDIR}"
    [ "${status}" -eq 0 ]
    assert_called "${INFERENCE/context=${ROOT}\/containers /context=${BATS_TEST_TMPDIR} }"
}

@test "--build-arg replaces a computed argument and adds new ones" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --build-arg STEPFLOW_SERVER_SOURCE=source \
        --build-arg ALPINE_DIGEST=sha256:abc
    [ "${status}" -eq 0 ]
    expected="${CORE/ --opt build-arg:STEPFLOW_SERVER_SOURCE=release/}"
    expected="${expected/ --output/ --opt build-arg:STEPFLOW_SERVER_SOURCE=source --opt build-arg:ALPINE_DIGEST=sha256:abc --output}"
    assert_called "${expected}"
}

@test "a failing buildctl build fails the script with its status" {
    STUB_BUILDCTL_EXIT=5 run --separate-stderr script "${ROOT}/scripts/build.sh" all
    [ "${status}" -eq 5 ]
    assert_contains "${stderr}" "buildctl failed for core"
    refute_called "stepflow-python-sdk"
}

@test "unknown option: exit 2 and usage" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" core --frobnicate
    [ "${status}" -eq 2 ]
    assert_contains "${stderr}" "unknown option: --frobnicate"
    assert_contains "${stderr}" "usage: scripts/build.sh"
    [ ! -s "${STUB_LOG}" ]
}

@test "unknown component: exit 2 and usage" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" frontend
    [ "${status}" -eq 2 ]
    assert_contains "${stderr}" "unknown component: frontend"
    assert_contains "${stderr}" "usage: scripts/build.sh"
}

@test "usage errors exit 2: no component, option without value, bad tag, bad platform, exclusive cache options, --context with all" {
    local -a cases=(
        ""
        "core --tag"
        "core --tag --push"
        "core --tag bad/tag"
        "core --platform windows/amd64"
        "core --cache-dir /tmp/x --cache-registry"
        "all --context /tmp"
        "core python-sdk"
        "core --build-arg novalue"
        "core --generation 9.9"
        "core --lock /tmp/images.lock.json"
        "core --push --lock /nonexistent/dir/images.lock.json"
    )
    local c
    for c in "${cases[@]}"; do
        # shellcheck disable=SC2086 # word splitting of the case is intended
        run --separate-stderr script "${ROOT}/scripts/build.sh" ${c}
        if [ "${status}" -ne 2 ]; then
            echo "case '${c}': status ${status}, expected 2" >&2
            return 1
        fi
        assert_contains "${stderr}" "usage: scripts/build.sh"
    done
    [ ! -s "${STUB_LOG}" ]
}

@test "--help prints usage and exits 0" {
    run --separate-stderr script "${ROOT}/scripts/build.sh" --help
    [ "${status}" -eq 0 ]
    assert_contains "${output}" "usage: scripts/build.sh <core|python-sdk|inference|all>"
}

@test "buildctl missing: exit 3 with install hints" {
    rm "${STUBBIN}/buildctl"
    run --separate-stderr script "${ROOT}/scripts/build.sh" core
    [ "${status}" -eq 3 ]
    assert_contains "${stderr}" "buildctl (the BuildKit client) is not on PATH"
    assert_contains "${stderr}" "brew install buildkit"
    assert_contains "${stderr}" "scripts/dev.sh start"
}

@test "daemon down: exit 4 with how to start it, nothing built" {
    STUB_BUILDKIT_DOWN=1 run --separate-stderr script "${ROOT}/scripts/build.sh" core
    [ "${status}" -eq 4 ]
    assert_contains "${stderr}" "cannot reach the BuildKit daemon"
    assert_contains "${stderr}" "scripts/dev.sh start"
    assert_contains "${stderr}" "BUILDKIT_HOST"
    assert_calls <<CALLS
buildctl debug workers
CALLS
}

@test "every contract build argument is an ARG of the Containerfile with the same default" {
    local c line arg name value
    for c in core python-sdk inference; do
        run --separate-stderr script "${ROOT}/scripts/build.sh" "${c}" --dry-run
        [ "${status}" -eq 0 ]
        for arg in ${output}; do
            case "${arg}" in
                build-arg:IMAGE_* | build-arg:STEPFLOW_SERVER_SOURCE=*) continue ;;
                build-arg:*) ;;
                *) continue ;;
            esac
            name="${arg#build-arg:}"
            value="${name#*=}"
            name="${name%%=*}"
            line="ARG ${name}=${value}"
            if ! grep -qxF "${line}" "${ROOT}/containers/${c}/Containerfile"; then
                echo "containers/${c}/Containerfile lacks '${line}'" >&2
                return 1
            fi
        done
    done
}
