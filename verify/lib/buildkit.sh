# shellcheck shell=bash
# A BuildKit daemon for the tiers that build images (sourced after harness.sh and
# registry.sh): buildkitd and buildctl from the moby/buildkit module and runc from its
# module (verify/tools), the OCI worker, no containerd.
#
#   buildkit_start DIR   installs what is missing, writes DIR/buildkitd.toml and starts
#                        buildkitd with its state in DIR/root and its socket in DIR; exports
#                        BUILDKIT_HOST and puts buildctl first on PATH (scripts/build.sh calls
#                        it by name); stopped by the EXIT trap
#   buildkit_stop
#
# The daemon's configuration (buildkitd.toml):
#   - registry mirrors: docker.io and gcr.io resolve through localhost:5000 first, so the base
#     images the Containerfiles name (alpine, python, nvidia/cuda, gcr.io/distroless/...) come
#     from the stand-ins pushed there under the same names; the real registries are never
#     reached from here. localhost:5000 is spoken to in plain HTTP.
#   - RUN steps use the host's network namespace (networkMode host): they reach the package
#     mirrors (apt, PyPI) and the servers the tier starts on 127.0.0.1 (the registry, a local
#     package index), and nothing else exists to reach.
BUILDKITD_PID=""
BUILDKIT_DIR=""

buildkit_start() {
  BUILDKIT_DIR=$1
  local tools="$HARNESS_DIR/../tools" bindir runc logf
  "$tools/install.sh" buildkit runc >&2 || die "verify/tools/install.sh buildkit runc failed"
  bindir=$(tool_dir buildkit)
  runc=$(tool_bin runc runc)
  mkdir -p "$BUILDKIT_DIR/root"
  cat >"$BUILDKIT_DIR/buildkitd.toml" <<EOF
root = "$BUILDKIT_DIR/root"

[grpc]
  address = ["unix://$BUILDKIT_DIR/buildkitd.sock"]

[worker.oci]
  enabled = true
  binary = "$runc"
  snapshotter = "overlayfs"
  networkMode = "host"
  gc = false

[worker.containerd]
  enabled = false

[registry."docker.io"]
  mirrors = ["localhost:5000"]

[registry."gcr.io"]
  mirrors = ["localhost:5000"]

[registry."localhost:5000"]
  http = true
EOF
  logf="$BUILDKIT_DIR/buildkitd.log"
  # The registry's lock descriptor stays with the registry (closed for the daemon).
  if [[ -n ${REGISTRY_LOCK_FD:-} ]]; then
    "$bindir/buildkitd" --config "$BUILDKIT_DIR/buildkitd.toml" >"$logf" 2>&1 {REGISTRY_LOCK_FD}>&- &
  else
    "$bindir/buildkitd" --config "$BUILDKIT_DIR/buildkitd.toml" >"$logf" 2>&1 &
  fi
  BUILDKITD_PID=$!
  harness_on_exit buildkit_stop
  export BUILDKIT_HOST="unix://$BUILDKIT_DIR/buildkitd.sock"
  export PATH="$bindir:$PATH"

  for _ in $(seq 1 150); do
    buildctl debug workers >/dev/null 2>&1 && break
    kill -0 "$BUILDKITD_PID" 2>/dev/null || die "buildkitd exited: $(tail -5 "$logf")"
    sleep 0.2
  done
  buildctl debug workers >/dev/null 2>&1 || die "buildkitd does not answer on $BUILDKIT_HOST: $(tail -5 "$logf")"
  log "buildkitd $(tool_version buildkit) (pid $BUILDKITD_PID, OCI worker, runc $(tool_version runc)) on $BUILDKIT_HOST"
}

buildkit_stop() {
  [[ -n $BUILDKITD_PID ]] || return 0
  stop_pid "$BUILDKITD_PID"
  BUILDKITD_PID=""
  # Snapshots of a stopped daemon may still be mounted under its root.
  if [[ -n $BUILDKIT_DIR ]]; then
    grep -o " $BUILDKIT_DIR/root/[^ ]*" /proc/self/mounts 2>/dev/null | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
}
