# One image per service binary:
#   docker build --build-arg SERVICE=game-server -t game-server .
#
# The ECS task definition carries the health check ECS uses (ECS ignores a
# Dockerfile HEALTHCHECK); the one here is for `docker run` users.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
ARG SERVICE=game-server
WORKDIR /src
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package "${SERVICE}" --bin "${SERVICE}" \
    && install -D "target/release/${SERVICE}" /out/service

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/service /usr/local/bin/service
USER nonroot:nonroot
ENV GRPC_ADDR=0.0.0.0:5000 LOG_FORMAT=json
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/service", "health"]
ENTRYPOINT ["/usr/local/bin/service"]
CMD ["serve"]
