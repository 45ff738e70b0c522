# syntax=docker/dockerfile:1
# Multi-stage build: compile with the Rust toolchain, ship only the binary,
# the web client and a minimal Debian runtime.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so code changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
# jemalloc's build-time settings (see the file).
COPY .cargo ./.cargo
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY assets ./assets
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked \
    && strip target/release/chatwire

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home chatwire
COPY --from=build /src/target/release/chatwire /usr/local/bin/chatwire
COPY public /srv/chatwire/public
ENV HOST=0.0.0.0 \
    PORT=3000 \
    PUBLIC_DIR=/srv/chatwire/public \
    LOG_FORMAT=json \
    RUST_LOG=info
USER chatwire
EXPOSE 3000
# SIGTERM drains connections and exits 0 (see README, Operations).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/chatwire"]
