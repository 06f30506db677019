# syntax=docker/dockerfile:1
# waops container: a release build in `build`, a small Debian runtime in `runtime`.

# The toolchain is pinned so that the image builds the same way every time.
FROM rust:1.95-bookworm AS build
WORKDIR /app
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked && rm -rf src
COPY config ./config
COPY migrations ./migrations
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim AS runtime
# Nothing is installed: TLS roots are built into the binary (rustls + webpki
# roots) and the HEALTHCHECK is the binary itself, so the image needs no apt.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin waops \
    && mkdir -p /data /etc/waops \
    && chown waops:waops /data
COPY --from=build /app/target/release/waops /usr/local/bin/waops
USER waops
WORKDIR /data
ENV WAOPS__LOG__FORMAT=json \
    WAOPS__STORE__URL=sqlite:///data/waops.db \
    WAOPS__SERVER__BIND=0.0.0.0:8080
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 CMD ["waops", "healthcheck"]
ENTRYPOINT ["waops"]
CMD ["serve"]
