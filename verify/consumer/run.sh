#!/usr/bin/env bash
# Consumer tier: the packed npm package, used the way a platform team uses it.
#
#  1. `npm pack` in the repository (its prepack compiles the library);
#  2. a project in a temp directory OUTSIDE the repository: verify/consumer/app/
#     (package.json with exact versions, its package-lock.json, tsconfig.json with
#     strict on, src/) installed with `npm ci`, then the tarball with
#     `npm install --no-save` (the locked versions must stay what they are);
#  3. `tsc -p .` (strict, the library's .d.ts checked too: skipLibCheck off);
#  4. `node lib/main.js --outdir OUT`: the platform team's installations;
#  5. `node lib/assert.js OUT`: exact assertions on the written YAML.
#
# The app's pinned cdk8s, cdk8s-plus-30, constructs, typescript and @types/node must
# equal the repository's devDependencies (checked first), so the consumer compiles
# against what the library was built and tested with.
#
# Prints one PASS:/FAIL: line per assertion and ends with "N passed, M failed";
# exits 1 when anything failed, 2 on a usage error.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() {
  cat <<EOF
Usage: verify/consumer/run.sh [--outdir DIR] [--keep]

  --outdir DIR  write the synthesized manifests into DIR (created if missing; an
                existing DIR must be empty). Default: a temp directory, removed at
                the end
  --keep        keep the consumer project (its path is printed)
  -h, --help    show this help

Environment: npm's own (npm_config_cache, registry); the npm cache makes warm runs fast.
EOF
}

OUTDIR=""
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --outdir)
      if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "run.sh: --outdir needs a directory" >&2
        usage >&2
        exit 2
      fi
      OUTDIR=$2
      shift 2
      ;;
    --outdir=?*) OUTDIR=${1#--outdir=}; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *)
      echo "run.sh: unknown argument: $1" >&2
      usage >&2
      exit 2
      ;;
  esac
done

if [ -n "$OUTDIR" ] && [ -e "$OUTDIR" ] && { [ ! -d "$OUTDIR" ] || [ -n "$(ls -A "$OUTDIR")" ]; }; then
  echo "run.sh: --outdir $OUTDIR exists and is not an empty directory" >&2
  usage >&2
  exit 2
fi
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "run.sh: '$tool' not found on PATH" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stepflow-consumer.XXXXXX")
WORK=$(cd "$WORK" && pwd -P)
trap 'if [ "$KEEP" = 1 ]; then echo "  consumer project kept in $WORK/app"; else rm -rf "$WORK"; fi' EXIT

PASSN=0
FAILN=0
pass() { PASSN=$((PASSN + 1)); echo "PASS: $*"; }
fail() { FAILN=$((FAILN + 1)); echo "FAIL: $*"; }
finish() {
  echo "  timing: $TIMES total $((SECONDS - T0))s"
  echo "$PASSN passed, $FAILN failed"
  [ "$FAILN" -eq 0 ]
  exit $?
}
TIMES=""
T0=$SECONDS
phase() { # phase NAME LOG CMD... : run CMD with its output in LOG; on failure show the log
  local name=$1 log=$2 t=$SECONDS rc=0
  shift 2
  "$@" >"$log" 2>&1 || rc=$?
  TIMES+="$name $((SECONDS - t))s, "
  if [ "$rc" -ne 0 ]; then
    sed 's/^/    /' "$log" | tail -n 60
    fail "$name: '$*' exited $rc"
    finish
  fi
}

echo "== consumer tier: the packed package in $WORK (outside $REPO)"
case "$WORK/" in
  "$REPO"/*) fail "project directory $WORK is inside the repository"; finish ;;
esac

# ------------------------------------------------- versions the app pins ----
if node - "$REPO/package.json" "$HERE/app/package.json" "$HERE/app/package-lock.json" >"$WORK/versions.log" 2>&1 <<'JS'; then
const fs = require('fs');
const [repo, app, lock] = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const bad = [];
for (const name of ['cdk8s', 'cdk8s-plus-30', 'constructs', 'typescript', '@types/node']) {
  const want = repo.devDependencies[name];
  const got = app.devDependencies[name];
  const locked = lock.packages[`node_modules/${name}`]?.version;
  if (got !== want || locked !== want) bad.push(`${name}: repo devDependencies ${want}, app package.json ${got}, app lock ${locked}`);
}
for (const name of Object.keys(repo.peerDependencies)) {
  if (!app.devDependencies[name]) bad.push(`${name}: a peer dependency of the kit the app does not install`);
}
if (bad.length) { console.log(bad.join('\n')); process.exit(1); }
console.log(Object.keys(app.devDependencies).map((n) => `${n}@${app.devDependencies[n]}`).join(' '));
JS
  pass "versions: the app pins the repository's devDependencies ($(cat "$WORK/versions.log"))"
else
  fail "versions: the app's pins differ from the repository's (update verify/consumer/app/package.json and run 'npm install --package-lock-only' there):"
  sed 's/^/    /' "$WORK/versions.log"
fi

# ------------------------------------------------------------------ pack ----
cd "$REPO"
phase pack "$WORK/pack.log" npm pack --pack-destination "$WORK"
shopt -s nullglob
TARBALLS=("$WORK"/*.tgz)
shopt -u nullglob
[ "${#TARBALLS[@]}" -eq 1 ] || { fail "pack: want one tarball in $WORK, found ${#TARBALLS[@]}"; finish; }
TARBALL=$(basename "${TARBALLS[0]}")
pass "pack: $TARBALL ($(du -k "$WORK/$TARBALL" | cut -f1) KiB)"

# --------------------------------------------------------------- install ----
mkdir -p "$WORK/app"
cp "$HERE/app/package.json" "$HERE/app/package-lock.json" "$HERE/app/tsconfig.json" "$WORK/app/"
cp -R "$HERE/app/src" "$WORK/app/src"
cd "$WORK/app"
NPM_FLAGS=(--no-audit --no-fund --prefer-offline --loglevel=error)
phase npm-ci "$WORK/npm-ci.log" npm ci "${NPM_FLAGS[@]}"
phase install-tarball "$WORK/npm-install.log" npm install --no-save "${NPM_FLAGS[@]}" "$WORK/$TARBALL"
# The tarball must not have moved any locked version (its peers are the app's).
if node - "$WORK/app/package-lock.json" >"$WORK/installed.log" 2>&1 <<'JS'; then
const fs = require('fs');
const lock = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const bad = [];
for (const [p, meta] of Object.entries(lock.packages)) {
  if (!p) continue;
  const installed = JSON.parse(fs.readFileSync(`${p}/package.json`, 'utf8')).version;
  if (installed !== meta.version) bad.push(`${p}: locked ${meta.version}, installed ${installed}`);
}
const kit = JSON.parse(fs.readFileSync('node_modules/@stepflow/deploy-kit/package.json', 'utf8'));
if (bad.length) { console.log(bad.join('\n')); process.exit(1); }
console.log(`@stepflow/deploy-kit@${kit.version}, ${Object.keys(lock.packages).length - 1} locked packages unchanged`);
JS
  pass "install: npm ci + the tarball: $(cat "$WORK/installed.log")"
else
  fail "install: the tarball changed locked versions:"
  sed 's/^/    /' "$WORK/installed.log"
fi

# --------------------------------------------------- compile, synth, assert --
phase tsc "$WORK/tsc.log" ./node_modules/.bin/tsc -p .
pass "compile: tsc -p . (strict, skipLibCheck off) on the app against the package's .d.ts"

OUT=${OUTDIR:-$WORK/out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
phase synth "$WORK/synth.log" node lib/main.js --outdir "$OUT"
sed 's/^/  /' "$WORK/synth.log"
pass "synth: $(cd "$OUT" && echo *.yaml) in $OUT"

t=$SECONDS
rc=0
node lib/assert.js "$OUT" >"$WORK/assert.log" 2>&1 || rc=$?
TIMES+="assert $((SECONDS - t))s, "
cat "$WORK/assert.log"
p=$(grep -c '^PASS: ' "$WORK/assert.log" || true)
f=$(grep -c '^FAIL: ' "$WORK/assert.log" || true)
PASSN=$((PASSN + p))
FAILN=$((FAILN + f))
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then fail "assert: exited $rc without a FAIL line (a crash, see above)"; fi
if [ "$p" -eq 0 ]; then fail "assert: asserted nothing"; fi
finish
