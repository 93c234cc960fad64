#!/usr/bin/env bash
# Proves that the cluster tier (run.sh) fails on broken manifests, and for the right
# reason. Synthesizes both generations afresh (node lib/main.js --generation 0.11 and
# --generation 0.13, each into a temp dir; compiles with tsc first if lib/main.js is
# missing), then for every case in mutations.json breaks one thing in the parsed
# objects (objects chosen by kind, name suffix and labels; fields by path), writes the
# file back and requires run.sh --dist on it to FAIL with failures matching the case's
# `expect`. The unmutated output, written back the same way, must pass. A case whose
# selector or path matches nothing in the output fails.
#
# usage: mutation-test.sh [--fast] [--versions v1.X.Y[,v1.X.Y...]] [--generation 0.11|0.13|shared|both|all]
#                         [--case NAME]... [--keep] [--list] [--dry-run]
#   --fast        the cases marked `fast` in mutations.json, on the first version of
#                 KUBERNETES_VERSIONS (verify/tools/versions.env) only, unless
#                 --versions is given: a few minutes
#   --versions    kube-apiserver versions (default: all of KUBERNETES_VERSIONS)
#   --generation  which synthesized output(s) to mutate (default: all): a generation,
#                 both generations, or `shared` (two production installations in one
#                 namespace, mutation-shared.mjs; its cases break their isolation)
#   --case        only the named case(s) (repeatable)
#   --keep        keep the work directory (manifests, mutated copies, run.sh logs)
#   --list        list the cases and exit
#   --dry-run     synthesize and apply the mutations, without run.sh: shows that
#                 every case still applies to the current output (seconds)
# Each mutated copy holds only the mutated file and is checked with run.sh
# --only-files (that file alone on an empty cluster), like the unmutated control.
# The last line is "N passed, M failed" (one per version x (unmutated generation |
# case x generation)); the exit status is 0 only when all passed, 2 on a usage error.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../tools/versions.env
. "$here/../tools/versions.env"

usage() { sed -n '11,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
version_list='^v1\.[0-9]+\.[0-9]+(,v1\.[0-9]+\.[0-9]+)*$'

fast=0
versions=
generations="0.11 0.13 shared"
keep=0
list=0
dry_run=0
cases=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --fast) fast=1; shift ;;
    --versions) [[ $# -ge 2 && $2 =~ $version_list ]] || usage; versions=${2//,/ }; shift 2 ;;
    --generation)
      [[ $# -ge 2 ]] || usage
      case $2 in 0.11|0.13|shared) generations=$2 ;; both) generations="0.11 0.13" ;; all) generations="0.11 0.13 shared" ;; *) usage ;; esac
      shift 2 ;;
    --case) [[ $# -ge 2 && -n $2 ]] || usage; cases+=("$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    --list) list=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage ;;
    *) echo "mutation-test.sh: unknown argument: $1" >&2; usage ;;
  esac
done
if [[ -z $versions ]]; then
  versions=$KUBERNETES_VERSIONS
  if [[ $fast -eq 1 ]]; then versions=${versions%% *}; fi
fi

node=${NODE:-node}
command -v "$node" >/dev/null || { echo "mutation-test.sh: '$node' not found" >&2; exit 2; }
args=(--versions "$versions" --generations "$generations")
[[ $fast -eq 1 ]] && args+=(--fast)
[[ $dry_run -eq 1 ]] && args+=(--dry-run)
for c in ${cases[@]+"${cases[@]}"}; do args+=(--case "$c"); done
if [[ $list -eq 1 ]]; then
  exec "$node" "$here/mutation-test.mjs" --work /nonexistent "${args[@]}" --list
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/stepflow-mutation.XXXXXX")
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  if [[ $keep -eq 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# run.sh and its checks from one snapshot for the whole run, so every case meets the
# same tier even if the working tree changes meanwhile
mkdir "$work/tier"
cp -R "$here" "$here/../lib" "$here/../tools" "$work/tier/"

cd "$root"
if [[ ! -f lib/main.js ]]; then
  echo "mutation-test.sh: lib/main.js missing, compiling (npx --no-install tsc -p .)" >&2
  npx --no-install tsc -p . || { echo "mutation-test.sh: compiling failed (run npm ci first?)"; echo "0 passed, 1 failed"; exit 1; }
fi
for g in $generations; do
  if [[ $g == shared ]]; then synth=("$here/mutation-shared.mjs"); else synth=(lib/main.js --generation "$g" --outdir); fi
  if ! "$node" "${synth[@]}" "$work/gen-$g" >"$work/synth-$g.log" 2>&1; then
    cat "$work/synth-$g.log"
    echo "mutation-test.sh: synthesizing generation $g failed"
    echo "0 passed, 1 failed"
    exit 1
  fi
done

rc=0
"$node" "$here/mutation-test.mjs" --work "$work" --tier "$work/tier/cluster" "${args[@]}" || rc=$?
exit "$rc"
