#!/bin/sh
# distroless-rootfs.sh ROOT LIST: turns ROOT, which mmdebstrap --variant=extract made from the
# packages LIST names (with --skip=cleanup/apt/cache, so their .deb files are still in
# ROOT/var/cache/apt/archives), into the distroless python3-debian12 stand-in's root file
# system: keeps only the files of the listed packages (apt also extracted their
# dependencies: dpkg, debconf, python3 ...), drops apt's and dpkg's state, then adds what distroless's own build adds: the users root, nobody and
# nonroot (65532) with /home/nonroot, /tmp (1777), nsswitch.conf, the CA bundle built from
# ca-certificates' certificates, ld.so.cache, and the python/python3 links to python3.11.
set -eu
root=$1
list=$2
keep=$(grep -v '^#' "$list" | grep -v '^$')
for deb in "$root"/var/cache/apt/archives/*.deb; do
    pkg=$(dpkg-deb -f "$deb" Package)
    if ! printf '%s\n' "$keep" | grep -qx "$pkg"; then
        # Only files and links: directories may be shared with the packages kept.
        dpkg-deb --fsys-tarfile "$deb" | tar -t | while read -r f; do
            case "$f" in */) continue ;; esac
            p="$root/${f#./}"
            if [ -L "$p" ] || [ -f "$p" ]; then rm -f "$p"; fi
        done
    fi
done
for pkg in $keep; do
    ls "$root"/var/cache/apt/archives/"${pkg}"_*.deb >/dev/null 2>&1 ||
        { echo "distroless-customize: package $pkg was not downloaded" >&2; exit 1; }
done
# Empty directories left by the removed packages.
find "$root/usr" "$root/etc" "$root/var/lib" -depth -type d -empty -delete 2>/dev/null || true
rm -rf "$root/etc/apt" "$root/var/lib/apt" "$root/var/lib/dpkg" "$root/var/cache/apt" "$root/var/log" "$root/etc/dpkg"
mkdir -p "$root/etc/ssl/certs" "$root/home/nonroot" "$root/tmp" "$root/root"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
chown 65532:65532 "$root/home/nonroot"
chmod 0700 "$root/home/nonroot"
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
GROUP
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
ln -sf python3.11 "$root/usr/bin/python3"
ln -sf python3.11 "$root/usr/bin/python"
ldconfig -r "$root"
