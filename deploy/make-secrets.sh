#!/usr/bin/env bash
# Create the secrets Parley's containers need, under deploy/secrets/ (git-ignored).
#
#   deploy/make-secrets.sh               create whatever is missing; never overwrites
#   deploy/make-secrets.sh --rotate-jwt  keep the current JWT public key as
#                                        jwt-public/<kid>.pem, then make a new signing key
#   deploy/make-secrets.sh --kid         print the key id of the current signing key
#
# Files (what reads them):
#   jwt-ed25519.pem        Ed25519 signing key       auth (JWT_PRIVATE_KEY_FILE)
#   jwt-public/<kid>.pem   retired public keys       auth (JWT_EXTRA_PUBLIC_KEYS_DIR)
#   auth_db_password       auth-db password          auth-db (POSTGRES_PASSWORD_FILE), auth
#   rooms_db_password      rooms-db password         rooms-db, rooms
#   logs_db_password       logs-db password          logs-db, logger
#   amqp_<svc>_password    broker user parley-<svc>  rabbitmq (deploy/rabbitmq-init.sh), <svc>
#                          for svc in auth rooms gateway logger cleaner
#   redis_password         the cache's password      cache, gateway, cleaner
#   grafana_admin_password Grafana's user admin      grafana (compose profile grafana only)
#
# Needs OpenSSL 1.1.1 or newer (Ed25519). The directory is private (0700); the files in
# it are 0644 because docker compose bind-mounts file secrets as they are, and the
# containers read them as unprivileged users (parley 10001, postgres, rabbitmq). Under
# Swarm the files are only the source of `docker secret create` (see deploy/README.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$here/secrets"
key="$dir/jwt-ed25519.pem"

umask 077
mkdir -p "$dir/jwt-public"
chmod 700 "$dir"
chmod 755 "$dir/jwt-public"

say() { printf '%s\n' "$*"; }

# Key id as the auth service computes it (parley_auth.keys.key_id): the first 16 hex
# digits of the SHA-256 of the raw 32-byte Ed25519 public key, which is the tail of
# the DER SubjectPublicKeyInfo.
kid_of() {
    openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | openssl dgst -sha256 -r | cut -c1-16
}

new_jwt_key() {
    local tmp="$key.tmp.$$"
    openssl genpkey -algorithm ed25519 -out "$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$key"
    say "created  $key (kid $(kid_of "$key"))"
}

random_secret() {  # URL-safe, so it can sit inside AMQP_URI / DATABASE_URL as is
    openssl rand -hex 24
}

write_file() {  # write_file PATH CONTENT: atomically, no trailing newline, mode 0644
    local tmp="$1.tmp.$$"
    printf '%s' "$2" > "$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$1"
    say "created  $1"
}

case "${1:-}" in
    --kid)
        [ -f "$key" ] || { say "no signing key yet: run $0" >&2; exit 1; }
        kid_of "$key"
        exit 0
        ;;
    --rotate-jwt)
        [ -f "$key" ] || { say "no signing key yet: run $0" >&2; exit 1; }
        old_kid="$(kid_of "$key")"
        openssl pkey -in "$key" -pubout -out "$dir/jwt-public/$old_kid.pem"
        chmod 644 "$dir/jwt-public/$old_kid.pem"
        say "kept     $dir/jwt-public/$old_kid.pem (still accepted)"
        new_jwt_key
        say ""
        say "Now recreate auth so it signs with the new key and serves both public keys:"
        say "  docker-compose -p parley up -d --no-deps --no-build --force-recreate auth"
        say "Delete jwt-public/$old_kid.pem once the longest token lifetime"
        say "(ACCESS_TOKEN_TTL_SECONDS, 15 minutes by default) has passed, and recreate auth again."
        exit 0
        ;;
    "") ;;
    *)
        say "usage: $0 [--rotate-jwt | --kid]" >&2
        exit 2
        ;;
esac

[ -f "$key" ] || new_jwt_key

for name in auth_db_password rooms_db_password logs_db_password; do
    [ -f "$dir/$name" ] || write_file "$dir/$name" "$(random_secret)"
done

# One broker user per service (deploy/rabbitmq-init.sh creates them at broker start with
# only that service's permissions), and the Redis password (cache, gateway, cleaner).
for service in auth rooms gateway logger cleaner; do
    [ -f "$dir/amqp_${service}_password" ] || write_file "$dir/amqp_${service}_password" "$(random_secret)"
done
[ -f "$dir/redis_password" ] || write_file "$dir/redis_password" "$(random_secret)"
[ -f "$dir/grafana_admin_password" ] || write_file "$dir/grafana_admin_password" "$(random_secret)"

say "secrets ready in $dir"
