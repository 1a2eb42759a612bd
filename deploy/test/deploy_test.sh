#!/usr/bin/env bash
# `make deploy-test`: Parley deployed as its users deploy it, checked end to end.
#
#  1. engine   install docker.io/docker-compose/debootstrap if missing, start dockerd
#  2. images   deploy/images.sh (base via debootstrap and Debian-built datastores offline;
#              layer cache and the base image are kept between runs)
#  3. compose  up --scale gateway=2 --scale rooms=2 --scale logger=2 --scale cleaner=2,
#              wait until every container is healthy
#  4. smoke    through the published port only (deploy/test/smoke.py): register, login, room,
#              two WebSockets on different gateways exchange messages, history; the logger
#              archive holds records from every service
#  5. segments connections that must fail (and a few that must work, so the probe is real),
#              only the load balancer publishes a port
#  6. kill     SIGKILL a rooms replica mid-stream (a crash): its restart policy brings it
#              back, nothing acknowledged is lost
#  7. upgrade  rolling upgrade of gateway and rooms to a new tag (the same image re-tagged
#              as upgrade-test) mid-stream: nothing acknowledged is lost, clients on a
#              replaced gateway reconnect
#  8. jwt key  rotation of the JWT signing key: old tokens and a live WebSocket keep working,
#              new tokens carry the new kid and work on every gateway; then the old key
#              is removed (deploy/secrets/ keeps the new key afterwards)
#  9. backups  pg_dump of each database (deploy/README.md, Backups), checked with pg_restore -l
# 10. swarm    one-node swarm, deploy/stack.yml, the same smoke; a rolling
#              `docker service update --image` of rooms mid-stream; `docker kill` of a rooms
#              task is replaced by the orchestrator
# Always at the end: compose down -v, stack rm (and its volumes), swarm leave --force.
#
# With DEPLOY_TEST_OBSERVABILITY=1 also Prometheus (deploy/prometheus): its image is built,
# compose runs the profile observability and the swarm stack.observability.yml, and after the
# smoke, again after the rolling upgrade (new containers), and in the swarm, Prometheus must
# scrape every gateway replica as up and ready, and RabbitMQ's per-queue metrics.
#
# Environment: PARLEY_PORT (8080), PY (the Python with aiohttp: .venv/bin/python),
# DEPLOY_TEST_SKIP_SWARM=1, DEPLOY_TEST_OBSERVABILITY=1, plus what deploy/images.sh reads
# (PARLEY_OFFLINE, ...).
set -uo pipefail
cd "$(dirname "$0")/../.."
. deploy/engine.sh

PORT=${PARLEY_PORT:-8080}
PY=${PY:-.venv/bin/python}
PROJECT=parley
BASE="http://127.0.0.1:$PORT"
SCALE=(--scale gateway=2 --scale rooms=2 --scale logger=2 --scale cleaner=2)
export PARLEY_PORT=$PORT
STARTED=$SECONDS
FAILED=""
SWARM_STARTED=""
REGISTRY=${PARLEY_REGISTRY:-parley}
UPGRADE_TAG=upgrade-test   # the rolling upgrade's "new version": the current images, re-tagged
RETIRED_KID=""             # the JWT key id the rotation retired, until its public key is removed
# smoke.py runs the mid-stream commands with /bin/sh: the compose client by name.
if command -v docker-compose >/dev/null 2>&1; then COMPOSE=docker-compose; else COMPOSE="docker compose"; fi
OBSERVABILITY=${DEPLOY_TEST_OBSERVABILITY:-0}
if [ "$OBSERVABILITY" = 1 ]; then
    # Every compose command, smoke.py's included, then sees the profile; images.sh builds it.
    export COMPOSE_PROFILES=observability PARLEY_OBSERVABILITY=1
fi

phase() { say "==== $* ($((SECONDS - STARTED)) s)"; }
fail() { say "FAIL: $*"; FAILED="${FAILED:-$*}"; }

cleanup() {
    phase "cleanup"
    compose -p "$PROJECT" down -v --remove-orphans >/dev/null 2>&1
    # A rotation that failed half-way: its retired key need not stay accepted.
    [ -z "$RETIRED_KID" ] || rm -f "deploy/secrets/jwt-public/$RETIRED_KID.pem"
    if [ -n "$SWARM_STARTED" ]; then
        docker stack rm "$PROJECT" >/dev/null 2>&1
        # `stack rm` returns at once; leaving the swarm before its tasks and overlay networks
        # are gone leaves stale swarm networks behind that only a dockerd restart clears.
        for _ in $(seq 1 60); do
            [ -z "$(docker ps -aq --filter label=com.docker.stack.namespace=$PROJECT)$(docker network ls -q --filter label=com.docker.stack.namespace=$PROJECT)" ] && break
            sleep 2
        done
        # `stack rm` keeps the stack's named volumes; they would be the next run's compose volumes.
        docker volume ls -q --filter label=com.docker.stack.namespace=$PROJECT | xargs -r docker volume rm >/dev/null 2>&1
        docker swarm leave --force >/dev/null 2>&1
    fi
    docker rmi "$REGISTRY/gateway:$UPGRADE_TAG" "$REGISTRY/rooms:$UPGRADE_TAG" >/dev/null 2>&1
    if [ -z "$FAILED" ]; then
        say "deploy-test PASS ($((SECONDS - STARTED)) s)"
    else
        say "deploy-test FAIL: $FAILED ($((SECONDS - STARTED)) s)"
        exit 1
    fi
}
trap cleanup EXIT
trap 'FAILED="${FAILED:-interrupted}"; exit 1' INT TERM

containers() {  # containers SERVICE: ids of the compose project's containers of SERVICE
    docker ps -q --filter "label=com.docker.compose.project=$PROJECT" \
                 --filter "label=com.docker.compose.service=$1"
}
first() { containers "$1" | head -n1; }
containers_all() { docker ps -q --filter "label=com.docker.compose.project=$PROJECT"; }
EXPECTED=15  # rabbitmq, cache, 3 databases, auth, lb + 2 each of gateway, rooms, logger, cleaner
[ "$OBSERVABILITY" = 1 ] && EXPECTED=16  # + prometheus
ips_of() {  # every address of a container, on every network it is on
    docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1"
}

wait_healthy() {  # wait_healthy SECONDS: every container of the project running and healthy
    local deadline=$((SECONDS + $1)) bad
    while :; do
        bad=$(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" \
                --format '{{.Names}} {{.Status}}' | grep -v '(healthy)' || true)
        # 6 single containers + 2 of each scaled service + lb
        [ -z "$bad" ] && [ "$(containers_all | wc -l)" -ge "$EXPECTED" ] && return 0
        # A container in a crash loop will not get better by waiting.
        local looping
        looping=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
                  | xargs docker inspect -f '{{.Name}} {{.RestartCount}}' | awk '$2 >= 3 {print $1}')
        if [ -n "$looping" ]; then
            say "restarting over and over: $looping"
            return 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            say "not healthy after $1 s:"; printf '  %s\n' "$bad"
            return 1
        fi
        sleep 3
    done
}

dump_logs() {
    say "last log lines of every container:"
    for c in $(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"); do
        echo "---- $(docker inspect -f '{{.Name}}' "$c")"
        docker logs --tail 15 "$c" 2>&1 | cut -c1-300
        docker inspect -f '{{if .State.Health}}health: {{range .State.Health.Log}}[{{.ExitCode}} {{.Output}}] {{end}}{{end}}' "$c" | cut -c1-600
    done
}

# probe FROM HOST PORT: 0 when a TCP connection from inside container FROM opens in 3 s.
# bash's /dev/tcp: every image here (official or Debian-built) has bash and timeout.
probe() {
    docker exec "$1" timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3" >/dev/null 2>&1
}

# The checks below print "ok ..." or "FAIL: ..." (they run in parallel, see check_segments).
must_reach() {  # must_reach FROM_SERVICE TARGET PORT   (control: the probe itself works)
    if probe "$(first "$1")" "$2" "$3"; then echo "ok   $1 -> $2:$3 connects (as it must)"
    else echo "FAIL: $1 cannot reach $2:$3, which it needs"; fi
}

must_not_reach() {  # must_not_reach FROM_SERVICE TARGET_SERVICE PORT: by name and every address
    local from target addr
    from=$(first "$1") target=$(first "$2")
    for addr in "$2" $(ips_of "$target"); do
        if probe "$from" "$addr" "$3"; then
            echo "FAIL: $1 can open a connection to $2 ($addr:$3)"
            return
        fi
    done
    echo "ok   $1 -/-> $2:$3 (by name and by each of its addresses)"
}

must_not_reach_outside() {  # must_not_reach_outside SERVICE: the internet (an address of the
    local from=$(first "$1")  # Debian mirror, resolved on the host) stays out of reach
    if probe "$from" "$OUTSIDE_ADDR" 80; then echo "FAIL: $1 reaches the outside ($OUTSIDE_ADDR:80)"
    else echo "ok   $1 -/-> outside ($OUTSIDE_ADDR:80)"; fi
}

segment_checks() {  # one check per line: FUNCTION ARGS...
    cat <<CHECKS
must_reach gateway rabbitmq 5672
must_reach gateway cache 6379
must_reach cleaner cache 6379
must_reach auth auth-db 5432
must_reach rooms rooms-db 5432
must_reach logger logs-db 5432
must_not_reach gateway auth-db 5432
must_not_reach gateway rooms-db 5432
must_not_reach gateway logs-db 5432
must_not_reach auth rooms-db 5432
must_not_reach auth logs-db 5432
must_not_reach auth cache 6379
must_not_reach rooms auth-db 5432
must_not_reach rooms logs-db 5432
must_not_reach rooms cache 6379
must_not_reach logger auth-db 5432
must_not_reach cleaner auth-db 5432
must_not_reach lb rabbitmq 5672
must_not_reach lb cache 6379
CHECKS
    # Datastores reach nothing outside their own segment.
    for db in auth-db rooms-db logs-db rabbitmq cache; do
        for other in auth-db:5432 rooms-db:5432 logs-db:5432 rabbitmq:5672 cache:6379 lb:8080; do
            [ "${other%%:*}" = "$db" ] || echo "must_not_reach $db ${other%%:*} ${other#*:}"
        done
        echo "must_not_reach_outside $db"
    done
}

check_segments() {
    OUTSIDE_ADDR=$(getent ahostsv4 deb.debian.org | awk 'NR==1{print $1}')
    OUTSIDE_ADDR=${OUTSIDE_ADDR:-1.1.1.1}
    if probe "$(first gateway)" "$OUTSIDE_ADDR" 80; then
        say "ok   gateway -> outside connects (control: frontnet has egress)"
    else
        say "note gateway cannot reach $OUTSIDE_ADDR:80 either (no egress from this machine?)"
    fi
    # A refused probe waits for its timeout: run them all at once.
    local dir n=0 check pids=()
    dir=$(mktemp -d)
    while read -r check; do
        n=$((n + 1))
        # shellcheck disable=SC2086
        $check > "$dir/$(printf %03d $n)" 2>&1 &
        pids+=($!)
    done < <(segment_checks)
    wait "${pids[@]}"   # only these: dockerd may be a child of this shell too
    cat "$dir"/* | sed 's/^/[deploy] /'
    if grep -qh '^FAIL' "$dir"/*; then fail "segmentation: $(grep -h '^FAIL' "$dir"/* | head -n1)"; fi
    rm -rf "$dir"
    local published
    published=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Label "com.docker.compose.service"}} {{.Ports}}' \
                | grep -- '->' | awk '{print $1}' | sort -u | tr '\n' ' ')
    local allowed="lb " also=""
    # The profile's Prometheus publishes on 127.0.0.1 only (docker-compose.yml).
    [ "$OBSERVABILITY" = 1 ] && allowed="lb prometheus " also=" (and prometheus, on 127.0.0.1)"
    if [ "$published" = "$allowed" ]; then say "ok   only lb publishes a port$also"
    else fail "services publishing ports: '$published' (only ${allowed% } may)"; fi
}

prom_instances() {  # prom_instances CONTAINER EXPR: the instance labels of the query's result
    docker exec "$1" promtool query instant http://127.0.0.1:9090 "$2" 2>/dev/null \
        | grep -o 'instance="[^"]*"' | cut -d'"' -f2 | sort -u
}

check_prometheus() {  # check_prometheus WHERE "FIND-PROMETHEUS" "FIND-GATEWAYS"
    # Every gateway container (the finders are commands printing container ids, re-run at each
    # try: replicas come and go) is a target found by DNS, scraped as up and ready; the broker's
    # per-queue metrics arrive (rpc-rooms has consumers). Scrapes and DNS refresh every 15 s.
    local where=$1 deadline=$((SECONDS + 150)) prom gateways scraped missing found c ip queues
    while :; do
        prom=$(eval "$2" | head -n1) gateways=$(eval "$3") scraped="" queues="" missing=""
        if [ -n "$prom" ]; then
            scraped=$(prom_instances "$prom" 'up{job="gateway"} == 1 and on (instance) parley_gateway_ready == 1')
            queues=$(prom_instances "$prom" 'rabbitmq_detailed_queue_consumers{queue="rpc-rooms"} > 0')
        fi
        for c in $gateways; do
            found=""
            for ip in $(ips_of "$c"); do grep -qxF "$ip:8080" <<<"$scraped" && found=1; done
            [ -n "$found" ] || missing="$missing $(docker inspect -f '{{.Name}}' "$c")"
        done
        [ -n "$prom" ] && [ -n "$gateways" ] && [ -z "$missing" ] && [ -n "$queues" ] && break
        if [ $SECONDS -ge $deadline ]; then
            fail "$where: Prometheus (${prom:-not running}) does not scrape as up and ready:${missing:- (every gateway ok)}${queues:+ (queues ok)}${queues:- and has no rabbitmq_detailed_queue_consumers of rpc-rooms}"
            [ -z "$prom" ] || docker exec "$prom" promtool query instant http://127.0.0.1:9090 up 2>&1 | sed 's/^/[deploy]   /'
            return
        fi
        sleep 5
    done
    say "ok   $where: Prometheus scrapes every gateway replica as up and ready ($(echo $scraped)) and the broker's queues"
}

check_archive() {  # every service's records reach the logger's archive
    local deadline=$((SECONDS + 60)) services
    while :; do
        services=$(docker exec "$(first logs-db)" psql -U parley_logs -d parley_logs -Atc \
                   "SELECT string_agg(DISTINCT service, ' ' ORDER BY service) FROM log_records" 2>&1)
        [ "$services" = "auth cleaner gateway logger rooms" ] && break
        if [ $SECONDS -ge $deadline ]; then
            fail "the log archive holds records from '$services', not from all five services"
            return
        fi
        sleep 3
    done
    say "ok   log archive holds records from: $services"
}

check_kill() {
    # A crash, as the kernel delivers it (OOM killer, segfault): SIGKILL to the container's
    # main process. (`docker kill` itself counts as an operator's stop to Docker 20.10, which
    # then leaves the container down whatever its restart policy; under Swarm `docker kill`
    # is fine: the orchestrator replaces the task, see deploy/README.md.)
    local victim before after deadline
    victim=$(first rooms)
    before=$(docker inspect -f '{{.RestartCount}}' "$victim")
    "$PY" deploy/test/smoke.py --base "$BASE" \
        --kill-during-stream "kill -KILL \$(docker inspect -f '{{.State.Pid}}' $victim)" \
        || { dump_logs; fail "messages through a killed rooms replica"; return; }
    deadline=$((SECONDS + 150))
    while :; do
        after=$(docker inspect -f '{{.RestartCount}} {{.State.Health.Status}}' "$victim")
        [ "${after%% *}" -gt "$before" ] && [ "${after#* }" = healthy ] && break
        if [ $SECONDS -ge $deadline ]; then
            fail "killed rooms container not back and healthy in 150 s (restarts, health: $after)"; return
        fi
        sleep 3
    done
    say "ok   killed rooms replica restarted by its restart policy (restarts: ${after%% *}) and healthy again"
}

tag_upgrade() {  # the "new version" of gateway and rooms: today's images under a new tag
    local service
    for service in gateway rooms; do
        docker tag "$REGISTRY/$service:${PARLEY_TAG:-dev}" "$REGISTRY/$service:$UPGRADE_TAG" || return 1
    done
}

check_upgrade() {  # deploy/README.md, Rolling upgrade (one host), while messages stream
    local images
    tag_upgrade || { fail "docker tag for the upgrade"; return; }
    "$PY" deploy/test/smoke.py --base "$BASE" --expect-reconnect --kill-during-stream \
        "PARLEY_TAG=$UPGRADE_TAG $COMPOSE -p $PROJECT up -d --no-deps --no-build --scale gateway=2 --scale rooms=2 gateway rooms" \
        || { dump_logs; fail "messages through a rolling upgrade"; return; }
    wait_healthy 180 || { dump_logs; fail "not healthy after the rolling upgrade"; return; }
    images=$(docker inspect -f '{{.Config.Image}}' $(containers gateway) $(containers rooms) | sort | uniq -c | tr -s ' \n' ' ')
    if [ "$images" = " 2 $REGISTRY/gateway:$UPGRADE_TAG 2 $REGISTRY/rooms:$UPGRADE_TAG " ]; then
        say "ok   gateway and rooms replaced by $UPGRADE_TAG replicas, all healthy"
    else
        fail "after the upgrade, gateway and rooms run:$images"
    fi
}

check_key_rotation() {  # deploy/README.md, The JWT signing key (one host)
    local recreate_auth="$COMPOSE -p $PROJECT up -d --no-deps --no-build --force-recreate auth"
    RETIRED_KID=$(deploy/make-secrets.sh --kid) || { fail "make-secrets.sh --kid"; return; }
    "$PY" deploy/test/smoke.py --base "$BASE" \
        --rotate-key "deploy/make-secrets.sh --rotate-jwt && $recreate_auth" \
        --retire-key "rm deploy/secrets/jwt-public/$RETIRED_KID.pem && $recreate_auth" \
        || { dump_logs; fail "JWT key rotation"; return; }
    RETIRED_KID=""
    say "ok   JWT key rotated to $(deploy/make-secrets.sh --kid); the old one retired and removed"
}

check_backups() {  # the backup commands of deploy/README.md: a dump of each database, readable
    local dir db tables
    dir=$(mktemp -d)
    for db in auth rooms logs; do
        if ! docker exec "$(first $db-db)" pg_dump -U parley_$db -Fc parley_$db > "$dir/$db.dump"; then
            fail "pg_dump of $db-db"; continue
        fi
        tables=$(docker exec -i "$(first $db-db)" pg_restore -l < "$dir/$db.dump" | grep -c ' TABLE ' || true)
        if [ "$tables" -gt 0 ]; then say "ok   backup of $db-db: $(wc -c < "$dir/$db.dump") bytes, $tables tables"
        else fail "the dump of $db-db lists no tables"; fi
    done
    rm -rf "$dir"
}

swarm_tasks() {  # swarm_tasks SERVICE: ids of the stack's running containers of SERVICE
    docker ps -q --filter "label=com.docker.swarm.service.name=${PROJECT}_$1"
}

swarm_kill_rooms() {  # under Swarm, `docker kill` of a task: the orchestrator replaces it
    local victim deadline healthy
    victim=$(docker ps -q --filter label=com.docker.swarm.service.name=${PROJECT}_rooms | head -n1)
    docker kill "$victim" >/dev/null
    deadline=$((SECONDS + 150))
    while :; do
        healthy=$(docker ps -q --filter label=com.docker.swarm.service.name=${PROJECT}_rooms \
                  --filter health=healthy | grep -vc "^$victim" || true)
        [ "$healthy" -ge 2 ] && break
        if [ $SECONDS -ge $deadline ]; then
            fail "swarm did not replace the killed rooms task in 150 s"; return
        fi
        sleep 3
    done
    say "ok   docker kill of a rooms task: swarm started a replacement, 2 rooms tasks healthy"
}

swarm_upgrade() {  # deploy/README.md, Rolling upgrade (swarm), while messages stream
    local state image
    tag_upgrade || { fail "docker tag for the upgrade"; return; }
    "$PY" deploy/test/smoke.py --base "$BASE" --kill-during-stream \
        "docker service update --detach=false --quiet --no-resolve-image --image $REGISTRY/rooms:$UPGRADE_TAG ${PROJECT}_rooms" \
        || { fail "messages through a swarm rolling upgrade"; return; }
    for _ in $(seq 1 60); do  # --detach=false returns on convergence; the state follows
        state=$(docker service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' ${PROJECT}_rooms)
        [ "$state" != updating ] && break
        sleep 3
    done
    image=$(docker service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' ${PROJECT}_rooms)
    if [ "$state" = completed ] && [ "${image%%@*}" = "$REGISTRY/rooms:$UPGRADE_TAG" ]; then
        say "ok   swarm rolling upgrade of rooms to $UPGRADE_TAG completed (start-first, one task at a time)"
    else
        fail "swarm update of rooms: state '$state', image '$image'"
    fi
}

swarm_test() {
    phase "swarm: one-node swarm, deploy/stack.yml"
    if ! docker info --format '{{.Swarm.LocalNodeState}}' | grep -qx active; then
        docker swarm init --advertise-addr 127.0.0.1 >/dev/null || { fail "swarm init"; return; }
    fi
    SWARM_STARTED=1
    local node; node=$(docker node ls -q --filter role=manager | head -n1)
    docker node update --label-add parley.edge=true --label-add parley.rabbitmq=true \
        --label-add parley.auth-db=true --label-add parley.rooms-db=true \
        --label-add parley.logs-db=true --label-add parley.prometheus=true "$node" >/dev/null
    local files=(-c stack.yml)
    [ "$OBSERVABILITY" = 1 ] && files+=(-c stack.observability.yml)
    (cd deploy && GATEWAY_REPLICAS=2 ROOMS_REPLICAS=2 LOGGER_REPLICAS=2 CLEANER_REPLICAS=2 \
        docker stack deploy --resolve-image never "${files[@]}" "$PROJECT") \
        || { fail "docker stack deploy"; return; }
    if "$PY" deploy/test/smoke.py --base "$BASE"; then
        say "ok   swarm smoke"
        [ "$OBSERVABILITY" = 1 ] && check_prometheus swarm "swarm_tasks prometheus" "swarm_tasks gateway"
        swarm_upgrade
        swarm_kill_rooms
    else
        fail "smoke on the swarm stack"
        docker service ls
        for s in $(docker service ls -q --filter "label=com.docker.stack.namespace=$PROJECT"); do
            docker service ps --no-trunc --format '{{.Name}} {{.CurrentState}} {{.Error}}' "$s" | head -n3
        done
    fi
}

phase "engine"
ensure_engine || { fail "no Docker engine"; exit 1; }
phase "secrets"
deploy/make-secrets.sh >/dev/null   # creates only what is missing, never overwrites
phase "images"
deploy/images.sh || { fail "make images"; exit 1; }

phase "compose up, scaled"
compose -p "$PROJECT" down -v --remove-orphans >/dev/null 2>&1
stale=$(docker network ls --filter "name=${PROJECT}_" --format '{{.Name}}' | tr '\n' ' ')
if [ -n "$stale" ]; then
    # Compose would reuse them (e.g. overlay networks left by an interrupted swarm run).
    say "networks left from an earlier run: $stale; removing them"
    docker network rm $stale >/dev/null 2>&1 || {
        fail "cannot remove $stale (stale swarm networks: restart dockerd)"; exit 1; }
fi
if ! compose -p "$PROJECT" up -d --no-build "${SCALE[@]}" >/tmp/parley-compose-up.log 2>&1; then
    grep -v '^Creating\|^Starting' /tmp/parley-compose-up.log; fail "compose up"; exit 1
fi
if ! wait_healthy 420; then
    dump_logs; fail "containers not healthy"; exit 1
fi
docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '  {{.Names}}\t{{.Status}}\t{{.Ports}}'

phase "smoke through the load balancer (port $PORT)"
"$PY" deploy/test/smoke.py --base "$BASE" || { dump_logs; fail "compose smoke"; exit 1; }
check_archive
[ "$OBSERVABILITY" = 1 ] && check_prometheus compose "first prometheus" "containers gateway"

phase "segmentation"
check_segments

phase "kill a rooms replica mid-stream"
check_kill

phase "rolling upgrade of gateway and rooms mid-stream"
check_upgrade

# New gateway containers (Docker may give them the old addresses): all scraped, up and ready.
[ "$OBSERVABILITY" = 1 ] && check_prometheus "compose, after the upgrade" "first prometheus" "containers gateway"

phase "JWT signing key rotation"
check_key_rotation

phase "backups"
check_backups
[ -z "$FAILED" ] || exit 1

phase "compose down -v"
compose -p "$PROJECT" down -v --remove-orphans >/dev/null 2>&1

if [ "${DEPLOY_TEST_SKIP_SWARM:-0}" != 1 ]; then
    swarm_test
fi
