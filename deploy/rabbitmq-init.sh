#!/bin/sh
# RabbitMQ entrypoint for Parley (compose and swarm mount it; works with the official image
# and with the Debian-built one): one broker user per Parley service, its password from the
# secret /run/secrets/amqp_<service>_password, with only the permissions that service needs
# on vhost "/" (configure / write / read regexes over its own queues and exchanges). Loaded
# as boot-time definitions, so the users exist before the first client can connect; the
# default guest user is never created. The plugin rabbitmq_prometheus serves the broker's
# metrics on :15692 (busnet only; deploy/prometheus scrapes its per-queue depths).
#
# Names, from the code (see docs/internals.md, "Broker users"):
#   every process  declares parley.logs + logs.archive/logs.errors and publishes its logs
#   auth     nameko RPC server: nameko-rpc, rpc-auth; publishes auth.events
#   rooms    nameko RPC server: nameko-rpc, rpc-rooms; RpcProxy(auth) reply queue
#            rpc.reply-rooms-<uuid>; event handlers evt-auth-<type>--rooms.<method>;
#            publishes rooms.events
#   gateway  RPC client (reply queue rpc.reply-gateway-<key>), its exclusive event queue
#            gateway-events-<instance> bound to auth/rooms/presence.events; publishes presence
#   logger   consumes logs.archive and logs.errors; answers logger.query_logs (queue
#            rpc-logger bound to nameko-rpc, replies published to nameko-rpc)
#   cleaner  declares the event exchanges; publishes presence.events
set -eu

secrets=${PARLEY_SECRETS_DIR:-/run/secrets}
defs=${PARLEY_DEFINITIONS:-/tmp/parley-definitions.json}
conf=${PARLEY_RABBITMQ_CONF:-/tmp/parley-rabbitmq.conf}
plugins=${PARLEY_RABBITMQ_PLUGINS:-/tmp/parley-enabled-plugins}

# Log shipping, for everyone: declare the exchange and both log queues, bind them (write on
# the queues, read on the exchange), publish. Only the logger reads the queues.
LOGS='parley\\.logs|logs\\.archive|logs\\.errors'
LOGS_READ='parley\\.logs'
user_json() {  # user_json SERVICE CONFIGURE WRITE READ
    password="$(cat "$secrets/amqp_$1_password")"
    case "$password" in *[!A-Za-z0-9._~-]*) echo "amqp_$1_password: use [A-Za-z0-9._~-] only" >&2; exit 1;; esac
    users="$users${users:+,}{\"name\":\"parley-$1\",\"password\":\"$password\",\"tags\":\"\"}"
    perms="$perms${perms:+,}{\"user\":\"parley-$1\",\"vhost\":\"/\",\"configure\":\"^($2|$LOGS)\$\",\"write\":\"^($3|$LOGS)\$\",\"read\":\"^($4|$LOGS_READ)\$\"}"
}
users='' perms=''
user_json auth \
    'nameko-rpc|rpc-auth|auth\\.events' \
    'nameko-rpc|rpc-auth|auth\\.events' \
    'nameko-rpc|rpc-auth'
user_json rooms \
    'nameko-rpc|rpc-rooms|rooms\\.events|auth\\.events|rpc\\.reply-rooms-.+|evt-auth-.+--rooms\\..+' \
    'nameko-rpc|rpc-rooms|rooms\\.events|rpc\\.reply-rooms-.+|evt-auth-.+--rooms\\..+' \
    'nameko-rpc|rpc-rooms|auth\\.events|rpc\\.reply-rooms-.+|evt-auth-.+--rooms\\..+'
user_json gateway \
    'nameko-rpc|auth\\.events|rooms\\.events|presence\\.events|rpc\\.reply-gateway-.+|gateway-events-.+' \
    'nameko-rpc|presence\\.events|rpc\\.reply-gateway-.+|gateway-events-.+' \
    'nameko-rpc|auth\\.events|rooms\\.events|presence\\.events|rpc\\.reply-gateway-.+|gateway-events-.+'
user_json logger \
    'parley\\.logs|nameko-rpc|rpc-logger' \
    'parley\\.logs|nameko-rpc|rpc-logger' \
    'logs\\.archive|logs\\.errors|nameko-rpc|rpc-logger'
user_json cleaner \
    'auth\\.events|rooms\\.events|presence\\.events' \
    'presence\\.events' \
    'presence\\.events'

umask 077
printf '{"users":[%s],"vhosts":[{"name":"/"}],"permissions":[%s]}\n' "$users" "$perms" > "$defs"
cat > "$conf" <<CONF
load_definitions = $defs
listeners.tcp.default = 5672
loopback_users = none
prometheus.tcp.port = 15692
CONF
echo '[rabbitmq_prometheus].' > "$plugins"
if [ "$(id -u)" = 0 ]; then chown rabbitmq "$defs" "$conf" "$plugins"; fi
export RABBITMQ_CONFIG_FILE="$conf" RABBITMQ_ENABLED_PLUGINS_FILE="$plugins"

# Official image: its entrypoint drops to the rabbitmq user; the Debian-built one runs as it.
if command -v docker-entrypoint.sh >/dev/null 2>&1; then
    exec docker-entrypoint.sh rabbitmq-server
fi
exec rabbitmq-server
