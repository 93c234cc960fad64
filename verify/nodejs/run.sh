#!/usr/bin/env bash
# The README's two commands and the consumer tier on a pinned Node.js line
# (verify/nodejs/versions.env), the way a user on that line meets them; per line:
#
#  1. install the line (verify/nodejs/install.sh) and put it first on PATH;
#  2. a fresh clone of the checkout's HEAD in a temp directory (the checkout is untouched);
#  3. `npm ci && npm run synth` there: npm ci must print no engine warning, and dist/ must
#     come out byte-identical to the commit's (which the CI line's synth was checked against);
#  4. `npm test` there (type-check and jest, the packed-package test included);
#  5. verify/consumer/run.sh there (the packed package in a platform team's app).
#
# Prints one PASS:/FAIL: line per check, the time each phase took, and ends with
# "N passed, M failed"; exits 1 when anything failed, 2 on a usage error.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=SCRIPTDIR/versions.env
. "$HERE/versions.env"

usage() {
  cat <<EOF
Usage: verify/nodejs/run.sh [--line LINE]... [--keep]

  --line LINE  a Node.js line to run on: ${NODEJS_LINES// /, } (verify/nodejs/versions.env);
               repeat for several. Default: every line but the one .ci/run runs on (${NODEJS_CI_LINE})
  --keep       keep the clones (their paths are printed)
  -h, --help   show this help

Runs 'npm ci && npm run synth', 'npm test' and verify/consumer/run.sh on each Node.js LINE
in a fresh clone of HEAD (uncommitted changes are not part of the run). Needs git, npm on
PATH (to fetch the lines) and the npm registry.
EOF
}
usage_error() { echo "nodejs/run.sh: $*" >&2; usage >&2; exit 2; }

LINES=()
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --line)
      if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "--line needs a line"; fi
      LINES+=("$2")
      shift 2
      ;;
    --line=?*) LINES+=("${1#--line=}"); shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
done
if [ "${#LINES[@]}" -eq 0 ]; then
  for line in $NODEJS_LINES; do [ "$line" = "$NODEJS_CI_LINE" ] || LINES+=("$line"); done
fi
for line in "${LINES[@]}"; do
  [[ " $NODEJS_LINES " == *" $line "* ]] || usage_error "unknown Node.js line '$line' (pinned: $NODEJS_LINES)"
done
# Several lines: one run of this script per line, then the sum of their counts.
if [ "${#LINES[@]}" -gt 1 ]; then
  total_pass=0
  total_fail=0
  keep=()
  [ "$KEEP" = 0 ] || keep=(--keep)
  for line in "${LINES[@]}"; do
    out=$(mktemp)
    bash "$0" --line "$line" ${keep[@]+"${keep[@]}"} | tee "$out" || true
    counts=$(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$out" | tail -n 1)
    rm -f "$out"
    read -r p f <<<"${counts:-0 1}" # no closing line: the run broke, count it as a failure
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
  done
  echo "$total_pass passed, $total_fail failed"
  [ "$total_fail" -eq 0 ]
  exit $?
fi
LINE=${LINES[0]}
command -v git >/dev/null || { echo "nodejs/run.sh: git not found on PATH" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stepflow-nodejs-$LINE.XXXXXX")
# cleanup: remove the work directory (once; from finish, or the EXIT trap on an abort).
CLEANED=0
cleanup() {
  [ "$CLEANED" = 0 ] || return 0
  CLEANED=1
  if [ "$KEEP" = 1 ]; then echo "  clone kept in $WORK/repo"; return 0; fi
  local t=$SECONDS
  cd /
  rm -rf "$WORK"
  TIMES+="removing the clone $((SECONDS - t)) s, "
}
trap cleanup EXIT

PASSN=0
FAILN=0
TIMES=""
T0=$SECONDS
pass() { PASSN=$((PASSN + 1)); echo "PASS: $*"; }
fail() { FAILN=$((FAILN + 1)); echo "FAIL: $*"; }
finish() {
  cleanup
  echo "  Node.js $LINE adds: ${TIMES}total $((SECONDS - T0)) s"
  echo "$PASSN passed, $FAILN failed"
  [ "$FAILN" -eq 0 ]
  exit $?
}
# phase NAME LOG CMD...: run CMD with its output in LOG and its time in TIMES; on failure
# show the end of LOG and record a FAIL. Returns CMD's status.
phase() {
  local name=$1 log=$2 t=$SECONDS rc=0
  shift 2
  "$@" >"$log" 2>&1 || rc=$?
  TIMES+="$name $((SECONDS - t)) s, "
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log" | sed 's/^/    /'
    fail "$name: '$*' exited $rc (Node.js $LINE)"
  fi
  return "$rc"
}

# An outer `npm run` exports its own node, npm and package settings; the line's npm must
# see none of them (the user's cache, registry and userconfig stay).
while IFS= read -r var; do
  case $var in
    npm_config_cache | npm_config_registry | npm_config_userconfig) ;;
    npm_* | NODE | INIT_CWD) unset "$var" ;;
  esac
done < <(compgen -e)

echo "== Node.js $LINE: the README's two commands and the consumer tier in $WORK"

# ------------------------------------------------------------- install ----
phase install "$WORK/install.log" bash "$HERE/install.sh" "$LINE" || finish
BIN=$(bash "$HERE/install.sh" "$LINE") # installed now: prints the bin directory at once
export PATH="$BIN:$PATH"
read -r want_node want_npm < <(bash "$HERE/install.sh" --version "$LINE")
got_node=$(node --version)
got_npm=$(npm --version)
if [ "$got_node" = "v$want_node" ] && [ "$got_npm" = "$want_npm" ] && [ "$(command -v node)" = "$BIN/node" ]; then
  pass "runtime: node $got_node and npm $got_npm from $BIN"
else
  fail "runtime: want node v$want_node, npm $want_npm from $BIN; PATH gives node $got_node ($(command -v node)), npm $got_npm"
  finish
fi

# --------------------------------------------------------------- clone ----
HEAD_SHA=$(git -C "$REPO" rev-parse HEAD)
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
  echo "  note: $REPO has uncommitted changes; this run tests HEAD ($HEAD_SHA) without them"
fi
phase clone "$WORK/clone.log" git clone --quiet --no-checkout "$REPO" "$WORK/repo" || finish
git -C "$WORK/repo" checkout --quiet --detach "$HEAD_SHA"
cd "$WORK/repo"

# ---------------------------------------------- README command 1 -----------
phase "npm ci" "$WORK/npm-ci.log" npm ci --no-audit --no-fund || finish
if ! grep -i 'EBADENGINE\|Unsupported engine' "$WORK/npm-ci.log" >"$WORK/engine-warnings"; then
  pass "npm ci: $(grep -E '^added [0-9]+ packages' "$WORK/npm-ci.log" || echo installed), no engine warning"
else
  fail "npm ci warned about engines on Node.js $LINE:"
  sed 's/^/    /' "$WORK/engine-warnings"
fi
grep -i '^npm warn' "$WORK/npm-ci.log" | grep -vi 'EBADENGINE\|Unsupported engine' | sed 's/^/  npm ci said: /' || true

if phase synth "$WORK/synth.log" npm run synth; then
  git status --porcelain --untracked-files=all -- dist/ >"$WORK/drift"
  if [ ! -s "$WORK/drift" ]; then
    pass "npm run synth: dist/ ($(git ls-files dist/ | wc -l | tr -d ' ') files) byte-identical to the commit's"
  else
    fail "npm run synth on Node.js $LINE changed dist/:"
    sed 's/^/    /' "$WORK/drift"
    git --no-pager diff --stat -- dist/ | sed 's/^/    /'
  fi
fi

# ---------------------------------------------- README command 2 -----------
if phase "npm test" "$WORK/test.log" npm test; then
  pass "npm test: $(grep -E '^Tests: ' "$WORK/test.log" | tail -n 1 | sed 's/^Tests: *//')"
fi

# ----------------------------------------------------- consumer tier -------
if phase consumer "$WORK/consumer.log" bash verify/consumer/run.sh; then
  pass "verify/consumer/run.sh: $(tail -n 1 "$WORK/consumer.log")"
fi

finish
