# syntax=docker/dockerfile:1
#
# The Gatehouse image: one static binary (gateway, control plane and CLI) on an empty
# base. No shell, no package manager; runs as uid 1001; needs no writable path but the
# configuration backup directory (/apim/config) and /tmp, so the root filesystem can be
# mounted read-only (the Helm chart does). Ports: 8080 HTTP, 8081 HTTPS, 8082 admin
# (/healthz, /readyz, /metrics); the control plane listens on 8090.
#
#   docker build -t gatehouse:dev .
#   docker run --rm -p 8080:8080 -p 8082:8082 \
#     -e config.service.endpoint=https://control.example.com \
#     -e config.service.auth='GatewayKey edge&…' gatehouse:dev
#
# What the image relies on is checked in CI without building it (bash .ci/run, step
# `readonly`: deploy/readonly-run.sh runs the binary as uid 1001 with only those two
# paths writable).

ARG RUST_VERSION=1.94

FROM rust:${RUST_VERSION}-alpine AS build
# musl-dev: the C runtime ring's assembly links against; ca-certificates: copied into
# the image for https:// backends and control planes.
RUN apk add --no-cache musl-dev ca-certificates
WORKDIR /src
COPY . .
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gatehouse \
 && install -D -m 0755 target/release/gatehouse /rootfs/usr/local/bin/gatehouse
RUN install -d -m 1777 /rootfs/tmp \
 && install -d -m 0700 /backup/config \
 && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt

FROM scratch
COPY --from=build /rootfs/ /
# The backup directory is the gateway's own (COPY makes files root's otherwise).
COPY --from=build --chown=1001:1001 /backup/ /apim/
USER 1001:1001
# The admin listener on every interface, for the kubelet's probes (the binary's own
# default is loopback).
ENV GATEHOUSE_ADMIN_LISTEN=0.0.0.0:8082
EXPOSE 8080 8081 8082
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["gateway"]
