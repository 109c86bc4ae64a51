#!/usr/bin/env bash
# The local image the `--image` tests run in, made without a registry: a Debian 12 minbase root
# filesystem (debootstrap) imported into podman as localhost/keepout-test:bookworm.
#
# The image trusts this machine's certificate authorities (its /etc/ssl/certs bundle, which holds
# a TLS-inspecting egress proxy's where there is one), as a maintainer behind such a proxy builds
# their images; the bundle's digest names the tarball and labels the image, so a new bundle makes
# a new one.
#
# The root filesystem's tarball is kept in a cache outside the repository
# (KEEPOUT_TEST_IMAGE_CACHE, default /var/cache/keepout-test-image), so a rerun only imports it
# again (seconds) when the image is gone, and does nothing when it is there. Run as root; as
# another user it imports the cached tarball into that user's own (rootless) storage.
#
#   .ci/test-image.sh            # root's storage (builds the tarball when missing)
#   .ci/test-image.sh --print    # the tarball's path (for a rootless user's `podman import`)
set -euo pipefail
IMAGE=localhost/keepout-test:bookworm
CACHE=${KEEPOUT_TEST_IMAGE_CACHE:-/var/cache/keepout-test-image}
BUNDLE=/etc/ssl/certs/ca-certificates.crt
CA=$( { [ -r "$BUNDLE" ] && sha256sum "$BUNDLE" || echo none; } | cut -c1-12)
TARBALL=$CACHE/bookworm-minbase-ca-$CA.tar
PACKAGES=python3,python3-pip,python3-pytest,git,ca-certificates

if [ "${1:-}" = --print ]; then
    echo "$TARBALL"
    exit 0
fi
command -v podman >/dev/null || { echo "test-image: podman is not installed" >&2; exit 1; }
if podman image exists "$IMAGE"; then
    [ "$(podman image inspect --format '{{index .Labels "keepout.ca"}}' "$IMAGE")" = "$CA" ] && exit 0
    podman rmi --force "$IMAGE" >/dev/null
fi
if [ ! -s "$TARBALL" ]; then
    [ "$(id -u)" = 0 ] || { echo "test-image: $TARBALL is missing; run this as root once" >&2; exit 1; }
    command -v debootstrap >/dev/null || { echo "test-image: debootstrap is not installed" >&2; exit 1; }
    mkdir -p "$CACHE"
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs" "$TARBALL.part"' EXIT
    echo "test-image: debootstrap bookworm into $rootfs (about 2 minutes)" >&2
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    if [ -r "$BUNDLE" ]; then cp "$BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"; fi
    chmod 0755 "$rootfs" # mktemp's 0700 would become the image's / (no user but root could run)
    tar -C "$rootfs" -c . >"$TARBALL.part"
    rm -f "$CACHE"/bookworm-minbase*.tar # made for another bundle
    mv "$TARBALL.part" "$TARBALL"
    chmod 0644 "$TARBALL"
    chmod 0755 "$CACHE"
fi
podman import --quiet --change "LABEL keepout.ca=$CA" "$TARBALL" "$IMAGE" >/dev/null
echo "test-image: imported $IMAGE from $TARBALL" >&2
