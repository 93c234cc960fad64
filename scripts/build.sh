#!/usr/bin/env bash
# Build the StepFlow container images with BuildKit (buildctl), one image per component.
# Names, ports, UIDs and StepFlow versions come from src/contract.json.
# Runs with macOS /bin/bash 3.2 as well as bash 5.
set -euo pipefail

PROG="build.sh"
readonly EXIT_LOCK=5 # pushed, but the digest could not be recorded
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/common.sh"

usage() {
    cat <<'USAGE'
usage: scripts/build.sh <core|python-sdk|inference|all> [options]

Builds containers/<component>/Containerfile with BuildKit (buildctl) and tags it
<registry>/<image>:<tag>, the image names in src/contract.json.

Options:
  --tag TAG             image tag (default: the generation's imageTag in
                        src/contract.json, the tag its production manifests pull,
                        e.g. 0.13.0)
  --dev                 build the "dev" target (shell and debugging tools); appends
                        -dev to the tag
  --push                push the image to the registry, and record the digest the
                        registry serves for it in the lock file (BuildKit's metadata,
                        buildctl --metadata-file)
  --lock FILE           the lock file --push records digests in (default:
                        images.lock.json in the repository); a chart given it pulls
                        every image by digest (ImageLock.fromFile)
  --registry REG        registry to tag (and push) for (default: $REGISTRY, else
                        localhost:5000)
  --platform P[,P...]   target platform(s): linux/amd64, linux/arm64 (default:
                        linux/amd64); several give a multi-platform image
  --no-cache            build without using any cache (the cache is still exported)
  --cache-dir DIR       local build cache directory (default:
                        ${STEPFLOW_KIT_CACHE:-$HOME/.cache/stepflow-kit}/buildkit)
  --cache-registry      keep the build cache in the registry instead, as
                        <registry>/<image>:buildcache
  --context DIR         build context (one component only). For core: a StepFlow
                        source checkout, stepflow-server is compiled from it; without
                        --context core takes the prebuilt binary of the pinned
                        stepflow-orchestrator release from PyPI. Defaults:
                        containers/python-sdk for python-sdk, containers/ for
                        inference (it ships python-sdk/stepflow_kit_worker too)
  --generation G        StepFlow generation in src/contract.json (default: its
                        defaultGeneration): its server/SDK versions, and for
                        python-sdk and inference the image's process (0.13: gRPC
                        pull worker loop, no port; 0.11: HTTP server)
  --build-arg NAME=VAL  add or override a build argument (repeatable), for example
                        --build-arg ALPINE_DIGEST=sha256:<hex>
  --dry-run             print the buildctl command(s), one line per image; run nothing
  -h, --help            show this help

Environment:
  BUILDKIT_HOST         BuildKit daemon address, passed as buildctl --addr
                        (scripts/dev.sh build sets it to the Lima VM's socket)
  REGISTRY              default registry (overridden by --registry)
  STEPFLOW_KIT_CACHE    cache root (default: $HOME/.cache/stepflow-kit)
  STEPFLOW_BUILD_DATE   org.opencontainers.image.created (default: now, UTC)
  STEPFLOW_VCS_REF      org.opencontainers.image.revision (default: git HEAD)
  STEPFLOW_IMAGE_SOURCE org.opencontainers.image.source (default: the Containerfile's)

Exit status: 0 built, 2 usage error, 3 buildctl missing, 4 BuildKit daemon not
reachable, 5 pushed, but no digest could be recorded in the lock file, otherwise
the status of the failing buildctl.
USAGE
}

usage_error() {
    err "$1"
    usage >&2
    exit "${EXIT_USAGE}"
}

# --- options -----------------------------------------------------------------
component=""
tag=""
dev=0
push=0
registry=""
platforms=""
no_cache=0
cache_dir=""
cache_registry=0
context=""
generation=""
dry_run=0
lock=""
extra_args=()

# need_value OPTION "$@" : the option's value must exist and not be another option.
need_value() {
    if [ "$#" -lt 2 ] || [ -z "$2" ] || [ "${2#--}" != "$2" ]; then
        usage_error "option $1 needs a value"
    fi
}

while [ "$#" -gt 0 ]; do
    case "$1" in
        -h | --help)
            usage
            exit 0
            ;;
        --tag | --registry | --platform | --cache-dir | --context | --generation | --build-arg | --lock)
            need_value "$@"
            opt="$1" value="$2"
            shift 2
            ;;
        --tag=* | --registry=* | --platform=* | --cache-dir=* | --context=* | --generation=* | --build-arg=* | --lock=*)
            opt="${1%%=*}" value="${1#*=}"
            [ -n "${value}" ] || usage_error "option ${opt} needs a value"
            shift
            ;;
        --dev) dev=1; shift; continue ;;
        --push) push=1; shift; continue ;;
        --no-cache) no_cache=1; shift; continue ;;
        --cache-registry) cache_registry=1; shift; continue ;;
        --dry-run) dry_run=1; shift; continue ;;
        -*) usage_error "unknown option: $1" ;;
        *)
            [ -z "${component}" ] || usage_error "unexpected argument: $1 (one component per call, or all)"
            component="$1"
            shift
            continue
            ;;
    esac
    case "${opt}" in
        --tag) tag="${value}" ;;
        --registry) registry="${value}" ;;
        --platform) platforms="${value}" ;;
        --cache-dir) cache_dir="${value}" ;;
        --context) context="${value}" ;;
        --generation) generation="${value}" ;;
        --lock) lock="${value}" ;;
        --build-arg)
            case "${value}" in
                [A-Za-z_]*=*) extra_args+=("${value}") ;;
                *) usage_error "--build-arg needs NAME=VALUE, got: ${value}" ;;
            esac
            ;;
    esac
done

[ -n "${component}" ] || usage_error "missing component (core, python-sdk, inference or all)"

load_contract

components=()
if [ "${component}" = "all" ]; then
    components=("${CONTRACT_COMPONENTS[@]}")
    [ -z "${context}" ] || usage_error "--context needs a single component, not all"
elif is_component "${component}"; then
    components=("${component}")
else
    usage_error "unknown component: ${component} (expected: ${CONTRACT_COMPONENTS[*]} or all)"
fi

# Defaults from the contract, then the environment, then the options.
generation="${generation:-$(contract defaultGeneration)}"
contract_has "generations.${generation}.orchestrator" ||
    usage_error "unknown generation: ${generation} (see generations in src/contract.json)"
# The tag the generation's production manifests pull (contract generations.G.imageTag).
tag="${tag:-$(contract "generations.${generation}.imageTag")}"
if [ "${dev}" = 1 ]; then
    tag="${tag}-$(contract images.devTag)"
fi
if ! [[ "${tag}" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
    usage_error "invalid tag: ${tag} (letters, digits, '_', '.', '-'; at most 128)"
fi
registry="${registry:-${REGISTRY:-$(contract images.defaultRegistry)}}"
registry="${registry%/}"
platforms="${platforms:-linux/amd64}"
old_ifs="${IFS}"
IFS=','
for p in ${platforms}; do
    case "${p}" in
        linux/amd64 | linux/arm64) ;;
        *)
            IFS="${old_ifs}"
            usage_error "unsupported platform: ${p} (linux/amd64, linux/arm64)"
            ;;
    esac
done
IFS="${old_ifs}"
if [ "${cache_registry}" = 1 ] && [ -n "${cache_dir}" ]; then
    usage_error "--cache-dir and --cache-registry exclude each other"
fi
cache_dir="${cache_dir:-${STEPFLOW_KIT_CACHE:-${HOME}/.cache/stepflow-kit}/buildkit}"
if [ -n "${lock}" ] && [ "${push}" = 0 ]; then
    usage_error "--lock records the digests of pushed images: add --push"
fi
lock="${lock:-${KIT_ROOT}/images.lock.json}"
[ -d "$(dirname "${lock}")" ] || usage_error "--lock: no such directory: $(dirname "${lock}")"
# BuildKit's metadata of each pushed image (buildctl --metadata-file), one file per image.
metadata_dir="${STEPFLOW_KIT_CACHE:-${HOME}/.cache/stepflow-kit}/build-metadata"
if [ -n "${context}" ]; then
    [ -d "${context}" ] || usage_error "--context: no such directory: ${context}"
    context="$(cd "${context}" && pwd)"
    if [ "${component}" = "core" ] && [ ! -f "${context}/stepflow-rs/Cargo.toml" ]; then
        usage_error "--context for core must be a StepFlow source checkout (no stepflow-rs/Cargo.toml in ${context})"
    fi
fi
target="runtime"
[ "${dev}" = 0 ] || target="dev"
build_date="${STEPFLOW_BUILD_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"

# --- the buildctl command of one component -------------------------------------
# build_command COMPONENT : sets the array CMD.
CMD=()
build_command() {
    local c="$1" image ctx revision server_source="" arg name
    image="$(contract "components.${c}.image")"
    ctx="${KIT_ROOT}/containers/${c}"
    # The inference image also ships the worker loop of containers/python-sdk.
    [ "${c}" != "inference" ] || ctx="${KIT_ROOT}/containers"
    ctx="${context:-${ctx}}"

    revision="${STEPFLOW_VCS_REF:-}"
    if [ -z "${revision}" ]; then
        revision="$(git -C "${ctx}" rev-parse HEAD 2>/dev/null || echo unknown)"
    fi

    local -a args=(
        "IMAGE_TITLE=${image}"
        "IMAGE_VERSION=${tag}"
        "IMAGE_REVISION=${revision}"
        "IMAGE_CREATED=${build_date}"
    )
    if [ -n "${STEPFLOW_IMAGE_SOURCE:-}" ]; then
        args+=("IMAGE_SOURCE=${STEPFLOW_IMAGE_SOURCE}")
    fi
    args+=(
        "STEPFLOW_PORT=$(contract "components.${c}.port")"
        "STEPFLOW_UID=$(contract "components.${c}.uid")"
        "STEPFLOW_GID=$(contract "components.${c}.gid")"
    )
    case "${c}" in
        core)
            if [ -n "${context}" ]; then server_source="source"; else server_source="release"; fi
            args+=(
                "STEPFLOW_ORCHESTRATOR_VERSION=$(contract "generations.${generation}.orchestrator")"
                "STEPFLOW_SERVER_SOURCE=${server_source}"
                "STEPFLOW_STATE_DIR=$(contract "components.core.state.mountPath")"
            )
            ;;
        python-sdk)
            args+=(
                "STEPFLOW_GENERATION=${generation}"
                "STEPFLOW_PY_VERSION=$(contract "generations.${generation}.sdk")"
                "STEPFLOW_PY_EXTRAS=$(contract "generations.${generation}.sdkExtras")"
                "STEPFLOW_KIT_HEARTBEAT_FILE=$(contract paths.heartbeat)"
            )
            ;;
        inference)
            args+=(
                "STEPFLOW_GENERATION=${generation}"
                "STEPFLOW_PY_VERSION=$(contract "generations.${generation}.sdk")"
                "STEPFLOW_PY_EXTRAS=$(contract "generations.${generation}.sdkExtras")"
                "STEPFLOW_KIT_HEARTBEAT_FILE=$(contract paths.heartbeat)"
                "MODEL_CACHE_DIR=$(contract paths.models)"
                "STEPFLOW_CACHE_DIR=$(contract paths.cache)"
            )
            ;;
    esac

    # --build-arg NAME=VALUE replaces a computed argument of the same NAME.
    local -a final=()
    for arg in "${args[@]}"; do
        name="${arg%%=*}"
        for extra in ${extra_args[@]+"${extra_args[@]}"}; do
            if [ "${extra%%=*}" = "${name}" ]; then
                arg=""
                break
            fi
        done
        [ -z "${arg}" ] || final+=("${arg}")
    done
    final+=(${extra_args[@]+"${extra_args[@]}"})

    CMD=(buildctl)
    if [ -n "${BUILDKIT_HOST:-}" ]; then
        CMD+=(--addr "${BUILDKIT_HOST}")
    fi
    CMD+=(
        build
        --frontend dockerfile.v0
        --local "context=${ctx}"
        --local "dockerfile=${KIT_ROOT}/containers/${c}"
        --opt filename=Containerfile
        --opt "target=${target}"
        --opt "platform=${platforms}"
    )
    for arg in "${final[@]}"; do
        CMD+=(--opt "build-arg:${arg}")
    done
    local push_value="false"
    [ "${push}" = 0 ] || push_value="true"
    CMD+=(--output "type=image,name=${registry}/${image}:${tag},push=${push_value}")
    [ "${push}" = 0 ] || CMD+=(--metadata-file "${metadata_dir}/${image}.json")
    if [ "${cache_registry}" = 1 ]; then
        CMD+=(--export-cache "type=registry,ref=${registry}/${image}:buildcache,mode=max")
        [ "${no_cache}" = 1 ] || CMD+=(--import-cache "type=registry,ref=${registry}/${image}:buildcache")
    else
        CMD+=(--export-cache "type=local,dest=${cache_dir}/${image},mode=max")
        # A local cache can only be imported once it exists (BuildKit fails on a
        # missing index.json).
        if [ "${no_cache}" = 0 ] && [ -f "${cache_dir}/${image}/index.json" ]; then
            CMD+=(--import-cache "type=local,src=${cache_dir}/${image}")
        fi
    fi
    [ "${no_cache}" = 0 ] || CMD+=(--no-cache)
}

# --- preflight: buildctl and a reachable daemon ----------------------------------
check_buildkit() {
    local inst="${LIMA_INSTANCE:-stepflow-dev}"
    if ! have buildctl; then
        die "${EXIT_PREREQ}" "buildctl (the BuildKit client) is not on PATH" \
            "macOS: brew install buildkit   (the client only; the daemon runs in the Lima VM:" \
            "       scripts/dev.sh start, then use scripts/dev.sh build ... or set BUILDKIT_HOST)" \
            "Linux: install BuildKit (buildctl + buildkitd) from your distribution or the" \
            "       moby/buildkit release archive, and start buildkitd" \
            "or run with --dry-run to print the commands"
    fi
    local -a probe=(buildctl)
    if [ -n "${BUILDKIT_HOST:-}" ]; then
        probe+=(--addr "${BUILDKIT_HOST}")
    fi
    local where="${BUILDKIT_HOST:-the default address unix:///run/buildkit/buildkitd.sock}"
    if ! "${probe[@]}" debug workers >/dev/null 2>&1; then
        die "${EXIT_UNREACHABLE}" "cannot reach the BuildKit daemon at ${where}" \
            "start the dev VM (it runs buildkitd): scripts/dev.sh start" \
            "then build through it: scripts/dev.sh build ${component} ..." \
            "or point BUILDKIT_HOST at it: export BUILDKIT_HOST=unix://\${LIMA_HOME:-\$HOME/.lima}/${inst}/sock/buildkitd.sock" \
            "on Linux with a local daemon: sudo systemctl start buildkit"
    fi
}

# --- the lock: the digest the registry serves for each pushed tag --------------------
# record_digest REFERENCE METADATA_FILE : read BuildKit's containerimage.digest and set
# images[REFERENCE] in the lock (lockVersion 1, keys sorted, written atomically).
record_digest() {
    # shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
    node -e '
        const fs = require("fs");
        const [lockFile, reference, metadataFile, platforms] = process.argv.slice(1);
        const fail = (m) => { process.stderr.write(m + "\n"); process.exit(1); };
        let metadata;
        try { metadata = JSON.parse(fs.readFileSync(metadataFile, "utf8")); }
        catch (e) { fail(`no BuildKit metadata for ${reference} in ${metadataFile}: ${e.message}`); }
        const digest = metadata["containerimage.digest"];
        if (typeof digest !== "string" || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
            fail(`BuildKit reported no image digest for ${reference} (containerimage.digest is ${JSON.stringify(digest)} in ${metadataFile})`);
        }
        let lock = { lockVersion: 1, images: {} };
        if (fs.existsSync(lockFile)) {
            try { lock = JSON.parse(fs.readFileSync(lockFile, "utf8")); }
            catch (e) { fail(`${lockFile} is not a lock file (${e.message}); move it away or choose another with --lock`); }
            if (lock.lockVersion !== 1 || typeof lock.images !== "object" || lock.images === null) {
                fail(`${lockFile} is not a lock file of lockVersion 1; move it away or choose another with --lock`);
            }
        }
        lock.images[reference] = { digest, platforms: platforms.split(",") };
        const images = Object.fromEntries(Object.keys(lock.images).sort().map((k) => [k, lock.images[k]]));
        const tmp = `${lockFile}.tmp-${process.pid}`;
        fs.writeFileSync(tmp, JSON.stringify({ lockVersion: 1, images }, null, 2) + "\n");
        fs.renameSync(tmp, lockFile);
        process.stdout.write(digest + "\n");
    ' "${lock}" "$1" "$2" "${platforms}"
}

if [ "${dry_run}" = 0 ]; then
    check_buildkit
    [ "${push}" = 0 ] || mkdir -p "${metadata_dir}"
fi

for c in "${components[@]}"; do
    build_command "${c}"
    if [ "${dry_run}" = 1 ]; then
        shell_quote "${CMD[@]}"
    else
        info "building ${c}: $(shell_quote "${CMD[@]}")"
        image="$(contract "components.${c}.image")"
        rm -f "${metadata_dir}/${image}.json"
        "${CMD[@]}" || {
            status=$?
            err "buildctl failed for ${c} (exit ${status})"
            exit "${status}"
        }
        if [ "${push}" = 1 ]; then
            reference="${registry}/${image}:${tag}"
            digest="$(record_digest "${reference}" "${metadata_dir}/${image}.json")" ||
                die "${EXIT_LOCK}" "${reference} was pushed, but its digest is not in ${lock}" \
                    "the lock keeps its previous entries; build and push again"
            info "pushed ${reference}: ${digest} (recorded in ${lock})"
        fi
    fi
done
