# tests/deploy/apps.Dockerfile - the application containers of tests/deploy: an nginx TLS
# server, a curl client, a python3 ssl client. Three targets, each installing its own
# packages in its own layer, so every container maps a libssl file of its own (not the
# host's, not its neighbours'), as pods of different images do on a node.
#   podman build -f tests/deploy/apps.Dockerfile --target nginx -t localhost/ecv-test-nginx EMPTYDIR
FROM debian:bookworm-slim AS nginx
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["nginx", "-g", "daemon off;"]

FROM debian:bookworm-slim AS curl
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["curl"]

FROM debian:bookworm-slim AS python
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["python3"]
