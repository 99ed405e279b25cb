# syntax=docker/dockerfile:1
# credbridge's container image: built with Rust on Debian bookworm, run on distroless
# (glibc and CA certificates; no shell, no package manager) as a non-root user.
#
#   docker build -t credbridge .
#   docker run --rm -p 127.0.0.1:8080:8080 -e CREDBRIDGE_TOKEN=$(openssl rand -hex 32) credbridge
#
# Configuration: /etc/credbridge/credbridge.toml (config/container.toml: the memory backend
# on 0.0.0.0:8080) and CREDBRIDGE_* variables; mount your own file over it, or point
# CREDBRIDGE_CONFIG at one. The image sets no other CREDBRIDGE_* variable: one would
# override that key in every file (a Kubernetes ConfigMap's `listen`, say).

FROM rust:1.95-bookworm AS build
WORKDIR /src

# The dependencies, in a layer of their own: rebuilt only when a manifest or the lock file
# changes, not for every change to credbridge's code. Stub sources stand in for the real
# ones (and for the benchmark the manifest names, which the image never builds).
COPY Cargo.toml Cargo.lock ./
COPY adapters/Cargo.toml adapters/
RUN mkdir -p src adapters/src tests/bench \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs adapters/src/lib.rs \
    && cp src/main.rs tests/bench/read_path.rs \
    && cargo build --release --locked \
    && rm -rf src adapters/src

# credbridge itself. The crate roots are touched so that cargo, which compares modification
# times, never takes the stubs' build for a build of the real sources.
COPY adapters/src adapters/src
COPY src src
RUN touch src/main.rs src/lib.rs adapters/src/lib.rs \
    && cargo build --release --locked \
    && install -D -m 0755 target/release/credbridge /out/credbridge

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/credbridge /usr/local/bin/credbridge
COPY config/container.toml /etc/credbridge/credbridge.toml
ENV CREDBRIDGE_CONFIG=/etc/credbridge/credbridge.toml
# Numeric, so that Kubernetes' runAsNonRoot can verify it (distroless' "nonroot").
USER 65532:65532
EXPOSE 8080
# No shell or curl here: credbridge asks itself for /healthz on its configured address.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/credbridge", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/credbridge"]
CMD ["serve"]
