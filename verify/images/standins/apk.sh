#!/bin/sh
# /sbin/apk of the alpine:3.22 stand-in (verify/images/README.md): `apk add` of the packages
# the kit's Containerfiles name, and nothing else. Alpine's own package index cannot be
# reached from here; the stand-in repository is the image registry the tier runs at
# 127.0.0.1:5000, which holds each package as a one-layer image
# stepflow-standin/apk/<name>:<branch>, built for musl from Debian's source packages
# (verify/images/standins/Containerfile, stage apk-<name>). A package's layer is
# fetched, checked against its digest and unpacked over /.
#
#   apk add [--no-cache] [-q|--quiet] [-U|--update] PKG...
#
# Any other command, option or package fails with a message that says so.
set -eu

REGISTRY=http://127.0.0.1:5000
REPOSITORY=stepflow-standin/apk
BRANCH=3.22
ACCEPT="application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"

fail() {
    echo "ERROR: $*" >&2
    exit 1
}

[ "$#" -gt 0 ] || fail "usage: apk add [--no-cache] [-q|--quiet] [-U|--update] PKG... (the stand-in of verify/images has no other command)"
cmd=$1
shift
[ "$cmd" = add ] || fail "apk $cmd: the stand-in of verify/images only knows 'apk add'"

quiet=0
pkgs=""
for a in "$@"; do
    case "$a" in
        --no-cache | -U | --update) ;;
        -q | --quiet) quiet=1 ;;
        -*) fail "apk add $a: option unknown to the stand-in of verify/images" ;;
        *) pkgs="$pkgs $a" ;;
    esac
done
[ -n "$pkgs" ] || fail "apk add: no package named"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
# shellcheck disable=SC2086 # one package per word
set -- $pkgs
total=$#
for pkg in "$@"; do
    n=$((n + 1))
    if ! wget -q -O "$tmp/manifest" --header "Accept: $ACCEPT" \
        "$REGISTRY/v2/$REPOSITORY/$pkg/manifests/$BRANCH" 2>/dev/null; then
        fail "unable to select packages:
  $pkg (no such package in the stand-in repository $REGISTRY/$REPOSITORY, branch $BRANCH)"
    fi
    layers=$(tr -d ' \n\t' <"$tmp/manifest" | sed -n 's/.*"layers":\[\(.*\)\].*/\1/p' |
        grep -o '"digest":"sha256:[0-9a-f]*"' | sed 's/"digest":"//; s/"$//')
    [ -n "$layers" ] || fail "$pkg: the stand-in repository's manifest has no layers"
    [ "$quiet" = 1 ] || echo "($n/$total) Installing $pkg (stand-in, $REPOSITORY/$pkg:$BRANCH)"
    for d in $layers; do
        wget -q -O "$tmp/layer" "$REGISTRY/v2/$REPOSITORY/$pkg/blobs/$d" ||
            fail "$pkg: cannot fetch layer $d"
        echo "${d#sha256:}  $tmp/layer" | sha256sum -c -s ||
            fail "$pkg: layer $d does not match its digest"
        gunzip -c "$tmp/layer" | tar -x -C /
    done
    echo "$pkg" >>/etc/apk/world
done
[ "$quiet" = 1 ] || echo "OK: $total package(s) installed from the stand-in repository"
