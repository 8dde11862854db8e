#!/usr/bin/env bash
# Build the docker sandbox image without pulling from any registry: debootstrap a minimal Debian
# with python3 into a temp dir and pipe it into `docker import`. For CI and air-gapped hosts.
#
#   sandbox/build_image.sh [--force]
#   env: IMAGE (default rewardkit-sandbox:latest), SUITE (bookworm), MIRROR (http://deb.debian.org/debian)
#
# Needs root, debootstrap and a running docker engine; an existing image is kept unless --force.
set -euo pipefail

IMAGE="${IMAGE:-rewardkit-sandbox:latest}"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

if [[ "${1:-}" != "--force" ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "image $IMAGE already present"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; exit 1; }

ROOT="$(mktemp -d /var/tmp/rewardkit-rootfs.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT

debootstrap --variant=minbase --include=python3-minimal,libpython3-stdlib "$SUITE" "$ROOT" "$MIRROR"

# Trim what a sandbox never needs: package caches, docs, man pages, locales.
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* \
       "$ROOT"/usr/share/locale/* "$ROOT"/var/cache/debconf/*-old
mkdir -p "$ROOT/work"
chmod 1777 "$ROOT/work"

tar --numeric-owner -C "$ROOT" -c . | docker import \
    --change 'CMD ["/usr/bin/python3"]' \
    --change 'WORKDIR /work' \
    --change 'LABEL org.rewardkit.sandbox-image=1' \
    - "$IMAGE"
docker run --rm --network none "$IMAGE" python3 -c 'import sys; print("image ok:", sys.version.split()[0])'
