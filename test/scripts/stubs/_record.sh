#!/usr/bin/env bash
# Shared part of the recording stubs in this directory (sourced, not run).
# Each stub appends one line "<tool> <argv joined by spaces>" to $STUB_LOG, so a test
# can compare the exact command lines the scripts ran.
# shellcheck shell=bash

record() {
    printf '%s\n' "$*" >>"${STUB_LOG:?STUB_LOG must point at the call log}"
}

# countdown NAME : true (and decrements) while the counter file NAME in
# $STUB_STATE_DIR holds a number > 0. Lets a stub fail the first N times.
countdown() {
    local file="${STUB_STATE_DIR:-${TMPDIR:-/tmp}}/$1" n
    [ -f "${file}" ] || return 1
    n="$(cat "${file}")"
    [ "${n}" -gt 0 ] || return 1
    printf '%s\n' "$((n - 1))" >"${file}"
    return 0
}
