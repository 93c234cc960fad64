#!/usr/bin/env bash
# Proves that run.sh can fail, and fails for the right reason: runs it on the
# hand-made good samples (must pass) and on each deliberately broken variant
# listed in mutations.json (must fail, and its output must name the broken
# object / the reason).
#
# usage: mutation-test.sh [--versions v1.X.Y[,v1.X.Y...]] [--case NAME]... [--skip-good] [--keep]
#   --versions kube-apiserver versions to use (default: all in versions.env)
#   --case     run only the named mutation case(s)
#   --skip-good  do not run the good samples first
#   --keep     keep the work directory (mutated manifests and run.sh logs)
# The last line is "N passed, M failed" (one per version x (good sample set | mutation case)).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

versions=$K8S_VERSIONS_DEFAULT
cases=()
skip_good=0
keep=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --versions) [[ $# -ge 2 && $2 =~ ^v1\.[0-9]+\.[0-9]+(,v1\.[0-9]+\.[0-9]+)*$ ]] || usage; versions=${2//,/ }; shift 2 ;;
    --case) [[ $# -ge 2 ]] || usage; cases+=("$2"); shift 2 ;;
    --skip-good) skip_good=1; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/stepflow-mutation.XXXXXX")
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  if [[ $keep -eq 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

rc=0
python3 "$here/mutation_test.py" --here "$here" --work "$work" --versions "$versions" \
  --skip-good "$skip_good" ${cases[@]+"${cases[@]/#/--case=}"} || rc=$?
exit "$rc"
