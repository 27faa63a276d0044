# lua-resty-autoscale as a perimeter gateway: Debian's nginx + lua-nginx-module and the compiled Lua.
#   docker build -t lua-resty-autoscale .
#   docker run -v $PWD/autoscale.json:/etc/autoscale/autoscale.json:ro -p 8080:8080 lua-resty-autoscale
# See docs/install.md (environment variables, modes, signals).

# --- build: compile the TypeScript to Lua (Debian's Node 18 and npm are enough for tsc + tstl).
FROM debian:bookworm-slim AS build
LABEL lua-resty-autoscale="build"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# EXTRA_CA_CERTS: PEM text of extra CAs for a TLS-intercepting proxy in front of the npm registry
# (build stage only; nothing of it reaches the final image).
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then printf '%s\n' "$EXTRA_CA_CERTS" >/tmp/extra-ca.pem; export NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem; fi \
 && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
COPY tsconfig.json tsconfig.node.json tstl.json ./
COPY scripts ./scripts
COPY nginx ./nginx
COPY src ./src
RUN node scripts/build.mjs

# --- the gateway: nginx, the Lua module and its libraries, the compiled Lua, the entrypoint.
FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="lua-resty-autoscale" lua-resty-autoscale="gateway" \
      org.opencontainers.image.description="Perimeter gateway: request-path metrics, adaptive balancing, admission control and scale signals" \
      org.opencontainers.image.licenses="MIT"
# luajit2 runs the entrypoint's config check and nginx.conf generator (the same compiled Lua);
# ca-certificates lets the actuators verify the cloud APIs' TLS certificates.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache lua-cjson luajit2 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /usr/share/doc/* /usr/share/man/* \
      /etc/nginx/sites-enabled/default \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/autoscale --shell /usr/sbin/nologin autoscale \
 && mkdir -p /var/lib/autoscale /etc/autoscale \
 && chown autoscale:autoscale /var/lib/autoscale
# On LuaJIT's default path (/usr/local/share/lua/5.1/?.lua and ?/init.lua), which nginx uses too.
COPY --from=build /src/build/lua/resty/ /usr/local/share/lua/5.1/resty/
COPY --from=build /src/nginx/autoscale.conf /usr/local/share/lua-resty-autoscale/nginx/autoscale.conf
COPY scripts/luarun.lua /usr/local/share/lua-resty-autoscale/scripts/luarun.lua
COPY docker/entrypoint.sh /usr/local/bin/autoscale-entrypoint
COPY docker/healthcheck.sh /usr/local/bin/autoscale-healthcheck
COPY docker/traffic.lua /usr/local/share/lua-resty-autoscale/traffic.lua

USER autoscale
WORKDIR /var/lib/autoscale
ENV AUTOSCALE_CONFIG_FILE=/etc/autoscale/autoscale.json
EXPOSE 8080 9180
# The entrypoint turns SIGTERM into nginx's graceful stop (SIGQUIT): in-flight requests finish.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["autoscale-healthcheck"]
ENTRYPOINT ["autoscale-entrypoint"]
CMD ["gateway"]
