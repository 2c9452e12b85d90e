#!/usr/bin/env bash
# Builds leakwatch's runtime image from a binary built on this machine, without a registry:
# FROM scratch plus the binary, the shared libraries it links (and the dynamic loader), CA
# roots, and an unprivileged user (uid 10001). No shell, no package manager in the image.
#
#   docker/build-local.sh                                  # target/release/leakwatch
#   docker/build-local.sh --binary PATH --tag NAME:TAG
#   docker/build-local.sh --strip                          # drop the binary's debug info
#   CONTAINER_ENGINE=buildah docker/build-local.sh         # `buildah bud` instead of podman
#
# Build the binary first: cargo build --release -p leakwatch --no-default-features
# (without the demo feature, the synthetic testbed is not linked). Podman on Debian 12 needs
# --runtime runc and --cgroup-manager cgroupfs here; set PODMAN_FLAGS to change them.
set -euo pipefail
here=$PWD
cd "$(dirname "$0")/.."

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
bin=target/release/leakwatch
tag=localhost/leakwatch:local
strip=false
while [[ $# -gt 0 ]]; do
  case $1 in
    --binary) bin=${2:?--binary needs a path}; shift 2 ;;
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    --strip) strip=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-local.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $bin == /* ]] || [[ -e $bin ]] || bin=$here/$bin   # relative to where it was called
[[ -x $bin ]] || {
  echo "build-local.sh: no binary at $bin; build it with: cargo build --release -p leakwatch --no-default-features" >&2
  exit 1
}
engine=${CONTAINER_ENGINE:-podman}
command -v "$engine" >/dev/null || { echo "build-local.sh: $engine is not installed" >&2; exit 1; }
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
strip_flag=()
$strip && strip_flag=(--strip)
docker/rootfs.sh "$bin" "$ctx/rootfs" "${strip_flag[@]}"

# The same run stage as docker/Containerfile's.
cat >"$ctx/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY rootfs/ /
COPY --chown=10001:10001 rootfs.owned/ /
USER 10001:10001
ENV LEAKWATCH_DATA_DIR=/data HOME=/data SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /data
VOLUME /data
EXPOSE 9100
ENTRYPOINT ["/usr/local/bin/leakwatch"]
CMD ["--help"]
CONTAINERFILE

case $engine in
  podman)
    read -r -a flags <<<"${PODMAN_FLAGS---runtime runc --cgroup-manager cgroupfs}"
    podman "${flags[@]}" build --quiet -t "$tag" "$ctx" >/dev/null ;;
  buildah) buildah bud --quiet -t "$tag" "$ctx" >/dev/null ;;
  docker) docker build --quiet -t "$tag" "$ctx" >/dev/null ;;
  *) echo "build-local.sh: CONTAINER_ENGINE must be podman, buildah or docker" >&2; exit 2 ;;
esac
echo "$tag"
