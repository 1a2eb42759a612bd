# One image recipe for every Parley service; the build argument SERVICE picks which one.
#
#   docker build --build-arg SERVICE=rooms -t parley/rooms:dev .     (context: the repo root)
#   make images                                                      (all five, plus the base)
#
# BASE_IMAGE defaults to debian:bookworm-slim. Where no registry is reachable, `make images`
# creates an equivalent with debootstrap + `docker import` under that same name.
#
# Extra CA certificates (a corporate proxy, or a machine whose egress is intercepted): put
# *.crt files in deploy/ca-certs/ (empty by default; `make images` copies the ones named by
# PARLEY_EXTRA_CA_CERTS there). Only the build stage trusts them, for pip; the published
# image's final stage never contains them.
ARG BASE_IMAGE=debian:bookworm-slim

# ---- runtime: Python and the unprivileged user, shared by all five services (layer cache)
FROM ${BASE_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PARLEY_VAR_DIR=/app/var \
    PATH=/opt/parley/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 parley \
 && useradd --system --uid 10001 --gid parley --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin parley \
 && mkdir -p /app/var /etc/parley/jwt-public \
 && chown parley:parley /app/var

# ---- build: a virtualenv with the shared library and the one service
FROM runtime AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/ca-certs/ /usr/local/share/ca-certificates/parley-build/
RUN update-ca-certificates >/dev/null \
 && python3 -m venv /opt/parley \
 && /opt/parley/bin/pip install --no-cache-dir --quiet --upgrade pip
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
COPY common /src/common
# Every extra of the shared library first: one cached layer that all five services share, so
# a service's own layer below only adds its few extra packages.
RUN /opt/parley/bin/pip install --no-cache-dir --quiet '/src/common[asyncio,nameko,postgres]'
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build argument SERVICE is required (auth, rooms, gateway, logger, cleaner)" >&2; exit 1; }
COPY services/${SERVICE} /src/service
RUN /opt/parley/bin/pip install --no-cache-dir --quiet /src/common /src/service \
 && /opt/parley/bin/python -c "import parley_${SERVICE}" \
 && printf '#!/bin/sh\n# The container entrypoint: exec, so signals reach Python directly.\nexec /opt/parley/bin/python -m "parley_${PARLEY_SERVICE}" "$@"\n' \
      > /opt/parley/bin/parley-container \
 && chmod 755 /opt/parley/bin/parley-container

# ---- the published image: runtime + the virtualenv, nothing else
FROM runtime
ARG SERVICE
LABEL org.opencontainers.image.title="parley-${SERVICE}" \
      org.opencontainers.image.description="Parley ${SERVICE} service" \
      org.opencontainers.image.source="https://github.com/parley/parley"
COPY --from=build /opt/parley /opt/parley
ENV PARLEY_SERVICE=${SERVICE} \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
USER 10001:10001
EXPOSE 8080
# `python -m parley_<service> healthcheck` exits 0 when this container can do its job
# (the gateway: GET /healthz on its own listener), else 1. It starts a Python process that
# imports the service: give it time on a busy host (seconds of CPU on a loaded 2-core box).
HEALTHCHECK --interval=30s --timeout=30s --start-period=60s --retries=3 \
    CMD ["/opt/parley/bin/parley-container", "healthcheck"]
# Exec form through a tiny launcher: SIGTERM reaches Python directly (it execs, no shell).
# No arguments: the service's default (`run`: migrate under an advisory lock, then serve).
ENTRYPOINT ["/opt/parley/bin/parley-container"]
