#!/usr/bin/env bash
# `make images`: every image the compose file and the Swarm stack use, built locally.
#
#   parley/{auth,rooms,gateway,logger,cleaner}:$PARLEY_TAG   the one Dockerfile, SERVICE=<name>
#   parley/postgres:15, parley/redis:7, parley/rabbitmq:3.10, parley/haproxy:2.6
#       online: the official images (postgres:15-bookworm, redis:7-bookworm, rabbitmq:3.10,
#               haproxy:2.6), pulled and tagged under these names, unchanged
#       offline (PARLEY_OFFLINE=1, or when a pull fails): built from Debian's packages
#               (deploy/images/<name>/Dockerfile) on the base image
#   parley/prometheus:2    only when named (`deploy/images.sh prometheus`) or with
#                          PARLEY_OBSERVABILITY=1: the official prom/prometheus, or built
#                          from Debian's package (deploy/images/prometheus) offline
#   debian:bookworm-slim   pulled, or (offline) made with debootstrap + `docker import`;
#                          kept, so later runs skip this step
#
# `deploy/images.sh rabbitmq redis` builds only the named datastore images (and the base):
# what `make run` uses to start a missing broker or cache as a container.
#
# Environment: PARLEY_OFFLINE (1 / 0 / unset = detect), PARLEY_REGISTRY (parley),
# PARLEY_TAG (dev), BASE_IMAGE (debian:bookworm-slim), DEBIAN_MIRROR (the one apt uses),
# PARLEY_EXTRA_CA_CERTS: a directory of *.crt or one file trusted by the build stage only
# (default: /usr/local/share/ca-certificates, what this machine added to its own trust;
# set it empty for none).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/engine.sh

REGISTRY=${PARLEY_REGISTRY:-parley}
TAG=${PARLEY_TAG:-dev}
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
OFFLINE=${PARLEY_OFFLINE:-}
EXTRA_CA=${PARLEY_EXTRA_CA_CERTS-/usr/local/share/ca-certificates}
SERVICES=(auth rooms gateway logger cleaner)
# name:tag we use = official image to pull (online) | deploy/images/<dir> (offline)
INFRA=("postgres:15=postgres:15-bookworm" "redis:7=redis:7-bookworm"
       "rabbitmq:3.10=rabbitmq:3.10" "haproxy:2.6=haproxy:2.6")
# For the compose profile `observability` only (deploy/README.md, "Metrics and alerts").
OBSERVABILITY=("prometheus:2=prom/prometheus:v2.53.2")

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

try_pull() {  # a registry that does not answer must not hang the build
    [ "$OFFLINE" = 1 ] && return 1
    if timeout 120 docker pull -q "$1" >/dev/null 2>&1; then return 0; fi
    say "cannot pull $1: building offline from Debian packages from here on"
    OFFLINE=1
    return 1
}

debian_mirror() {
    [ -n "${DEBIAN_MIRROR:-}" ] && { echo "$DEBIAN_MIRROR"; return; }
    # The first Debian (not -security) source apt uses, deb822 or one-line format.
    local uri
    uri=$(grep -rhsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ \
          | grep -v security | grep -oE 'https?://[^ ]*/debian/?' | head -n1 || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

make_base() {
    have_image "$BASE_IMAGE" && return 0
    try_pull "$BASE_IMAGE" && return 0
    local root mirror
    mirror=$(debian_mirror)
    root=$(mktemp -d /var/tmp/parley-debootstrap.XXXXXX)
    say "creating $BASE_IMAGE with debootstrap from $mirror (about a minute)"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
        || { tail -n 20 "$root.log"; rm -rf "$root"; return 1; }
    # Like the official slim image: no apt caches, no docs; apt sources from the same mirror.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/*
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" > "$root/etc/apt/sources.list"
    tar -C "$root" -c . | docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
    rm -rf "$root" "$root.log"
}

stage_ca_certs() {
    find deploy/ca-certs -name '*.crt' -delete
    [ -n "$EXTRA_CA" ] || return 0
    if [ -d "$EXTRA_CA" ]; then
        find "$EXTRA_CA" -name '*.crt' -exec cp {} deploy/ca-certs/ \;
    elif [ -f "$EXTRA_CA" ]; then
        cp "$EXTRA_CA" deploy/ca-certs/extra.crt
    fi
    local n; n=$(find deploy/ca-certs -name '*.crt' | wc -l)
    [ "$n" -gt 0 ] && say "build stage trusts $n extra CA certificate(s) from $EXTRA_CA"
    return 0
}

build() {  # build TAG DOCKERFILE CONTEXT [ARGS...]
    local tag=$1 file=$2 context=$3; shift 3
    local started=$SECONDS
    local log; log=$(mktemp /tmp/parley-build.XXXXXX)
    docker build -f "$file" --build-arg BASE_IMAGE="$BASE_IMAGE" "$@" -t "$tag" "$context" >"$log" 2>&1 \
        || { tail -n 40 "$log"; say "building $tag failed (log: $log)"; return 1; }
    rm -f "$log"
    say "built $tag ($((SECONDS - started)) s)"
}

ONLY=" $* "
if [ "${PARLEY_OBSERVABILITY:-0}" = 1 ] || [[ "$ONLY" == *" prometheus "* ]]; then
    INFRA+=("${OBSERVABILITY[@]}")
fi
ensure_engine
make_base
stage_ca_certs
for entry in "${INFRA[@]}"; do
    ours=${entry%%=*} official=${entry#*=}
    [ "$ONLY" = "  " ] || [[ "$ONLY" == *" ${ours%%:*} "* ]] || continue
    if try_pull "$official"; then
        docker tag "$official" "parley/$ours"
        say "using the official $official as parley/$ours"
    else
        build "parley/$ours" "deploy/images/${ours%%:*}/Dockerfile" "deploy/images/${ours%%:*}"
    fi
done
[ "$ONLY" = "  " ] || exit 0
for service in "${SERVICES[@]}"; do
    build "$REGISTRY/$service:$TAG" Dockerfile . --build-arg SERVICE="$service"
done
say "images ready (${OFFLINE:+offline, }tag $TAG)"
