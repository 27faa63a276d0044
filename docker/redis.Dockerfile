# Redis for the compose demo, from the same base as the gateway (Debian's redis-server).
FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="lua-resty-autoscale-demo-redis" lua-resty-autoscale="demo"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
USER redis
EXPOSE 6379
HEALTHCHECK --interval=2s --timeout=2s --retries=10 CMD ["redis-cli", "ping"]
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
