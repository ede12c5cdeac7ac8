# syntax=docker/dockerfile:1
# Profit Engine: one C binary. Two stages: build on debian:bookworm (the -dev packages the
# project's CMake build needs), run on debian:bookworm-slim with only the shared libraries.
#
#   docker build -t profit-engine .
#   docker run --rm -p 8080:8080 -e PE_DATABASE_URL=… -e PE_REDIS_URL=… profit-engine
#   docker compose up          (PostgreSQL 15 + pg_partman, Redis 7, migrate, serve)

# --- build -----------------------------------------------------------------------------------
FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config git ca-certificates \
      libmicrohttpd-dev libpq-dev libhiredis-dev libcjson-dev libgsl-dev libsodium-dev \
      libcurl4-openssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .git comes along (see .dockerignore) so that the binary reports its commit.
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build build -j

# --- runtime ---------------------------------------------------------------------------------
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# Runtime libraries of the -dev packages above (libgsl27 pulls libgslcblas0), CA roots for
# outgoing HTTPS webhooks, and curl for the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libmicrohttpd12 libpq5 libhiredis0.14 libcjson1 libgsl27 libsodium23 libcurl4 zlib1g \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 profit \
 && useradd --system --uid 10001 --gid profit --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin profit
COPY --from=build /src/build/profit-engine /usr/local/bin/profit-engine
USER 10001:10001
ENV PE_LISTEN=0.0.0.0:8080 \
    PE_LOG_LEVEL=info
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["profit-engine"]
CMD ["serve"]
