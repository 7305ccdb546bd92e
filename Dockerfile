# syntax=docker/dockerfile:1
# Lever's container image: a static (musl) binary on distroless/static, as a non-root user.
# Build: docker buildx build --platform linux/amd64,linux/arm64 -t lever .
# The release workflow (.github/workflows/release.yml) builds and pushes it on tags.
# Your configuration (lever.toml, OWNERS) goes in /etc/lever: see docs/DEPLOY.md.

ARG RUST_VERSION=1.94

FROM rust:${RUST_VERSION}-alpine AS build
# musl-dev: the C runtime to link statically; cmake, perl, clang: aws-lc-rs (TLS) builds from C.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev cmake make perl clang
WORKDIR /src
COPY . .
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN cargo build --release --locked --bin lever \
 && install -m 0755 target/release/lever /lever \
 && mkdir -p /data /etc/lever

FROM gcr.io/distroless/static-debian12:nonroot
# distroless/static: CA certificates, /etc/passwd with nonroot (65532), no shell.
COPY --from=build /lever /lever
COPY --from=build --chown=65532:65532 /data /data
COPY --from=build /etc/lever /etc/lever
USER 65532:65532
ENV LEVER_LISTEN=0.0.0.0:8080 \
    LEVER_LOG_FORMAT=json \
    DATABASE_URL=sqlite:///data/lever.db
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/lever", "healthcheck"]
ENTRYPOINT ["/lever"]
CMD ["serve", "--config", "/etc/lever"]
