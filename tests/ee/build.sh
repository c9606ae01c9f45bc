#!/bin/sh
# make ee: the collection's execution environment image, built offline on a fresh machine, as root.
#
# 1. Debian packages: podman, runc (crun refuses this kind of machine's cgroups) and debootstrap.
# 2. The base image, localhost/lambdalabs-cloud-ee-base:bookworm: Debian 12 (python3 with a virtual environment in
#    /opt/ee-python, the OpenSSH client, the machine's added certificate authorities), made with debootstrap from
#    the Debian mirror and imported into podman, as no container registry is reachable; kept between runs.
# 3. The image, localhost/lambdalabs-cloud-ee:latest: ansible-builder with tests/ee/execution-environment.yml and
#    the collection built from this checkout.
# Prints the image's size. Podman's settings are tests/ee/containers.conf (CONTAINERS_CONF); nothing else on the
# machine is configured.
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=$ROOT/.tmp/ee
BASE=localhost/lambdalabs-cloud-ee-base:bookworm
IMAGE=localhost/lambdalabs-cloud-ee:latest
export CONTAINERS_CONF="$ROOT/tests/ee/containers.conf"

say() { echo "ee: $*"; }

missing=""
command -v podman >/dev/null 2>&1 || missing="$missing podman"
command -v runc >/dev/null 2>&1 || missing="$missing runc"
command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
if [ -n "$missing" ]; then
    if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        say "needs${missing}: install them (as root, with apt-get)"
        exit 1
    fi
    say "installing${missing}"
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

mkdir -p "$WORK"
if ! podman image exists "$BASE"; then
    say "making the base image $BASE with debootstrap"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,openssh-client,ca-certificates \
        bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    # Debian keeps its system python from pip and ensurepip: the image's Python is a virtual environment.
    chroot "$WORK/rootfs" /usr/bin/python3 -m venv /opt/ee-python
    # The certificate authorities this machine added are trusted in the image too (pip reaches PyPI through them).
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
        cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/"
        chroot "$WORK/rootfs" update-ca-certificates >/dev/null
    fi
    install -m 0755 tests/ee/ee-apt "$WORK/rootfs/usr/local/bin/ee-apt"
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
    tar -C "$WORK/rootfs" -c . | podman import --quiet --change 'CMD ["/bin/bash"]' \
        --change 'ENV PATH=/opt/ee-python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' - "$BASE" >/dev/null
    rm -rf "$WORK/rootfs"
fi

say "building $IMAGE"
rm -rf "$WORK/definition" "$WORK/context"
mkdir -p "$WORK/definition"
cp tests/ee/execution-environment.yml "$WORK/definition/"
.venv/bin/ansible-galaxy collection build --force --output-path "$WORK/definition" . >/dev/null
mv "$WORK/definition"/lambdalabs-cloud-*.tar.gz "$WORK/definition/lambdalabs-cloud.tar.gz"
.venv/bin/ansible-builder build --file "$WORK/definition/execution-environment.yml" --context "$WORK/context" \
    --tag "$IMAGE" --container-runtime podman --extra-build-cli-args "--network host" \
    >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
say "$IMAGE is $((size / 1024 / 1024)) MiB"
