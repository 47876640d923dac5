# syntax=docker/dockerfile:1
# driftwood in a container: built in the official Rust image, run from Debian slim as an
# unprivileged user. The forest picks its fastest walk at run time (AVX-512, AVX2 or
# portable), so one x86-64 image serves every CPU.
#
#   docker build -t driftwood .
#   docker run --rm driftwood run --check-config
#
# tests/deploy.rs checks this file against the code (user, port, health check, paths).

# Where the binary comes from (--build-arg BINARY=…): `compiled` (the default) builds it in
# the official Rust image; `prebuilt` takes one built outside, at prebuilt/driftwood in the
# context, for a builder that cannot pull rust:* (scripts/image.sh does so: no registry is
# reachable where it runs). Both are the same `cargo build` of the same sources; the
# prebuilt one must be linked against a glibc no newer than bookworm's.
ARG BINARY=compiled

FROM rust:1.95-bookworm AS compiled
WORKDIR /src
COPY . .
# librdkafka and OpenSSL are compiled from source by their crates (gcc, make and perl come
# with the image); zlib is linked from the system.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin driftwood \
    && cp target/release/driftwood /usr/local/bin/driftwood

FROM debian:bookworm-slim AS prebuilt
COPY prebuilt/driftwood /usr/local/bin/driftwood

# One of the two stages above, each from a pinned image (not a registry's image).
# hadolint ignore=DL3006
# checkov:skip=CKV_DOCKER_7:BINARY names a stage of this file, not an image to pull
FROM ${BINARY} AS build

FROM debian:bookworm-slim
# ca-certificates: TLS to brokers (librdkafka reads the system store). Not pinned (hadolint's
# DL3008): it must take Debian's updates to the CA list, and a pinned version leaves the
# mirror at the next point release, failing the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home driftwood
WORKDIR /app
COPY --from=build /usr/local/bin/driftwood /usr/local/bin/driftwood
# The bundled model and schemas are built into the binary; mount your own model and pass
# --model (DRIFTWOOD_MODEL) to serve another.
USER 10001
ENV DRIFTWOOD_HTTP_ADDR=0.0.0.0:9090 \
    DRIFTWOOD_LOG_FORMAT=json
EXPOSE 9090
# `driftwood healthcheck` asks the sidecar's /ready (a slim image has no curl).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["driftwood", "healthcheck"]
# SIGTERM (Docker's default stop signal) drains in-flight records and commits within
# DRIFTWOOD_SHUTDOWN_GRACE (20 s); give `docker stop` longer than that (`-t 30`).
ENTRYPOINT ["driftwood"]
CMD ["run"]
