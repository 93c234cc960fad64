#!/usr/bin/env bash
# Common setup of the bats tests of scripts/build.sh, scripts/dev.sh and scripts/deploy.sh.
#
# The scripts under test run with a hermetic PATH (see `script`): the recording stubs
# a test asks for (use_stubs) plus links to the few system tools the scripts need, so
# a buildctl, limactl or kubectl installed on the machine is never called by a test.
# STUB_KIT_ROOT lets the kubectl stub read manifests with the repository's yaml package.
# HOME is a fresh directory.
# shellcheck shell=bash

# ROOT, STUB_SRC, BUILD_DATE and VCS_REF are used by the .bats files.
# shellcheck disable=SC2034
ROOT="$(cd "${BATS_TEST_DIRNAME}/../.." && pwd)"
STUB_SRC="${BATS_TEST_DIRNAME}/stubs"

# Fixed values for the labels that change with time and commit.
# shellcheck disable=SC2034
BUILD_DATE="2026-01-02T03:04:05Z"
# shellcheck disable=SC2034
VCS_REF="0123456789abcdef0123456789abcdef01234567"

common_setup() {
    bats_require_minimum_version 1.5.0
    STUB_LOG="${BATS_TEST_TMPDIR}/calls.log"
    STUB_STATE_DIR="${BATS_TEST_TMPDIR}/state"
    SYSBIN="${BATS_TEST_TMPDIR}/sysbin"
    STUBBIN="${BATS_TEST_TMPDIR}/stubbin"
    mkdir -p "${STUB_STATE_DIR}" "${SYSBIN}" "${STUBBIN}" "${BATS_TEST_TMPDIR}/home"
    : >"${STUB_LOG}"
    local tool path
    for tool in bash env node git date dirname basename uname cat sed mkdir rm sleep head \
        grep tr mktemp chmod printf sha256sum cut; do
        path="$(command -v "${tool}" || true)"
        case "${path}" in
            /*) ln -s "${path}" "${SYSBIN}/${tool}" ;;
        esac
    done
    ln -s "${STUB_SRC}/_record.sh" "${STUBBIN}/_record.sh"

    # Nothing from the caller's environment leaks into the scripts.
    unset BUILDKIT_HOST REGISTRY LIMA_INSTANCE LIMA_HOME KUBECONFIG_OUT STEPFLOW_KIT_CACHE \
        STEPFLOW_IMAGE_SOURCE STEPFLOW_REGISTRY_IMAGE STEPFLOW_REGISTRY_WAIT STEPFLOW_DEV_MANIFEST KUBECONFIG KUBECTL
    export HOME="${BATS_TEST_TMPDIR}/home"
    SCRIPT_PATH="${STUBBIN}:${SYSBIN}"
    STUB_KIT_ROOT="${ROOT}"
    export STUB_LOG STUB_STATE_DIR STUB_KIT_ROOT
    export STEPFLOW_BUILD_DATE="${BUILD_DATE}" STEPFLOW_VCS_REF="${VCS_REF}"
}

# script COMMAND... : run COMMAND with the hermetic PATH.
script() {
    env PATH="${SCRIPT_PATH}" "$@"
}

# use_stubs TOOL... : put these recording stubs on PATH.
use_stubs() {
    local tool
    for tool in "$@"; do
        ln -s "${STUB_SRC}/${tool}" "${STUBBIN}/${tool}"
    done
}

# assert_calls : the call log must equal stdin, line for line.
assert_calls() {
    local expected
    expected="$(cat)"
    if [ "$(cat "${STUB_LOG}")" != "${expected}" ]; then
        {
            echo "--- expected calls"
            printf '%s\n' "${expected}"
            echo "--- recorded calls"
            cat "${STUB_LOG}"
            echo "--- diff"
            diff <(printf '%s\n' "${expected}") "${STUB_LOG}" || true
        } >&2
        return 1
    fi
}

# assert_called LINE : one recorded call must equal LINE exactly.
assert_called() {
    if ! grep -qxF -- "$1" "${STUB_LOG}"; then
        {
            echo "--- expected a call"
            printf '%s\n' "$1"
            echo "--- recorded calls"
            cat "${STUB_LOG}"
        } >&2
        return 1
    fi
}

# refute_called PATTERN : no recorded call matches the fixed string PATTERN.
refute_called() {
    if grep -qF -- "$1" "${STUB_LOG}"; then
        {
            echo "--- unexpected call matching: $1"
            cat "${STUB_LOG}"
        } >&2
        return 1
    fi
}

# assert_contains HAYSTACK NEEDLE
assert_contains() {
    case "$1" in
        *"$2"*) return 0 ;;
    esac
    {
        echo "--- expected to find: $2"
        echo "--- in:"
        printf '%s\n' "$1"
    } >&2
    return 1
}
