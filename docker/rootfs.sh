#!/usr/bin/env bash
# Lays out the runtime image's whole filesystem in DIR from BINARY: the binary, the shared
# libraries it links and the dynamic loader (at the paths it expects), CA roots, an
# unprivileged user (uid 10001) and /tmp; /data, which that user must own, is laid out in
# DIR.owned/data for a `COPY --chown` of its own. Used by build-local.sh and by the
# Containerfile's build stage, so both images are the same.
#
#   docker/rootfs.sh BINARY DIR [--strip]
set -euo pipefail
# Readable by the image's user whatever the caller's umask.
umask 022
bin=${1:?usage: rootfs.sh BINARY DIR [--strip]}
root=${2:?usage: rootfs.sh BINARY DIR [--strip]}
ca=/etc/ssl/certs/ca-certificates.crt
[[ -f $ca ]] || { echo "rootfs.sh: no CA roots at $ca (apt-get install ca-certificates)" >&2; exit 1; }
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root.owned/data"
cp "$bin" "$root/usr/local/bin/leakwatch"
if [[ ${3:-} == --strip ]]; then
  strip --strip-debug "$root/usr/local/bin/leakwatch"
fi
deps=$(ldd "$bin" 2>&1) || deps=""   # a static binary: nothing to copy
if grep -q "not found" <<<"$deps"; then
  echo "rootfs.sh: $bin needs libraries this machine lacks:" >&2
  grep "not found" <<<"$deps" >&2
  exit 1
fi
libs=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$deps")
for lib in $libs; do
  cp --parents -L "$lib" "$root"
done
cp -L "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
echo "leakwatch:x:10001:10001:leakwatch:/data:/nonexistent" >"$root/etc/passwd"
echo "leakwatch:x:10001:" >"$root/etc/group"
chmod 1777 "$root/tmp"
