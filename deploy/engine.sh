# Sourced by deploy/images.sh and deploy/test/deploy_test.sh: a running Docker engine and
# the tools the deployment needs, on a fresh Debian machine too.
#   ensure_engine     install docker.io / docker-compose / debootstrap when missing (apt,
#                     as root), start dockerd when it does not answer
#   compose ARGS...   docker-compose 1.29, or the `docker compose` plugin where that exists

say() { printf '[deploy] %s\n' "$*"; }

# Debian's client speaks BuildKit only with buildx present; the classic builder needs neither.
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

ensure_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        say "missing: ${missing[*]} (install them: apt-get install -y ${missing[*]})"
        return 1
    fi
    say "installing ${missing[*]}"
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
}

ensure_engine() {
    ensure_packages || return 1
    docker info >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ]; then
        say "the Docker engine is not running and only root can start it here"
        return 1
    fi
    say "starting dockerd (log: /var/log/dockerd.log)"
    # Prefer local images for swarm services (no registry look-up per task).
    DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 nohup dockerd >/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    say "dockerd did not answer within 60 s; see /var/log/dockerd.log"
    return 1
}

compose() {
    if command -v docker-compose >/dev/null 2>&1; then
        docker-compose "$@"
    else
        docker compose "$@"
    fi
}
