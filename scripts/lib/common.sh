#!/usr/bin/env bash
# Shared helpers for scripts/build.sh, scripts/dev.sh and scripts/lint.sh.
# Source it; it defines functions and the KIT_ROOT / CONTRACT_FILE variables only.
# shellcheck shell=bash

# Repository root (the directory that holds src/contract.json).
KIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONTRACT_FILE="${KIT_ROOT}/src/contract.json"

# Exit codes shared by the scripts (documented in their usage texts). They are used by
# the scripts that source this file, which shellcheck cannot see from here.
# shellcheck disable=SC2034
readonly EXIT_USAGE=2        # unknown option/command/component, bad option value
readonly EXIT_PREREQ=3       # a required tool is missing (buildctl, limactl, node, ...)
# shellcheck disable=SC2034
readonly EXIT_UNREACHABLE=4  # a daemon or the VM is not reachable / not running

PROG="${PROG:-$(basename "$0")}"

# err MESSAGE... : print "PROG: error: MESSAGE" to stderr.
err() {
    printf '%s: error: %s\n' "${PROG}" "$*" >&2
}

# hint LINE... : print indented follow-up lines (what to do) to stderr.
hint() {
    local line
    for line in "$@"; do
        printf '  %s\n' "${line}" >&2
    done
}

# info MESSAGE... : progress messages go to stderr so stdout stays machine-readable.
info() {
    printf '%s: %s\n' "${PROG}" "$*" >&2
}

# die CODE MESSAGE [HINT...] : error message, optional hints, exit CODE.
die() {
    local code="$1" message="$2"
    shift 2
    err "${message}"
    if [ "$#" -gt 0 ]; then
        hint "$@"
    fi
    exit "${code}"
}

# shell_quote ARG... : print the arguments as one shell-safe line. Words made only of
# safe characters stay bare; anything else is single-quoted.
shell_quote() {
    local out="" arg
    for arg in "$@"; do
        if [[ -n "${arg}" && "${arg}" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
            out+="${arg} "
        else
            out+="'${arg//\'/\'\\\'\'}' "
        fi
    done
    printf '%s\n' "${out% }"
}

# have COMMAND : true when COMMAND is on PATH.
have() {
    command -v "$1" >/dev/null 2>&1
}

# load_contract : read src/contract.json once (one node process) into CONTRACT_TSV,
# lines of "dotted.key<TAB>value" (e.g. "components.core.port	8080",
# "generations.0.11.sdk	0.11.0"), and set CONTRACT_COMPONENTS (in file order).
# Plain variables, no associative arrays: macOS still ships bash 3.2.
CONTRACT_TSV=""
CONTRACT_COMPONENTS=()
load_contract() {
    have node || die "${EXIT_PREREQ}" "node is required to read ${CONTRACT_FILE}" \
        "install Node.js (the repository needs it anyway: npm ci)"
    [ -f "${CONTRACT_FILE}" ] || die "${EXIT_PREREQ}" "missing ${CONTRACT_FILE}"
    CONTRACT_TSV="$(node -e '
        const c = require(process.argv[1]);
        const walk = (v, p) => {
          if (v !== null && typeof v === "object" && !Array.isArray(v)) {
            for (const [k, x] of Object.entries(v)) walk(x, p ? p + "." + k : k);
          } else {
            console.log(p + "\t" + (Array.isArray(v) ? v.join(",") : String(v)));
          }
        };
        walk(c, "");
        console.log("componentOrder\t" + Object.keys(c.components).join(" "));
    ' "${CONTRACT_FILE}")" || die "${EXIT_PREREQ}" "could not read ${CONTRACT_FILE}"
    local order
    order="$(contract componentOrder)"
    read -r -a CONTRACT_COMPONENTS <<<"${order}"
}

# contract KEY : print one value of the loaded contract; fails loudly if absent.
contract() {
    local line tab=$'\t'
    while IFS= read -r line; do
        case "${line}" in
            "$1${tab}"*)
                printf '%s\n' "${line#*"${tab}"}"
                return 0
                ;;
        esac
    done <<<"${CONTRACT_TSV}"
    die 1 "key '$1' not found in ${CONTRACT_FILE}"
}

# contract_has KEY : true when KEY exists in the loaded contract.
contract_has() {
    local line tab=$'\t'
    while IFS= read -r line; do
        case "${line}" in
            "$1${tab}"*) return 0 ;;
        esac
    done <<<"${CONTRACT_TSV}"
    return 1
}

# is_component NAME : true when NAME is a component of the contract.
is_component() {
    local c
    for c in ${CONTRACT_COMPONENTS[@]+"${CONTRACT_COMPONENTS[@]}"}; do
        [ "${c}" = "$1" ] && return 0
    done
    return 1
}

# host_arch : the host CPU architecture in Lima/uname terms (x86_64 or aarch64).
host_arch() {
    local m
    m="$(uname -m)"
    case "${m}" in
        arm64) echo aarch64 ;;
        amd64) echo x86_64 ;;
        *) echo "${m}" ;;
    esac
}
