# The oauth-server image: the release binary on Debian slim, run as a non-root user.
#
#   docker build -t oauth-server .
#   docker run -p 8080:8080 -v oauth-data:/data -e OAUTH_ISSUER=https://auth.example.com oauth-server
#
# docs/operations.md ("Container") says what this image sets and how to run it.

# The toolchain the workspace is tested with; the runtime image has the same Debian release.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p oauth-server \
    && install -D -m 0755 target/release/oauth-server /out/oauth-server

FROM debian:bookworm-slim
# ca-certificates: TLS to PostgreSQL and Redis; curl: the HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home oauth \
    && install -d -o oauth -g oauth -m 0700 /data
COPY --from=build /out/oauth-server /usr/local/bin/oauth-server

# SQLite (the default) keeps its database, and the key file of its key-encryption key, in
# /data: mount a volume there. With PostgreSQL set OAUTH_DATABASE_URL and
# OAUTH_KEY_ENCRYPTION_KEY (or OAUTH_KEY_ENCRYPTION_KEY_FILE) instead.
ENV OAUTH_BIND=0.0.0.0:8080 \
    OAUTH_DATABASE_URL=sqlite:///data/oauth.db \
    OAUTH_LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
USER oauth:oauth

# 8080: the API; 9464: /metrics, when OAUTH_METRICS_BIND=0.0.0.0:9464 is set.
EXPOSE 8080 9464
# /healthz: the process answers (restart when it does not). Route traffic on /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/oauth-server"]
CMD ["serve"]
