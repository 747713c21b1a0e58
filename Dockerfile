# One image per service binary:
#   docker build --build-arg SERVICE=game-server -t game-server .
#   docker build --build-arg SERVICE=ranking -t ranking .
#
# Or, with the binary already built (a pipeline builds the workspace once;
# `provision deploy --binaries DIR` does this), packaging only, in seconds:
#   docker build --target prebuilt -f Dockerfile -t game-server DIR_WITH_A_FILE_NAMED_service
#
# The ECS task definition carries the health check ECS uses (ECS ignores a
# Dockerfile HEALTHCHECK); the one here is for `docker run` users.

ARG RUST_VERSION=1.95

# cargo-chef turns the manifests into a recipe, so the dependencies are
# built in a layer of their own that only changes with Cargo.toml/Cargo.lock.
FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
ARG SERVICE=game-server
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --package "${SERVICE}"
COPY . .
RUN cargo build --release --locked --package "${SERVICE}" --bin "${SERVICE}" \
    && install -D "target/release/${SERVICE}" /out/service

# distroless/cc: glibc, libgcc and CA certificates, no shell, a nonroot user.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS runtime
# distroless's nonroot user, by number so that the host can resolve it.
USER 65532:65532
ENV GRPC_ADDR=0.0.0.0:5000 LOG_FORMAT=json
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/service", "health"]
ENTRYPOINT ["/usr/local/bin/service"]
CMD ["serve"]

# A binary built outside (glibc-linked, for the image's architecture), from a
# context holding only it, named `service`.
FROM runtime AS prebuilt
COPY service /usr/local/bin/service

# The default: the binary built above.
FROM runtime
COPY --from=build /out/service /usr/local/bin/service
