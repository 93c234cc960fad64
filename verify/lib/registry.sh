# shellcheck shell=bash
# The image registry at localhost:5000 that scripts/build.sh pushes to by default and
# dist/dev.yaml pulls from: Debian's docker-registry (distribution 2.8), unpacked from its
# package into the cache (no build, no system service), serving a data directory kept in the
# cache, so images pushed by one tier are there for the next (sourced after harness.sh).
#
#   registry_start         waits for the flock on $KIT_CACHE/.registry-5000.lock (held for as
#                          long as anything listens on localhost:5000), removes what no tag
#                          reaches any more (garbage-collect), then serves $REGISTRY_DATA on
#                          127.0.0.1:5000; stopped by the EXIT trap
#   registry_stop          stops it and releases the lock
#   registry_manifest REPO REF [FILE]
#                          GET the manifest REPO:REF (tag or digest) into FILE (default:
#                          stdout); fails when the registry has none
#   registry_digest REPO TAG
#                          the digest of the manifest the registry serves for REPO:TAG,
#                          computed from the bytes it returns (and equal to its
#                          Docker-Content-Digest header, else it fails)
#   registry_label REPO TAG LABEL
#                          the value of an image config label (empty when unset)
#
# REGISTRY_DATA (default $KIT_CACHE/registry-5000), REGISTRY_LOCK (default
# $KIT_CACHE/.registry-5000.lock: one per machine, so a run with a cache of its own, e.g. to
# measure a cold run, sets it to the shared one) and REGISTRY_LOCK_WAIT (seconds, default 3600:
# another tier's registry may be in use) can be set before sourcing.
REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_URL="http://$REGISTRY_ADDR"
REGISTRY_DATA=${REGISTRY_DATA:-$KIT_CACHE/registry-5000}
REGISTRY_LOCK=${REGISTRY_LOCK:-$KIT_CACHE/.registry-5000.lock}
REGISTRY_LOCK_WAIT=${REGISTRY_LOCK_WAIT:-3600}
REGISTRY_PID=""
REGISTRY_LOCK_FD=""
# Every manifest type an image build produces (single image, index, Docker and OCI).
REGISTRY_ACCEPT="application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.docker.distribution.manifest.v2+json"

# registry_bin: Debian's docker-registry binary, unpacked once into $KIT_CACHE/debs/.
registry_bin() {
  local deb version dir
  version=$(apt-cache policy docker-registry 2>/dev/null | sed -n 's/^ *Candidate: //p')
  if [[ -z $version || $version == "(none)" ]]; then
    [[ $(id -u) -eq 0 ]] || die "Debian's docker-registry is unknown to apt: run apt-get update as root"
    mkdir -p "$KIT_CACHE"
    DEBIAN_FRONTEND=noninteractive flock "$KIT_CACHE/.apt.lock" apt-get update -qq >&2
    version=$(apt-cache policy docker-registry | sed -n 's/^ *Candidate: //p')
    [[ -n $version && $version != "(none)" ]] || die "no docker-registry package in this machine's apt sources"
  fi
  dir="$KIT_CACHE/debs/docker-registry_$version"
  if [[ ! -x $dir/usr/bin/docker-registry ]]; then
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq "docker-registry=$version" >&2) ||
      { rm -rf "$tmp"; die "apt-get download docker-registry=$version failed"; }
    deb=$(echo "$tmp"/docker-registry_*.deb)
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    dpkg-deb -x "$deb" "$dir.tmp"
    rm -rf "$tmp" "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$dir/usr/bin/docker-registry"
}

registry_start() {
  local bin cfg logf waited=$SECONDS
  bin=$(registry_bin)
  mkdir -p "$KIT_CACHE" "$REGISTRY_DATA"
  mkdir -p "$(dirname "$REGISTRY_LOCK")"
  exec {REGISTRY_LOCK_FD}>>"$REGISTRY_LOCK"
  if ! flock -n "$REGISTRY_LOCK_FD"; then
    log "localhost:5000 is in use by another run (flock $REGISTRY_LOCK): waiting up to ${REGISTRY_LOCK_WAIT} s"
    flock -w "$REGISTRY_LOCK_WAIT" "$REGISTRY_LOCK_FD" ||
      die "localhost:5000 still in use after ${REGISTRY_LOCK_WAIT} s (flock $REGISTRY_LOCK)"
    log "localhost:5000 free after $((SECONDS - waited)) s"
  fi
  harness_on_exit registry_stop
  if (: <"/dev/tcp/127.0.0.1/5000") 2>/dev/null; then
    die "something listens on 127.0.0.1:5000 without holding $REGISTRY_LOCK: stop it first"
  fi
  cfg="$WORK/registry.yml"
  logf="$WORK/registry.log"
  cat >"$cfg" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REGISTRY_DATA
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  # Before it listens, under the lock: drop what no tag reaches any more (the layers of images
  # pushed again under the same tag), or the data directory grows with every rebuild.
  "$bin" garbage-collect --delete-untagged "$cfg" >"$WORK/registry-gc.log" 2>&1 ||
    log "registry garbage-collect failed (the data is kept): $(tail -3 "$WORK/registry-gc.log")"
  "$bin" serve "$cfg" >"$logf" 2>&1 &
  REGISTRY_PID=$!

  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$REGISTRY_URL/v2/" 2>/dev/null && break
    kill -0 "$REGISTRY_PID" 2>/dev/null || die "the registry exited: $(tail -5 "$logf")"
    sleep 0.1
  done
  curl -fsS -o /dev/null "$REGISTRY_URL/v2/" || die "the registry does not answer on $REGISTRY_URL: $(tail -5 "$logf")"
  log "registry $("$bin" --version 2>/dev/null | awk '{print $NF}') on localhost:5000 (pid $REGISTRY_PID), data $REGISTRY_DATA"
}

registry_stop() {
  if [[ -n $REGISTRY_PID ]]; then
    stop_pid "$REGISTRY_PID"
    REGISTRY_PID=""
  fi
  if [[ -n $REGISTRY_LOCK_FD ]]; then
    exec {REGISTRY_LOCK_FD}>&-
    REGISTRY_LOCK_FD=""
  fi
}

registry_manifest() { # REPO REF [FILE]
  curl -fsS -H "Accept: $REGISTRY_ACCEPT" -o "${3:-/dev/stdout}" "$REGISTRY_URL/v2/$1/manifests/$2"
}

registry_digest() { # REPO TAG
  local tmp headers body_digest header_digest
  tmp=$(mktemp -d)
  curl -fsS -H "Accept: $REGISTRY_ACCEPT" -D "$tmp/h" -o "$tmp/m" "$REGISTRY_URL/v2/$1/manifests/$2" ||
    { rm -rf "$tmp"; return 1; }
  headers=$(tr -d '\r' <"$tmp/h")
  header_digest=$(sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p' <<<"$headers")
  body_digest="sha256:$(sha256sum "$tmp/m" | cut -d' ' -f1)"
  rm -rf "$tmp"
  if [[ $header_digest != "$body_digest" ]]; then
    echo "registry_digest $1:$2: the registry says $header_digest, its bytes hash to $body_digest" >&2
    return 1
  fi
  echo "$body_digest"
}

registry_label() { # REPO TAG LABEL
  local config
  config=$(registry_manifest "$1" "$2" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("config", {}).get("digest", ""))') ||
    return 1
  [[ -n $config ]] || return 1
  curl -fsS "$REGISTRY_URL/v2/$1/blobs/$config" |
    python3 -c 'import json, sys; print((json.load(sys.stdin).get("config") or {}).get("Labels", {}).get(sys.argv[1], ""))' "$3"
}
