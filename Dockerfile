# The skyfleet operator image: a static binary on a distroless base, run as non-root.
# Build: docker build -t ghcr.io/skyfleet/skyfleet:0.1.0 .
FROM rust:1.89-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY operator operator
COPY tests tests
RUN cargo build --release --locked -p skyfleet --bin skyfleet --target x86_64-unknown-linux-musl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/skyfleet /skyfleet
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/skyfleet"]
CMD ["operator"]
