# Build
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin caduceus

# Run
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/caduceus --create-home caduceus
COPY --from=build /src/target/release/caduceus /usr/local/bin/caduceus
COPY config /etc/caduceus/config
COPY connectors /etc/caduceus/connectors
COPY mappings /etc/caduceus/mappings
WORKDIR /etc/caduceus
USER caduceus
ENV CADUCEUS_DATA_DIR=/var/lib/caduceus
VOLUME ["/var/lib/caduceus"]
EXPOSE 2575 2577 8080
ENTRYPOINT ["caduceus"]
CMD ["serve", "--listen", "http=0.0.0.0:8080,mllp=0.0.0.0:2575,mllp-fhir=0.0.0.0:2577"]
