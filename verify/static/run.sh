#!/usr/bin/env bash
# Static tier of the StepFlow deployment kit: checks the synthesized manifests
# (dist/*.yaml) without a cluster and without network.
#
#  1. strict schema validation of every object against Kubernetes 1.30 and 1.37
#     (kubernetes-validate's bundled "-strict" JSON schemas: unknown fields and
#     wrong types are errors), preceded by a self-check proving the strictness
#     on a generated manifest (a typo'd field and a string for an int must fail);
#  2. uid-guard: every container runs as UID >= 10000 except those of the core image,
#     which must run as the contract's UID (what remains of CKV_K8S_40, skipped);
#  3. checkov (--framework kubernetes, offline) with the repo-root .checkov.yaml:
#     no failed check; each skip there must carry a reason and still be needed;
#     checkov itself is self-checked on a known-bad manifest.
#
# Tools live in venvs outside the repo, keyed by version:
#   ${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}/{kubernetes-validate,checkov}-<version>
# installed from the pinned closures in requirements/*.txt on first use.
#
# Prints one PASS:/FAIL: line per assertion and ends with "N passed, M failed";
# exits 1 when anything failed, 2 on a usage error.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=versions.env source-path=SCRIPTDIR disable=SC1091
source "$HERE/versions.env"

usage() {
  cat <<EOF
Usage: verify/static/run.sh [--dist DIR | --manifests DIR] [--checkov-config FILE]

  --dist DIR       directory holding the kit's synthesized manifests (default: <repo>/dist);
                   dev.yaml and prod.yaml are required, every *.yaml/*.yml is checked,
                   and so are the generated prop combinations
  --manifests DIR  any other directory of manifests (e.g. a consumer's output): every
                   *.yaml/*.yml is checked, none is required by name; the generated prop
                   combinations (a property of the library, not of DIR) are skipped
  --checkov-config FILE
                   the checkov skip list (default: <repo>/.checkov.yaml); every skip needs
                   a same-line reason and must still be needed in DIR
  -h, --help       show this help

Environment: STEPFLOW_KIT_CACHE (tool cache, default \$HOME/.cache/stepflow-kit)
Versions:    kubernetes-validate $KUBERNETES_VALIDATE_VERSION (k8s ${K8S_VERSIONS// /, }), checkov $CHECKOV_VERSION
EOF
}

DIST=$REPO/dist
SKIP_FILE=$REPO/.checkov.yaml
KIT_DIST=1 # 0: --manifests (no required files, no generated combinations)
SOURCE_OPT=""
set_source() { # set_source OPTION DIR
  if [ -n "$SOURCE_OPT" ]; then
    echo "run.sh: $1 and $SOURCE_OPT exclude each other" >&2
    usage >&2
    exit 2
  fi
  if [ -z "$2" ]; then
    echo "run.sh: $1 needs a directory" >&2
    usage >&2
    exit 2
  fi
  SOURCE_OPT=$1
  DIST=$2
  if [ "$1" = --manifests ]; then KIT_DIST=0; fi
}
while [ $# -gt 0 ]; do
  case $1 in
    --dist | --manifests)
      set_source "$1" "${2:-}"
      shift 2
      ;;
    --dist=?*) set_source --dist "${1#--dist=}"; shift ;;
    --manifests=?*) set_source --manifests "${1#--manifests=}"; shift ;;
    --checkov-config)
      if [ $# -lt 2 ] || [ ! -f "$2" ]; then
        echo "run.sh: --checkov-config needs an existing file" >&2
        usage >&2
        exit 2
      fi
      SKIP_FILE=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    *)
      echo "run.sh: unknown argument: $1" >&2
      usage >&2
      exit 2
      ;;
  esac
done

if [ ! -d "$DIST" ]; then
  echo "FAIL: manifests: $DIST is not a directory (run the synth first)"
  echo "0 passed, 1 failed"
  exit 1
fi
DIST=$(cd "$DIST" && pwd) # absolute: checkov runs from another directory

CACHE=${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}
CONTRACT=$REPO/src/contract.json
TMP=$(mktemp -d "${TMPDIR:-/tmp}/stepflow-static.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

PASSN=0
FAILN=0
pass() { PASSN=$((PASSN + 1)); echo "PASS: $*"; }
fail() { FAILN=$((FAILN + 1)); echo "FAIL: $*"; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Run a helper that prints PASS:/FAIL: lines; count them. A helper that exits
# non-zero without any FAIL line crashed: that is a failure too.
run_helper() {
  local what=$1 log=$TMP/helper.log rc=0 p f
  shift
  "$@" >"$log" 2>&1 || rc=$?
  cat "$log"
  p=$(grep -c '^PASS: ' "$log" || true)
  f=$(grep -c '^FAIL: ' "$log" || true)
  PASSN=$((PASSN + p))
  FAILN=$((FAILN + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    fail "$what: helper exited $rc without a result (see output above)"
  fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$rc" -eq 0 ]; then
    fail "$what: helper asserted nothing"
  fi
}

# ------------------------------------------------------------ tool install --

# ensure_venv NAME VERSION REQUIREMENTS -> prints the venv dir. Rebuilt when the
# pinned requirements or the Python version change; a half-built venv (no stamp)
# is thrown away. Concurrent runs serialize on a lock file.
ensure_venv() {
  local name=$1 version=$2 req=$3 dir stamp want
  dir=$CACHE/$name-$version
  stamp=$dir/.stepflow-kit-complete
  grep -qx "$name==$version" "$req" || {
    echo "run.sh: $req does not pin $name==$version (versions.env and requirements disagree)" >&2
    return 1
  }
  want="$(python3 -c 'import sys; print(sys.version.split()[0])') $(sha256sum "$req" | cut -d' ' -f1)"
  mkdir -p "$CACHE"
  (
    flock 9
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
      exit 0
    fi
    echo "  installing $name $version into $dir" >&2
    rm -rf "$dir"
    if ! python3 -m venv "$dir" >&2; then
      echo "run.sh: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
    # Explicit checks: errexit does not apply here (the caller uses `||`).
    if ! "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2; then
      echo "run.sh: pip could not install $req" >&2
      exit 1
    fi
    if ! "$dir/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version(sys.argv[1]) != sys.argv[2])' \
      "$name" "$version"; then
      echo "run.sh: $name $version is not what got installed into $dir" >&2
      exit 1
    fi
    printf '%s\n' "$want" >"$stamp" || exit 1
  ) 9>"$CACHE/.$name-$version.lock" || return 1
  printf '%s\n' "$dir"
}

T0=$(now)
echo "== static tier: $DIST"
install_failed() {
  fail "install: $1 could not be installed into $CACHE (see the messages above)"
  echo "$PASSN passed, $FAILN failed"
  exit 1
}
KV=$(ensure_venv kubernetes-validate "$KUBERNETES_VALIDATE_VERSION" "$HERE/requirements/kubernetes-validate.txt") ||
  install_failed "kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
CK=$(ensure_venv checkov "$CHECKOV_VERSION" "$HERE/requirements/checkov.txt") ||
  install_failed "checkov $CHECKOV_VERSION"
T_INSTALL=$(since "$T0")
echo "  tools: kubernetes-validate $("$KV/bin/python" -m kubernetes_validate --version)," \
  "checkov $("$CK/bin/python" -c 'from checkov.version import version; print(version)') (ready in ${T_INSTALL}s)"

# Everything below runs without network: in an empty network namespace when the
# kernel lets us make one (root, CI), so an attempted download fails at once
# instead of passing unnoticed. Otherwise the tools' own offline settings apply.
OFFLINE=()
if unshare -n true 2>/dev/null; then
  OFFLINE=(unshare -n --)
  echo "  network: none (unshare -n)"
else
  echo "  network: not isolated (unshare -n not permitted); relying on the tools' offline settings"
fi

# --------------------------------------------------------------- manifests --

shopt -s nullglob
FILES=("$DIST"/*.yaml "$DIST"/*.yml)
shopt -u nullglob
if [ "$KIT_DIST" = 1 ]; then
  for want in dev.yaml prod.yaml; do
    if [ -f "$DIST/$want" ]; then
      pass "manifests: $DIST/$want exists"
    else
      fail "manifests: $DIST/$want is missing (run the synth first)"
    fi
  done
fi

if [ "${#FILES[@]}" -eq 0 ]; then
  fail "manifests: no *.yaml in $DIST - nothing to check"
  echo "$PASSN passed, $FAILN failed"
  exit 1
fi

# ------------------------------------------------------------ 1. schemas ----

T1=$(now)
VERSIONS=${K8S_VERSIONS// /,}
echo "== schema: strict, Kubernetes ${K8S_VERSIONS// /, } (kubernetes-validate $KUBERNETES_VALIDATE_VERSION)"
run_helper "schema selfcheck" "${OFFLINE[@]}" "$KV/bin/python" "$HERE/static_checks.py" selfcheck \
  --versions "$VERSIONS" --workdir "$TMP/selfcheck-schema"
run_helper "schema" "${OFFLINE[@]}" "$KV/bin/python" "$HERE/static_checks.py" schema \
  --versions "$VERSIONS" "${FILES[@]}"
T_SCHEMA=$(since "$T1")

# ------------------------------------------------ 1b. generated installations --
# The prop combinations of test/property.test.ts (same generator and seed): what the kit
# synthesizes must pass the same strict schemas (what it rejects, npm test covers).
T1=$(now)
PROPERTY_RUNS=${STEPFLOW_PROPERTY_SAMPLES:-40}
property_samples() {
  echo "== schema: strict, $PROPERTY_RUNS generated prop combinations (verify/static/property-samples.js)"
  if [ ! -f "$REPO/lib/src/index.js" ]; then (cd "$REPO" && npx --no-install tsc -p .); fi
  if node "$HERE/property-samples.js" "$TMP/property" "$PROPERTY_RUNS" >"$TMP/property.log" 2>&1; then
    cat "$TMP/property.log"
    shopt -s nullglob
    SAMPLES=("$TMP/property"/*.yaml)
    shopt -u nullglob
    if [ "${#SAMPLES[@]}" -eq 0 ]; then
      fail "property samples: no generated combination synthesized"
    else
      run_helper "property schema" "${OFFLINE[@]}" "$KV/bin/python" "$HERE/static_checks.py" schema \
        --versions "$VERSIONS" "${SAMPLES[@]}"
    fi
  else
    cat "$TMP/property.log"
    fail "property samples: the generator failed (a TypeError or a message not in the kit's format)"
  fi
}
if [ "$KIT_DIST" = 1 ]; then
  property_samples
else
  echo "== schema: the generated prop combinations are skipped (--manifests; the --dist run checks them)"
fi
T_PROPERTY=$(since "$T1")

# ---------------------------------------------------------- 2. uid guard ----

echo "== uid-guard (CKV_K8S_40 minus the one exception the spec makes: the core image runs as its contract UID)"
if [ -f "$CONTRACT" ]; then
  run_helper "uid-guard" "$KV/bin/python" "$HERE/static_checks.py" uid-guard \
    --contract "$CONTRACT" "${FILES[@]}"
else
  fail "uid-guard: $CONTRACT is missing"
fi

# ------------------------------------------------------------ 3. checkov ----

T2=$(now)
echo "== checkov $CHECKOV_VERSION (offline, --framework kubernetes)"
mkdir -p "$TMP/home" "$TMP/scan/dist" "$TMP/scan/selfcheck"
cp "${FILES[@]}" "$TMP/scan/dist/"
cat >"$TMP/scan/selfcheck/bad.yaml" <<'EOF'
# Generated by verify/static: checkov must fail this (privileged, privilege escalation).
apiVersion: v1
kind: Pod
metadata:
  name: checkov-selfcheck
  namespace: static-selfcheck
spec:
  containers:
    - name: app
      image: registry.invalid/selfcheck:1.0.0
      securityContext:
        privileged: true
        allowPrivilegeEscalation: true
EOF

# checkov reads .checkov.yaml from -d, the working directory and $HOME: run it
# from an empty HOME/cwd so that only the --config-file given here applies.
checkov_run() {
  (
    cd "$TMP/home"
    env -u BC_API_KEY -u PRISMA_API_URL -u BC_API_URL \
      HOME="$TMP/home" CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE LOG_LEVEL=WARNING \
      "${OFFLINE[@]}" "$CK/bin/checkov" --framework kubernetes --skip-download \
      --skip-results-upload -o json "$@"
  )
}

CONFIG_ARGS=()
SKIP_IDS=()
if [ -f "$SKIP_FILE" ]; then
  CONFIG_ARGS=(--config-file "$SKIP_FILE")
  mapfile -t SKIP_IDS < <(sed -n 's/^[[:space:]]*-[[:space:]]*["'\'']\{0,1\}\(CKV2\{0,1\}_K8S_[0-9][0-9]*\).*/\1/p' "$SKIP_FILE")
fi

# Audit run without the skip list: the skipped checks (still needed?) plus the
# checkov self-check, on copies of dist/ and the known-bad manifest. Both runs
# go in parallel (each is a few seconds of start-up).
AUDIT_CHECKS=CKV_K8S_16,CKV_K8S_20
for id in "${SKIP_IDS[@]}"; do AUDIT_CHECKS+=",$id"; done
checkov_run -d "$DIST" "${CONFIG_ARGS[@]}" >"$TMP/checkov-main.json" 2>"$TMP/checkov-main.err" &
MAIN_PID=$!
checkov_run -d "$TMP/scan" --check "$AUDIT_CHECKS" >"$TMP/checkov-audit.json" 2>"$TMP/checkov-audit.err" &
AUDIT_PID=$!
rc=0
wait "$MAIN_PID" || rc=$?
if [ "$rc" -gt 1 ]; then
  fail "checkov: exited $rc on $DIST: $(tail -n 5 "$TMP/checkov-main.err" | tr '\n' ' ')"
fi
rc=0
wait "$AUDIT_PID" || rc=$?
if [ "$rc" -gt 1 ]; then
  fail "checkov: audit run exited $rc: $(tail -n 5 "$TMP/checkov-audit.err" | tr '\n' ' ')"
fi
run_helper "checkov" "$CK/bin/python" "$HERE/static_checks.py" checkov \
  --dist "$DIST" --skip-file "$SKIP_FILE" --expect-version "$CHECKOV_VERSION" \
  --main-json "$TMP/checkov-main.json" --audit-json "$TMP/checkov-audit.json"
T_CHECKOV=$(since "$T2")

echo "  timing: tools ${T_INSTALL}s, schema ${T_SCHEMA}s, generated ${T_PROPERTY}s, checkov ${T_CHECKOV}s, total $(since "$T0")s"
echo "$PASSN passed, $FAILN failed"
[ "$FAILN" -eq 0 ]
