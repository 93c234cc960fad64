#!/usr/bin/env bash
# verify:release -- the release flow with images pinned by digest (docs/deploying.md,
# "Releasing"), with the real parts: scripts/build.sh builds the three images with a real
# BuildKit, pushes them to the real registry at localhost:5000 and records each pushed
# image's digest in a lock file; the digest in the lock is the one the registry serves, a
# pull by it gets that image even after the tag moved on, and the kit's library, given the
# lock, synthesizes every image as repository@digest (the plain file and its Helm chart,
# rendered by real Helm), or fails naming an image the lock lacks. The registry, BuildKit
# and the stand-in base images are the images tier's (verify/lib/{registry,buildkit,images}.sh).
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: verify/release/run.sh [--keep] [-h|--help]

  --keep      keep the scratch directory (the lock, the build logs, the pulled images, the synth)
  -h, --help  show this help

Needs root (BuildKit's OCI worker). Installs what is missing: skopeo (Debian), BuildKit, runc
and Helm through verify/tools; the registry and the stand-in bases as verify/images does.
Environment: STEPFLOW_KIT_CACHE (default ~/.cache/stepflow-kit).
Exit: 0 when every check passed, 1 on a failed check, 2 on a usage error; the last line is
"N passed, M failed".
USAGE
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# the harness, the registry at localhost:5000, BuildKit, the kit's images
# shellcheck source=../lib/images.sh
. "$ROOT/verify/lib/images.sh"
harness_init_root release "BuildKit's OCI worker" "$@"

check() { # OK(0|1) CHECK OBJECT MESSAGE
  python3 -c 'import json, sys
print(json.dumps({"scenario": "release", "check": sys.argv[2], "object": sys.argv[3], "ok": sys.argv[1] == "1", "message": sys.argv[4]}))' "$@" >>"$RESULTS"
  if [[ $1 == 1 ]]; then echo "PASS: $2: $3" >&2; else echo "FAIL: $2: $3 -- $4" >&2; fi
}
yes_no() { if "$@"; then echo 1; else echo 0; fi; }
note() {
  python3 -c 'import json, sys; print(json.dumps({"scenario": "release", "note": sys.argv[1]}))' "$1" >>"$RESULTS"
  log "NOTE: $1"
}

# The whole run is one function: bash reads it completely before it starts, so an edit of
# this file during a run does not change the run.
main() {
  local t0=$SECONDS tag=release-check lock="$WORK/images.lock.json" c ref digest served
  local components=(core python-sdk inference)
  images_need_apt skopeo
  tools_install helm >&2
  [[ -f $ROOT/lib/src/index.js ]] || (cd "$ROOT" && npx --no-install tsc -p .)

  # --- build -> push -> lock ---------------------------------------------------------------------
  registry_start
  buildkit_start "$WORK/buildkit"
  images_standins || die "the stand-in base images could not be built"
  # The commit's date as the images' creation date: a rebuild of the same source is the same image.
  STEPFLOW_BUILD_DATE=$(TZ=UTC git -C "$ROOT" log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null ||
    echo 1970-01-01T00:00:00Z)
  export STEPFLOW_BUILD_DATE
  local t_build=$SECONDS build_rc=0
  images_build_dev_one all --tag "$tag" --lock "$lock" || build_rc=$?
  check "$([[ $build_rc == 0 ]] && echo 1 || echo 0)" "scripts/build.sh all --tag $tag --push --lock FILE exits 0" \
    "BUILDKIT_HOST=$BUILDKIT_HOST" "exit $build_rc: $(tail -15 "$IMAGES_BUILD_LOG")"
  note "scripts/build.sh all --push (BuildKit cache as the images tier left it): $((SECONDS - t_build)) s"
  [[ $build_rc == 0 ]] || return 0

  local refs=() expected=()
  for c in "${components[@]}"; do expected+=("localhost:5000/stepflow-$c:$tag"); done
  mapfile -t refs < <(python3 -c 'import json, sys; print("\n".join(sorted(json.load(open(sys.argv[1]))["images"])))' "$lock")
  local want
  want=$(printf '%s\n' "${expected[@]}" | sort)
  check "$([[ "$(printf '%s\n' "${refs[@]}")" == "$want" ]] && echo 1 || echo 0)" \
    "the lock holds exactly the pushed references" "$lock" "holds: ${refs[*]}; pushed: ${expected[*]}"
  declare -A LOCKED
  for c in "${components[@]}"; do
    ref="localhost:5000/stepflow-$c:$tag"
    digest=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["images"].get(sys.argv[2], {}).get("digest", ""))' "$lock" "$ref")
    LOCKED[$c]=$digest
    served=$(registry_digest "stepflow-$c" "$tag" || true)
    check "$([[ -n $digest && $digest == "$served" ]] && echo 1 || echo 0)" \
      "the digest in the lock is the one the registry serves for the tag" "$ref" "lock: ${digest:-none}, registry: ${served:-none}"
    check "$(yes_no grep -q "pushed $ref: $digest (recorded in $lock)" "$IMAGES_BUILD_LOG")" \
      "build.sh reports what it recorded" "$ref" "no 'pushed $ref: $digest' line in $IMAGES_BUILD_LOG"
  done

  # --- a pull by the digest gets that image ------------------------------------------------------
  local pulled version
  for c in "${components[@]}"; do
    ref="localhost:5000/stepflow-$c@${LOCKED[$c]}"
    if ! skopeo copy --quiet --src-tls-verify=false --preserve-digests "docker://$ref" "oci:$WORK/pulled:$c" 2>"$WORK/pull-$c.log"; then
      check 0 "a pull by the locked digest gets the image" "$ref" "$(tail -5 "$WORK/pull-$c.log")"
      continue
    fi
    pulled=$(python3 -c 'import json, sys; idx = json.load(open(sys.argv[1] + "/index.json")); print(next(m["digest"] for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]))' "$WORK/pulled" "$c")
    version=$(registry_label "stepflow-$c" "${LOCKED[$c]}" org.opencontainers.image.version || true)
    check "$([[ $pulled == "${LOCKED[$c]}" && $version == "$tag" ]] && echo 1 || echo 0)" \
      "a pull by the locked digest gets that image (every blob checked by skopeo)" "$ref" \
      "pulled manifest $pulled, label org.opencontainers.image.version '$version' (want ${LOCKED[$c]}, '$tag')"
  done

  # --- the tag moves on, the digest does not -------------------------------------------------------
  # python-sdk built again under the same tag with another creation date: another image.
  local moved_rc=0 moved created
  STEPFLOW_BUILD_DATE=2000-01-01T00:00:00Z images_build_dev_one python-sdk --tag "$tag" --lock "$WORK/moved.lock.json" || moved_rc=$?
  moved=$(registry_digest stepflow-python-sdk "$tag" || true)
  created=$(registry_label stepflow-python-sdk "${LOCKED[python-sdk]}" org.opencontainers.image.created || true)
  check "$([[ $moved_rc == 0 && -n $moved && $moved != "${LOCKED[python-sdk]}" && $created == "$STEPFLOW_BUILD_DATE" ]] && echo 1 || echo 0)" \
    "pushed again, the tag names another image; the locked digest still the first" "localhost:5000/stepflow-python-sdk:$tag" \
    "build exit $moved_rc; the tag now $moved, locked ${LOCKED[python-sdk]} (created '$created', want $STEPFLOW_BUILD_DATE)"

  # --- synth with the lock --------------------------------------------------------------------------
  local out="$WORK/synth" images bad=""
  if ! node "$HERE/pinned.mjs" "$lock" "$tag" "$out" >"$WORK/synth.log" 2>&1; then
    check 0 "the dev installation synthesizes with the lock" "$lock" "$(cat "$WORK/synth.log")"
  else
    images=$(grep -ho 'image: .*' "$out/dev.yaml" | sort -u)
    for c in "${components[@]}"; do
      grep -qx "image: localhost:5000/stepflow-$c@${LOCKED[$c]}" <<<"$images" || bad="$bad stepflow-$c"
    done
    check "$([[ -z $bad && $(wc -l <<<"$images") == 3 ]] && echo 1 || echo 0)" \
      "given the lock, the synthesized file pulls every image by its locked digest" "$out/dev.yaml" "images: $(tr '\n' ' ' <<<"$images"); not pinned:$bad"
    local rendered
    rendered=$("$(tool_bin helm helm)" template dev-stepflow "$out/helm/dev" --namespace stepflow-dev 2>"$WORK/helm.log" | grep -o 'image: .*' | sort -u || true)
    check "$([[ -n $rendered && $rendered == "$images" ]] && echo 1 || echo 0)" \
      "its Helm chart renders the same pinned images (helm template)" "$out/helm/dev" "helm: $(tr '\n' ' ' <<<"$rendered") $(cat "$WORK/helm.log")"
  fi
  python3 -c 'import json, sys
lock = json.load(open(sys.argv[1]))
del lock["images"][sys.argv[2]]
json.dump(lock, open(sys.argv[3], "w"))' "$lock" "localhost:5000/stepflow-inference:$tag" "$WORK/short.lock.json"
  local rc=0
  node "$HERE/pinned.mjs" "$WORK/short.lock.json" "$tag" "$WORK/synth-short" >"$WORK/synth-short.log" 2>&1 || rc=$?
  check "$([[ $rc == 1 ]] && grep -q "\[dev/Inference\] prop 'imageLock' is \"$WORK/short.lock.json\": has no digest for localhost:5000/stepflow-inference:$tag" "$WORK/synth-short.log" &&
    [[ ! -e $WORK/synth-short/dev.yaml ]] && echo 1 || echo 0)" \
    "an image the lock lacks fails the synth, naming it, and writes nothing" "$WORK/short.lock.json" "exit $rc: $(cat "$WORK/synth-short.log")"
  note "release flow: $((SECONDS - t0)) s"
}

main
harness_summary "release flow"
