# shellcheck shell=bash
# What every shell tier shares (sourced): logging, the scratch directory and its cleanup,
# the results file and the closing summary. A tier only describes what it checks.
#
#   harness_init TIER         WORK (scratch directory), RESULTS (JSON lines), T_START; an
#                             EXIT trap runs the harness_on_exit commands (last added
#                             first), then removes WORK unless KEEP_LOGS=1
#   harness_on_exit CMD...    a command for that trap (stopping a server, a netns)
#   record_fail SCENARIO CHECK OBJECT MESSAGE [VERSION]
#                             a failed check the tier itself saw (the check scripts write
#                             their own rows into $RESULTS)
#   harness_simple_args ARG...
#                             the options of a tier that takes no others: --keep (keep
#                             WORK), -h/--help (the tier's usage function), anything else
#                             a usage error (exit 2)
#   harness_init_root TIER WHY ARG...
#                             harness_simple_args ARG..., harness_init TIER, and an exit
#                             unless run as root (WHY: what needs it)
#   require_tools TOOL...     exit 2 naming the first tool not on PATH
#   stop_pid PID              TERM, up to 10 s, then KILL
#   free_port                 a free TCP port on 127.0.0.1
#   harness_summary TITLE     "TITLE: N checks in S s", notes, failures with the
#                             program's own words, and "N passed, M failed" last; returns 1
#                             on any failure or when no check ran
# shellcheck source=../tools/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../tools/lib.sh"
HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HARNESS_TIER=${HARNESS_TIER:-verify}
KEEP_LOGS=${KEEP_LOGS:-0}
WORK=${WORK:-}
RESULTS=${RESULTS:-}
T_START=${T_START:-}
_harness_exit_cmds=()

log() { printf '[%s %s] %s\n' "$HARNESS_TIER" "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

require_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "$HARNESS_TIER: '$t' not found on PATH" >&2; exit 2; }
  done
}

stop_pid() { # stop_pid PID — TERM, wait up to 10 s, then KILL
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

harness_on_exit() { _harness_exit_cmds+=("$*"); }
harness_simple_args() {
  while [[ $# -gt 0 ]]; do
    case $1 in
      --keep) export KEEP_LOGS=1 ;;
      -h | --help) usage; exit 0 ;;
      *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
  done
}
harness_init_root() {
  local tier=$1 why=$2
  shift 2
  harness_simple_args "$@"
  harness_init "$tier"
  [[ $(id -u) -eq 0 ]] || die "must run as root ($why)"
}
_harness_cleanup() {
  local rc=$? i
  for ((i = ${#_harness_exit_cmds[@]} - 1; i >= 0; i--)); do eval "${_harness_exit_cmds[$i]}" || true; done
  if [[ -n $WORK && -d $WORK ]]; then
    if [[ $KEEP_LOGS == 1 ]]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}
harness_init() {
  HARNESS_TIER=$1
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/stepflow-$1.XXXXXX")
  RESULTS="$WORK/results.jsonl"
  : >"$RESULTS"
  T_START=$(date +%s)
  trap _harness_cleanup EXIT
  trap 'exit 130' INT TERM
}

record_fail() {
  python3 -c 'import json, sys
row = {"scenario": sys.argv[1], "check": sys.argv[2], "object": sys.argv[3], "ok": False, "message": sys.argv[4]}
if len(sys.argv) > 5: row["version"] = sys.argv[5]
print(json.dumps(row))' "$@" >>"$RESULTS"
  echo "FAIL: [${5:+$5 }$1] $2: $3" >&2
}

harness_summary() {
  python3 "$HARNESS_DIR/summary.py" "$1" "$RESULTS" "$(($(date +%s) - T_START))"
}
